"""Eager mode: run tasks inline at enqueue time, for tests and scripts.

A test written in eager mode must hold in production, so an eager job goes the way a worker
takes it: options checked and arguments encoded as at enqueue, the task given the decoded
arguments, its result encoded (and decoded for ``result()``), failures retried (at once,
without the backoff) as ``max_retries`` and ``retry_on`` allow.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Coroutine, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from . import validation
from .context import JobContext, bound
from .exceptions import MaxRetriesExceededError, TaskFailedError, TaskitoError
from .execution import UnserializableResult, acall_task, call_task, describe
from .middleware import JobInfo, call_middleware, emit
from .storage import JobRecord, NewJob, Status

if TYPE_CHECKING:
    from .queue import Queue
    from .task import TaskWrapper


class EagerResult:
    """The JobResult of a job that already ran inline; nothing is stored."""

    def __init__(self, queue: Queue, record: JobRecord, errors: list[dict[str, Any]],
                 exception: BaseException | None = None) -> None:
        self.queue = queue
        self._exception = exception  # the last attempt's, the cause of what result() raises
        self.record = record
        self.id = record.id
        self.task_name = record.task_name
        self.status = record.status
        self.progress = 100.0 if record.status == Status.COMPLETE else None
        self.error = record.error
        self.errors = errors

    def refresh(self) -> EagerResult:
        return self

    async def arefresh(self) -> EagerResult:
        return self

    def result(self, timeout: float | None = None) -> Any:
        validation.seconds("timeout", timeout)  # as a stored job's result() checks it
        if self.status == Status.COMPLETE:
            return None if self.record.result is None else self.queue.serializer.loads(self.record.result)
        if self.record.retry_count > 0:
            raise MaxRetriesExceededError(
                f"eager job {self.id} ({self.task_name}) failed {self.record.retry_count + 1} times: {self.error}",
                error=self.error, job_id=self.id) from self._exception
        raise TaskFailedError(f"eager job {self.id} ({self.task_name}) failed: {self.error}",
                              error=self.error, job_id=self.id) from self._exception

    async def aresult(self, timeout: float | None = None) -> Any:
        """``result()``: the job is finished already, nothing to wait for."""
        return self.result(timeout)

    def to_dict(self) -> dict[str, Any]:
        from .result import job_to_dict

        return job_to_dict(self.queue, self.record)


def run_eagerly(queue: Queue, job: NewJob) -> EagerResult:
    """Run a prepared job (``Queue.prepare_job``) inline, as a worker would, retries included.

    An ``async def`` task runs to completion on an event loop of its own: this thread's, or, when
    this thread runs one already (a sync call from async code), a helper thread's.
    """
    attempts = _attempts(queue, job)
    attempt = next(attempts)
    while True:
        outcome = _run_coroutine(_acall(queue, attempt)) if attempt.task.is_async else _call(queue, attempt)
        try:
            attempt = attempts.send(outcome)
        except StopIteration as done:
            return done.value


async def arun_eagerly(queue: Queue, job: NewJob) -> EagerResult:
    """``run_eagerly`` from async code: an ``async def`` task is awaited on the caller's own loop."""
    attempts = _attempts(queue, job)
    attempt = next(attempts)
    while True:
        outcome = await _acall(queue, attempt) if attempt.task.is_async else _call(queue, attempt)
        try:
            attempt = attempts.send(outcome)
        except StopIteration as done:
            return done.value


@dataclass(frozen=True)
class _Attempt:
    task: TaskWrapper
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    context: JobContext


Called = tuple[Any, BaseException | None]  # call_task's (encoded result, error)


def _attempts(queue: Queue, job: NewJob) -> Generator[_Attempt, Called, EagerResult]:
    """The attempts of one eager job, as a generator: it yields each attempt to make and is sent its
    outcome, so that the sync and the async runner share the retry rules."""
    task = queue.tasks.get(job.task_name)
    if task is None:
        raise TaskitoError(f"eager mode cannot run unknown task {job.task_name!r}: it is not registered on this queue")
    payload = queue.serializer.loads(job.payload)
    args, kwargs = tuple(payload["args"]), payload["kwargs"]
    headers = payload.get("headers") or {}
    max_retries = cast(int, task.options.max_retries if job.max_retries is None else job.max_retries)  # resolved
    queue_name = cast(str, job.queue)  # prepare_job resolved it (the task's, else "default")
    errors: list[dict[str, Any]] = []
    started_at = time.time()
    for retry_count in range(max_retries + 1):
        result, error = yield _Attempt(task, args, kwargs, JobContext(
            id=job.id, task_name=job.task_name, retry_count=retry_count, max_retries=max_retries,
            queue_name=queue_name, storage=None, started=time.monotonic(), soft_timeout=task.options.soft_timeout,
            headers=headers))
        if isinstance(error, KeyboardInterrupt):
            raise error  # inline, Ctrl-C stops the program that runs the task; it is no failure to retry
        event = {"job_id": job.id, "task_name": job.task_name, "queue": queue_name, "retry_count": retry_count}
        if error is None:
            emit(queue.registry, "job.completed", **event)
            return EagerResult(queue, _record(job, started_at, Status.COMPLETE, retry_count, result=result), errors)
        message = describe(error)
        errors.append({"attempt": retry_count + 1, "error": message, "failed_at": time.time(),
                       "traceback": "".join(traceback.format_exception(type(error), error, error.__traceback__))})
        info = JobInfo(id=job.id, task_name=job.task_name, queue=queue_name, args=args, kwargs=kwargs,
                       retry_count=retry_count, headers=headers)
        if (isinstance(error, UnserializableResult) or not task.options.should_retry(error)
                or retry_count == max_retries):
            call_middleware(queue.registry, "on_dead", info, message)
            emit(queue.registry, "job.dead", **event, error=message)
            break
        call_middleware(queue.registry, "on_retry", info, message, 0.0)
        emit(queue.registry, "job.retrying", **event, error=message, retry_in=0.0)
    return EagerResult(queue, _record(job, started_at, Status.DEAD, len(errors) - 1, error=errors[-1]["error"]),
                       errors, error)


def _call(queue: Queue, attempt: _Attempt) -> Called:
    with bound(attempt.context):
        return call_task(queue, attempt.task, attempt.args, attempt.kwargs, encode=queue.serializer.dumps)


async def _acall(queue: Queue, attempt: _Attempt) -> Called:
    with bound(attempt.context):
        return await acall_task(queue, attempt.task, attempt.args, attempt.kwargs, encode=queue.serializer.dumps)


def _run_coroutine(coroutine: Coroutine[Any, Any, Called]) -> Called:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(1, thread_name_prefix="taskito-eager") as helper:
        return helper.submit(asyncio.run, coroutine).result()


def _record(job: NewJob, started_at: float, status: str, retry_count: int, result: bytes | None = None,
            error: str | None = None) -> JobRecord:
    # prepare_job resolved queue and priority (the task's, else the queue's defaults): never None here
    return JobRecord(id=job.id, task_name=job.task_name, queue=cast(str, job.queue), status=status,
                     priority=cast(int, job.priority), payload=job.payload, result=result, error=error,
                     retry_count=retry_count,
                     max_retries=job.max_retries, timeout=job.timeout, attempt=retry_count + 1,
                     unique_key=job.unique_key, created_at=started_at, scheduled_at=started_at,
                     started_at=started_at, finished_at=time.time(), depends_on=list(job.depends_on),
                     first_started_at=started_at)
