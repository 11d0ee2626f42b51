"""One attempt of a job: run it (in a thread, a child process or on the event loop), then record what happened."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..context import JobContext, LogLine, bound
from ..execution import UnserializableResult, acall_task, call_task, describe, run_failure_hooks
from ..middleware import JobInfo, announce_cancelled, call_middleware, emit
from ..storage import WF_MAPPED, Completion, JobRecord
from ..workflow import mapped, step_arguments
from .retry import retry_delay

if TYPE_CHECKING:
    from ..queue import Queue
    from ..task import TaskWrapper
    from .completions import CompletionWriter

logger = logging.getLogger("taskito.worker")


@dataclass(frozen=True)
class Outcome:
    """A finished attempt: ``result`` when it succeeded, else ``error`` and the retry decision."""

    result: bytes | None = None
    error: str | None = None
    traceback: str | None = None
    retry_delay: float | None = None  # None with an error: the job is dead
    duration: float = 0.0
    started_at: float | None = None  # wall-clock start of the attempt; None when unknown (its worker was lost)
    # A failure the worker decided (timeout, lost process): its hooks run once it is recorded.
    raised: BaseException | None = None


def _decode(queue: Queue, record: JobRecord) -> tuple[list[Any], dict[str, Any], dict[str, str]]:
    """The arguments, and the headers middleware added at enqueue (see ``taskito.middleware``)."""
    payload = queue.serializer.loads(record.payload)
    args, kwargs = payload["args"], payload["kwargs"]
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise TypeError("args must be a list and kwargs an object")
    headers = payload.get("headers")
    return args, kwargs, headers if isinstance(headers, dict) else {}


def storable(text: str) -> str:
    """Error text every engine can store: NUL escaped (PostgreSQL text refuses it), lone
    surrogates escaped (not UTF-8: e.g. a file name from os.listdir)."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def wall_clock(started: float) -> float:
    """The wall-clock time of ``started``, a time on the monotonic clock (what the job records as its start)."""
    return time.time() - (time.monotonic() - started)


def run_attempt(queue: Queue, record: JobRecord, started: float,
                still_current: Callable[[], bool] = lambda: True, cancel: threading.Event | None = None) -> Outcome:
    """Decode the arguments, call the task with its hooks and encode the result.

    ``started`` is the attempt's start on the monotonic clock (timeouts and the logged duration);
    the outcome also carries it as wall-clock time, which the job records as its start.
    """
    prepared = _prepare(queue, record, started, cancel=cancel)
    if isinstance(prepared, Outcome):
        return prepared
    task, args, kwargs, context = prepared
    with bound(context):
        result, error = call_task(queue, task, args, kwargs, still_current, encode=queue.serializer.dumps)
    return _outcome(record, task, started, result, error)


async def arun_attempt(queue: Queue, record: JobRecord, started: float,
                       still_current: Callable[[], bool] = lambda: True,
                       write_progress: Callable[[str, float], None] | None = None,
                       write_log: Callable[[str, LogLine], None] | None = None,
                       cancel: threading.Event | None = None) -> Outcome:
    """``run_attempt`` of an ``async def`` task, awaited on the worker's event loop.

    ``current_job`` is bound in this coroutine's own context; ``write_progress`` and ``write_log``
    take its progress updates and log lines, so that the loop never waits for the database.
    """
    prepared = _prepare(queue, record, started, write_progress, write_log, cancel)
    if isinstance(prepared, Outcome):
        return prepared
    task, args, kwargs, context = prepared
    with bound(context):
        result, error = await acall_task(queue, task, args, kwargs, still_current, encode=queue.serializer.dumps)
    return _outcome(record, task, started, result, error)


def _prepare(queue: Queue, record: JobRecord, started: float,
             write_progress: Callable[[str, float], None] | None = None,
             write_log: Callable[[str, LogLine], None] | None = None, cancel: threading.Event | None = None,
             ) -> Outcome | tuple[TaskWrapper, tuple[Any, ...], dict[str, Any], JobContext]:
    """The task, its decoded arguments and its ``current_job``; or the Outcome of a job that cannot run."""
    started_at = wall_clock(started)
    task = queue.tasks.get(record.task_name)
    if task is None:
        known = ", ".join(sorted(queue.tasks)) or "none"
        return Outcome(error=f"unknown task {record.task_name!r}: this worker has no task registered under that "
                             f"name (registered: {known}); import its module in the --app module",
                       started_at=started_at)
    try:
        args, kwargs, headers = _decode(queue, record)
    except Exception as exc:
        return Outcome(error=f"corrupt payload: {describe(exc)}", started_at=started_at)
    if record.wf_mode:  # a workflow step: the previous stage's result first, or one call per argument list
        try:
            args = step_arguments(queue, record, args)
        except Exception as exc:  # the database, unreachable for a moment: retried as the task allows
            return Outcome(error=f"cannot read the input of workflow {record.workflow_id}: {describe(exc)}",
                           retry_delay=retry_delay(record, task.options, exc), started_at=started_at)
        if record.wf_mode & WF_MAPPED:
            task = mapped(task)
    max_retries = cast(int, task.options.max_retries if record.max_retries is None else record.max_retries)  # resolved
    context = JobContext(id=record.id, task_name=record.task_name, retry_count=record.retry_count,
                         max_retries=max_retries, queue_name=record.queue, storage=queue.storage, started=started,
                         soft_timeout=task.options.soft_timeout, write_progress=write_progress, headers=headers,
                         max_log_lines=queue.max_log_lines, write_log=write_log, cancel=cancel)
    return task, tuple(args), kwargs, context


