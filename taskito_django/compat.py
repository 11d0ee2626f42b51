"""Django Tasks API: Django 6's ``django.tasks`` or, on Django 4.2-5.2, the ``django-tasks`` backport.

``AVAILABLE`` is False when neither is installed; then the Tasks backend is not offered.
"""

from __future__ import annotations

from typing import Any

AVAILABLE = True
SOURCE: str | None

try:
    from django.tasks import task_backends
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import Task, TaskContext, TaskError, TaskResult, TaskResultStatus
    from django.tasks.exceptions import InvalidTask, InvalidTaskBackend, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.json import normalize_json

    SOURCE = "django.tasks"
except ImportError:
    try:
        from django_tasks import task_backends  # type: ignore[no-redef]
        from django_tasks.backends.base import BaseTaskBackend  # type: ignore[no-redef]
        from django_tasks.base import (  # type: ignore[no-redef]
            Task,
            TaskContext,
            TaskError,
            TaskResult,
            TaskResultStatus,
        )
        from django_tasks.exceptions import InvalidTaskBackendError as InvalidTaskBackend  # type: ignore[no-redef]
        from django_tasks.exceptions import InvalidTaskError as InvalidTask  # type: ignore[no-redef]
        from django_tasks.exceptions import TaskResultDoesNotExist  # type: ignore[no-redef]
        from django_tasks.signals import task_enqueued, task_finished, task_started  # type: ignore[no-redef]
        from django_tasks.utils import normalize_json  # type: ignore[no-redef]

        SOURCE = "django_tasks"
    except ImportError:
        AVAILABLE = False
        SOURCE = None
        task_backends = BaseTaskBackend = Task = TaskContext = TaskError = TaskResult = None  # type: ignore
        TaskResultStatus = InvalidTask = InvalidTaskBackend = TaskResultDoesNotExist = None  # type: ignore
        task_enqueued = task_finished = task_started = normalize_json = None  # type: ignore

__all__: list[Any] = [
    "AVAILABLE", "SOURCE", "BaseTaskBackend", "InvalidTask", "InvalidTaskBackend", "Task", "TaskContext",
    "TaskError", "TaskResult",
    "TaskResultDoesNotExist", "TaskResultStatus", "normalize_json", "task_backends", "task_enqueued",
    "task_finished", "task_started",
]
