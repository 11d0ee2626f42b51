"""Run one task call with its hooks; shared by the worker and eager mode."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .queue import Queue
    from .task import TaskWrapper

logger = logging.getLogger("taskito.execution")


def _run_hooks(queue: Queue, kind: str, *args: Any) -> None:
    for hook in queue.hooks[kind]:
        try:
            hook(*args)
        except Exception:
            logger.exception("%s hook %r raised; the job goes on", kind, hook)


def call_task(queue: Queue, task: TaskWrapper, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> tuple[Any, Exception | None]:
    """Call the task inside the queue's task contexts; return (result, error)."""
    name = task.name
    with ExitStack() as stack:
        for factory in queue.task_contexts:
            stack.enter_context(factory())
        _run_hooks(queue, "before_task", name, args, kwargs)
        result: Any = None
        error: Exception | None = None
        try:
            result = task.fn(*args, **kwargs)
        except Exception as exc:
            error = exc
        _run_hooks(queue, "after_task", name, args, kwargs, result, error)
        if error is None:
            _run_hooks(queue, "on_success", name, args, kwargs, result)
        else:
            _run_hooks(queue, "on_failure", name, args, kwargs, error)
    return result, error
