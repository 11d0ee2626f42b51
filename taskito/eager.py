"""Eager mode: run tasks inline at enqueue time, for tests and scripts."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .context import JobContext, activate
from .exceptions import TaskFailedError, TaskitoError
from .execution import call_task
from .storage import new_job_id

if TYPE_CHECKING:
    from .queue import Queue


class EagerResult:
    """The JobResult of a job that already ran inline; nothing is stored."""

    def __init__(self, job_id: str, task_name: str, value: Any, error: BaseException | None) -> None:
        self.id = job_id
        self.task_name = task_name
        self._value = value
        self._error = error
        self.status = "complete" if error is None else "dead"
        self.progress = 100.0 if error is None else None
        self.error = None if error is None else f"{type(error).__name__}: {error}"
        self.errors = [] if error is None else [{"attempt": 1, "error": self.error, "traceback": None}]

    def refresh(self) -> EagerResult:
        return self

    def result(self, timeout: float | None = None) -> Any:
        if self._error is not None:
            raise TaskFailedError(f"eager job {self.id} ({self.task_name}) failed: {self.error}",
                                  error=self.error, job_id=self.id) from self._error
        return self._value

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "task_name": self.task_name, "status": self.status,
                "result": self._value, "error": self.error}


def run_eagerly(queue: Queue, task_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> EagerResult:
    task = queue.tasks.get(task_name)
    if task is None:
        raise TaskitoError(f"eager mode cannot run unknown task {task_name!r}: it is not registered on this queue")
    job_id = new_job_id()
    activate(JobContext(id=job_id, task_name=task_name, retry_count=0, queue_name=task.options.queue,
                        storage=None, started=time.monotonic(), soft_timeout=task.options.soft_timeout))
    try:
        value, error = call_task(queue, task, args, kwargs)
    finally:
        activate(None)
    return EagerResult(job_id, task_name, value, error)
