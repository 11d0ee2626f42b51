"""JobResult: a handle on one job, read from storage when asked."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

from . import validation
from .aio import AsyncResultMethods
from .exceptions import (
    JobNotFoundError,
    MaxRetriesExceededError,
    TaskCancelledError,
    TaskFailedError,
)
from .storage import JobRecord, Status

if TYPE_CHECKING:
    from .queue import Queue


PREVIEW_MAX = 200  # characters of arguments a job list shows; the job's own view has them all
_JSON = json.JSONDecoder()


class JobHandle(Protocol):
    """What enqueueing returns (``delay``, ``apply_async``, ``map``, ``queue.enqueue``): a stored job's
    ``JobResult``, or in eager mode the ``EagerResult`` of a job that already ran. Type your code
    against this so that it holds in both modes."""

    @property
    def id(self) -> str: ...

    @property
    def task_name(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def progress(self) -> float | None: ...

    @property
    def error(self) -> str | None: ...

    @property
    def errors(self) -> list[dict[str, Any]]: ...

    @property
    def record(self) -> JobRecord: ...

    def refresh(self) -> JobHandle: ...

    def result(self, timeout: float | None = ...) -> Any: ...

    def to_dict(self) -> dict[str, Any]: ...


class JobResult(AsyncResultMethods):
    """``status``, ``progress`` and ``error`` read the job fresh; ``result()`` waits for the end
    (``await arefresh()`` and ``await aresult()`` from async code).

    Handles from ``queue.list_jobs()`` hold a partial row (arguments cut short, no result): ``summary()``
    uses it as it is, while ``record`` and ``to_dict()`` read the whole row when first asked.
    """

    # A map of a million jobs returns a million handles: keep each small.
    __slots__ = ("queue", "id", "_record")

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
        return self._keep(self.queue.storage.get_job(self.id))

    def _keep(self, record: JobRecord | None) -> JobResult:
        if record is None:
            raise JobNotFoundError(f"job {self.id} does not exist (purged or never enqueued)")
        self._record = record
        return self

    @property
    def record(self) -> JobRecord:
        """The job's whole row, as last read (a listed job's partial row is replaced by the whole one)."""
        if self._record is None or self._record.partial:
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
        return (self._record or self.record).task_name  # a partial row has it: no need to read the rest

    def result(self, timeout: float | None = 30) -> Any:
        """Wait for the job to finish and return its value.

        Raises TimeoutError if it is still unfinished after ``timeout`` seconds,
        TaskFailedError / MaxRetriesExceededError if it ended dead, and
        TaskCancelledError if it was cancelled.
        """
        seconds = validation.seconds("timeout", timeout)  # None: wait for ever
        record = self.queue.storage.wait_for_result(self.id, float("inf") if seconds is None else seconds)
        return self._value(record, timeout)

    def _value(self, record: JobRecord | None, timeout: float | None) -> Any:
        """What ``result()`` returns or raises, given the job as its wait ended."""
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

    def summary(self) -> dict[str, Any]:
        """A JSON-ready view for job lists, from the row as it was read (no query): see ``job_summary``."""
        return job_summary(self.queue, self._record if self._record is not None else self.record)


def _decode(queue: Queue, payload: bytes) -> tuple[Any, Any]:
    try:
        decoded = queue.serializer.loads(payload)
        return decoded.get("args", []), decoded.get("kwargs", {})
    except Exception as exc:  # a corrupt row must not break listings
        return None, {"__error__": f"cannot decode payload: {exc}"}


def _fields(record: JobRecord) -> dict[str, Any]:
    return {
        "id": record.id, "task_name": record.task_name, "queue": record.queue,
        "status": record.status, "priority": record.priority, "error": record.error,
        "retry_count": record.retry_count, "max_retries": record.max_retries, "timeout": record.timeout,
        "progress": record.progress, "unique_key": record.unique_key, "created_at": record.created_at,
        "scheduled_at": record.scheduled_at, "expires_at": record.expires_at,
        "started_at": record.started_at, "finished_at": record.finished_at,
        "worker_id": record.worker_id, "depends_on": record.depends_on, "workflow_id": record.workflow_id,
    }


def job_to_dict(queue: Queue, record: JobRecord) -> dict[str, Any]:
    """Describe a job for humans and JSON APIs; undecodable payloads are shown as an error.

    ``record`` must be a whole row (``JobResult.record``), not a partial one from list_jobs.
    """
    if record.partial:
        raise ValueError(f"job {record.id}: a partial row (from list_jobs) has no whole payload or result; "
                         "pass JobResult.record, which reads the whole row")
    args, kwargs = _decode(queue, record.payload)
    result: Any = None
    if record.result is not None:
        try:
            result = queue.serializer.loads(record.result)
        except Exception as exc:
            result = {"__error__": f"cannot decode result: {exc}"}
    return {**_fields(record), "args": args, "kwargs": kwargs, "result": result,
            "cancel_requested": record.cancel_requested, "max_concurrent": record.max_concurrent,
            "concurrency_key": record.concurrency_key}


def job_summary(queue: Queue, record: JobRecord) -> dict[str, Any]:
    """A job for a list: its fields and a ``preview`` of its arguments (at most PREVIEW_MAX characters),
    without arguments, keyword arguments or result.

    Lists are polled every few seconds: works on the partial rows of list_jobs, whose payload the
    database cut short, so a job with megabytes of arguments costs a listing no more than any other.
    """
    cut = record.partial and len(record.payload) < (record.payload_size or 0)
    if not cut:
        args, kwargs = _decode(queue, record.payload)
        if args is None:
            text = kwargs["__error__"]
        else:
            text = ", ".join([json.dumps(arg, default=repr) for arg in args]
                             + [f"{key}={json.dumps(value, default=repr)}" for key, value in kwargs.items()])
    else:
        text = _cut_json_preview(record.payload.decode("utf-8", "ignore"))
        if text is None:
            text = f"({record.payload_size} bytes of arguments)"
    if cut or len(text) > PREVIEW_MAX:
        text = text[:PREVIEW_MAX - 1] + "…"
    return {**_fields(record), "preview": text}


def _cut_json_preview(text: str) -> str | None:
    """The arguments in the start of a JSON payload (``{"args":[...],"kwargs":{...}}``, cut anywhere),
    shown as a whole payload's would be as far as values are complete, then the raw start of the value
    the cut falls in. None if ``text`` does not start like taskito's JSON payloads."""
    parts: list[str] = []
    for opening, closing in (('{"args":[', "]"), (',"kwargs":{', "}")):
        if not text.startswith(opening):
            return ", ".join(parts) if parts else None
        text = text[len(opening):]
        while text and not text.startswith(closing):
            key = ""
            if closing == "}":
                try:
                    name, end = _JSON.raw_decode(text)
                except ValueError:
                    return ", ".join([*parts, text])
                key, text = f"{name}=", text[end + 1:]  # past the colon
            try:
                value, end = _JSON.raw_decode(text)
            except ValueError:
                return ", ".join([*parts, key + text])
            parts.append(key + json.dumps(value, default=repr))
            text = text[end:].removeprefix(",")
        text = text[len(closing):]
    return ", ".join(parts)
