"""JobResult: a handle on one job, read from storage when asked."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .exceptions import (
    JobNotFoundError,
    MaxRetriesExceededError,
    TaskCancelledError,
    TaskFailedError,
)
from .storage import JobRecord, Status

if TYPE_CHECKING:
    from .queue import Queue


class JobResult:
    """``status``, ``progress`` and ``error`` read the job fresh; ``result()`` waits for the end."""

    def __init__(self, queue: Queue, job_id: str, record: JobRecord | None = None) -> None:
        self.queue = queue
        self.id = job_id
        self._record = record

    def __repr__(self) -> str:
        return f"<JobResult {self.id} {self._record.status if self._record else '?'}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def refresh(self) -> JobResult:
        record = self.queue.storage.get_job(self.id)
        if record is None:
            raise JobNotFoundError(f"job {self.id} does not exist (purged or never enqueued)")
        self._record = record
        return self

    @property
    def record(self) -> JobRecord:
        if self._record is None:
            self.refresh()
        assert self._record is not None
        return self._record

    @property
    def status(self) -> str:
        return self.refresh().record.status

    @property
    def progress(self) -> float | None:
        return self.refresh().record.progress

    @property
    def error(self) -> str | None:
        """The last error text, if any attempt failed."""
        return self.refresh().record.error

    @property
    def errors(self) -> list[dict[str, Any]]:
        """One entry per failed attempt: attempt, error, traceback, failed_at."""
        return self.queue.job_errors(self.id)

    @property
    def task_name(self) -> str:
        return self.record.task_name

    def result(self, timeout: float | None = 30) -> Any:
        """Wait for the job to finish and return its value.

        Raises TimeoutError if it is still unfinished after ``timeout`` seconds,
        TaskFailedError / MaxRetriesExceededError if it ended dead, and
        TaskCancelledError if it was cancelled.
        """
        if timeout is not None and math.isnan(timeout):
            raise ValueError("timeout must be a number of seconds or None (wait for ever), got nan")
        record = self.queue.storage.wait_for_result(self.id, float("inf") if timeout is None else timeout)
        if record is None:
            raise JobNotFoundError(f"job {self.id} does not exist (purged or never enqueued)")
        self._record = record
        if record.status == Status.COMPLETE:
            return None if record.result is None else self.queue.serializer.loads(record.result)
        if record.status == Status.DEAD:
            if record.retry_count > 0:
                raise MaxRetriesExceededError(
                    f"job {self.id} ({record.task_name}) failed {record.retry_count + 1} times: {record.error}",
                    error=record.error, job_id=self.id,
                )
            raise TaskFailedError(f"job {self.id} ({record.task_name}) failed: {record.error}",
                                  error=record.error, job_id=self.id)
        if record.status == Status.CANCELLED:
            raise TaskCancelledError(f"job {self.id} ({record.task_name}) was cancelled: {record.error}")
        raise TimeoutError(f"job {self.id} ({record.task_name}) is still {record.status} after {timeout}s")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the job as it is now (payload and result decoded when possible)."""
        return job_to_dict(self.queue, self.refresh().record)


def why_not_cancelled(job_id: str, record: JobRecord | None) -> str:
    """What to tell a user whose ``cancel_job()`` was refused, from the job as it is now.

    A pending job a worker has claimed is about to start there: it can no longer be cancelled,
    and saying only "pending" would contradict the refusal.
    """
    if record is None:
        return f"job {job_id} no longer exists (it was purged)"
    if record.status == Status.PENDING and record.worker_id:
        return (f"job {job_id} is pending, but worker {record.worker_id} has claimed it and is about to start it: "
                "only a job no worker holds can be cancelled")
    return f"job {job_id} is {record.status}: only a pending job (or one waiting for its retry) can be cancelled"


def job_to_dict(queue: Queue, record: JobRecord) -> dict[str, Any]:
    """Describe a job for humans and JSON APIs; undecodable payloads are shown as an error."""
    try:
        payload = queue.serializer.loads(record.payload)
        args, kwargs = payload.get("args", []), payload.get("kwargs", {})
    except Exception as exc:  # a corrupt row must not break listings
        args, kwargs = None, {"__error__": f"cannot decode payload: {exc}"}
    result: Any = None
    if record.result is not None:
        try:
            result = queue.serializer.loads(record.result)
        except Exception as exc:
            result = {"__error__": f"cannot decode result: {exc}"}
    return {
        "id": record.id, "task_name": record.task_name, "queue": record.queue,
        "status": record.status, "priority": record.priority, "args": args, "kwargs": kwargs,
        "result": result, "error": record.error, "retry_count": record.retry_count,
        "max_retries": record.max_retries, "timeout": record.timeout, "progress": record.progress,
        "unique_key": record.unique_key, "created_at": record.created_at,
        "scheduled_at": record.scheduled_at, "expires_at": record.expires_at,
        "started_at": record.started_at, "finished_at": record.finished_at,
        "worker_id": record.worker_id, "depends_on": record.depends_on,
    }