def _outcome(record: JobRecord, task: TaskWrapper, started: float, result: Any,
             error: BaseException | None) -> Outcome:
    duration = time.monotonic() - started
    started_at = wall_clock(started)
    if error is None:
        return Outcome(result=result, duration=duration, started_at=started_at)
    delay = None if isinstance(error, UnserializableResult) else retry_delay(record, task.options, error)
    return Outcome(error=describe(error),
                   traceback="".join(traceback.format_exception(type(error), error, error.__traceback__)),
                   retry_delay=delay, duration=duration, started_at=started_at)


def lost_attempt(queue: Queue, record: JobRecord, error: BaseException, duration: float | None) -> Outcome:
    """An attempt the worker gave up on (timeout, dead process, its own error): retried while attempts remain.

    ``duration``: how long it ran; None when unknown (its worker was lost, maybe before starting it).
    """
    task = queue.tasks.get(record.task_name)
    return Outcome(error=describe(error),
                   retry_delay=retry_delay(record, task.options if task else None, None),
                   duration=duration or 0.0, started_at=None if duration is None else time.time() - duration,
                   raised=error)


def timed_out(queue: Queue, record: JobRecord, duration: float) -> Outcome:
    return lost_attempt(queue, record, TimeoutError(f"timed out after {record.timeout:g}s"), duration)


def record_outcome(queue: Queue, writer: CompletionWriter, record: JobRecord, outcome: Outcome,
                   cancelled: bool = False) -> None:
    """Write the outcome (completions in batches) and log the job's one line.

    ``cancelled``: its cancellation was asked for, so the job ends cancelled however the attempt ended.
    """
    if cancelled:
        stopped = "" if outcome.error is None else f"; it stopped with {outcome.error}"
        record_cancelled(queue, record, outcome.started_at, f"cancelled while running{stopped}")
        return
    if outcome.error is None:
        writer.add(Completion(record.id, record.attempt, outcome.result or b"null",
                              started_at=outcome.started_at, finished_at=time.time(),
                              workflow_id=record.workflow_id, task_name=record.task_name, queue=record.queue,
                              scheduled_at=record.scheduled_at))
        logger.info("job %s %s complete in %.1f ms", record.id, record.task_name, outcome.duration * 1000,
                    extra={"job_id": record.id, "task_name": record.task_name})
        emit(queue.registry, "job.completed", job_id=record.id, task_name=record.task_name, queue=record.queue,
             retry_count=record.retry_count, duration=outcome.duration)
        return
    record_failure(queue, record, outcome)


def record_failure(queue: Queue, record: JobRecord, outcome: Outcome) -> bool:
    """Record a failed attempt; False when the attempt no longer held the job (someone else recorded it)."""
    assert outcome.error is not None
    try:
        applied = queue.storage.fail(record.id, record.attempt, storable(outcome.error),
                                     None if outcome.traceback is None else storable(outcome.traceback),
                                     outcome.retry_delay, outcome.started_at)
    except Exception as exc:
        logger.error("job %s %s failed (%s) but the failure could not be recorded: %s; "
                     "its lease will return it to the queue", record.id, record.task_name, outcome.error, exc)
        return False
    if not applied:
        return False
    verdict = "dead" if outcome.retry_delay is None else f"failed, retry in {outcome.retry_delay:.1f}s"
    logger.info("job %s %s %s after %.1f ms: %s", record.id, record.task_name, verdict,
                outcome.duration * 1000, outcome.error.splitlines()[0],
                extra={"job_id": record.id, "task_name": record.task_name})
    registry = queue.registry
    if outcome.raised is not None or registry.middleware:
        try:
            args, kwargs, headers = _decode(queue, record)
        except Exception:
            args, kwargs, headers = [], {}, {}
        if outcome.raised is not None:
            run_failure_hooks(queue, record.task_name, tuple(args), kwargs, outcome.raised)
        info = JobInfo(id=record.id, task_name=record.task_name, queue=record.queue, args=tuple(args),
                       kwargs=kwargs, retry_count=record.retry_count, headers=headers)
        if outcome.retry_delay is None:
            call_middleware(registry, "on_dead", info, outcome.error)
        else:
            call_middleware(registry, "on_retry", info, outcome.error, outcome.retry_delay)
    event = {"job_id": record.id, "task_name": record.task_name, "queue": record.queue,
             "retry_count": record.retry_count, "error": outcome.error}
    if outcome.retry_delay is None:
        emit(registry, "job.dead", **event)
    else:
        emit(registry, "job.retrying", **event, retry_in=outcome.retry_delay)
    return True


def record_cancelled(queue: Queue, record: JobRecord, started_at: float | None, error: str) -> None:
    """End a cancelled attempt (or a claimed job cancelled before it started): the job is cancelled."""
    try:
        applied = queue.storage.finish_cancelled(record.id, record.attempt, storable(error), started_at)
    except Exception as exc:
        logger.error("job %s %s was cancelled but that could not be recorded: %s; its lease will return it to the "
                     "queue, whose worker cancels it", record.id, record.task_name, exc)
        return
    if applied:
        logger.info("job %s %s cancelled (%s)", record.id, record.task_name, error)
        announce_cancelled(queue.registry, record)
