"""``current_job``: what a running task knows about its own job."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .exceptions import InvalidValueError, SoftTimeLimitExceeded, TaskCancelledError, TaskitoError
from .validation import percent as percent_check
from .validation import shown

if TYPE_CHECKING:
    from .middleware import JobInfo
    from .storage import Storage


@dataclass
class JobContext:
    id: str
    task_name: str
    retry_count: int
    max_retries: int  # retry_count < max_retries: a failure now is retried (if retry_on allows)
    queue_name: str
    storage: Storage | None
    started: float
    soft_timeout: float | None
    # Where update_progress() goes instead of ``storage`` (async tasks: a write the event loop does not wait for).
    write_progress: Callable[[str, float], None] | None = None
    # Set once cancel_job() asked for this job to stop (the worker sets it: a thread, a signal, the loop).
    cancel: threading.Event | None = None
    # What middleware's on_enqueue added to the job (see taskito.middleware), and what its before/after share.
    headers: dict[str, str] = field(default_factory=dict)
    info: JobInfo | None = None
    max_log_lines: int = 1000
    # Where current_job.log() lines go instead of ``storage`` (async tasks: written off the event loop).
    write_log: Callable[[str, LogLine], None] | None = None


# One line of current_job.log(): (time, level, message, extra as JSON text or None).
LogLine = tuple[float, str, str, "str | None"]
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR,
              "critical": logging.CRITICAL}
job_logger = logging.getLogger("taskito.job")


def store_log_line(storage: Storage, job_id: str, line: LogLine, limit: int) -> None:
    """Write a line of current_job.log(); a failure to write is logged, never fails the job."""
    logged_at, level, message, extra = line
    try:
        kept = storage.add_job_log(job_id, logged_at, level, message.replace("\x00", "\\x00"), extra, limit)
    except Exception as exc:
        job_logger.warning("job %s: could not store its log line (%s): %s", job_id, exc, message)
        return
    if not kept:
        job_logger.debug("job %s holds %d log lines already (TASKITO_MAX_LOG_LINES): line dropped: %s",
                         job_id, limit, message)


# A context variable, not a thread-local: each thread of the pool and each coroutine on the worker's
# event loop (every asyncio task runs in a copy of the context) sees its own job.
_context: ContextVar[JobContext | None] = ContextVar("taskito_current_job", default=None)


def active() -> JobContext | None:
    """The job running in this thread or coroutine, if any."""
    return _context.get()


@contextmanager
def bound(context: JobContext) -> Iterator[JobContext]:
    """``current_job`` is ``context`` inside the block, in this thread or coroutine only; what it was
    before comes back after (a task run eagerly from inside another task leaves that one's job)."""
    token = _context.set(context)
    try:
        yield context
    finally:
        _context.reset(token)


class _CurrentJob:
    """A proxy to the job running in this thread or coroutine; raises outside a task."""

    def _get(self) -> JobContext:
        context = _context.get()
        if context is None:
            raise TaskitoError("current_job is only available inside a running task")
        return context

    @property
    def id(self) -> str:
        return self._get().id

    @property
    def task_name(self) -> str:
        return self._get().task_name

    @property
    def retry_count(self) -> int:
        return self._get().retry_count

    @property
    def max_retries(self) -> int:
        """Retries this job may make in all: a failure now is retried while ``retry_count`` is below it."""
        return self._get().max_retries

    @property
    def queue_name(self) -> str:
        return self._get().queue_name

    @property
    def elapsed(self) -> float:
        """Seconds since this attempt started."""
        return time.monotonic() - self._get().started

    def update_progress(self, percent: float) -> None:
        """Record progress (0-100) so callers see it in ``job.progress``."""
        progress = percent_check("progress", percent)
        context = self._get()
        if context.write_progress is not None:
            context.write_progress(context.id, progress)
        elif context.storage is not None:
            context.storage.set_progress(context.id, progress)

    def log(self, message: object, level: str = "info", **extra: object) -> None:
        """Write a line to this job's log (``queue.job_logs(id)``, the dashboard's job page), and to
        the ``taskito.job`` logger. ``level``: debug, info, warning, error or critical; ``extra``: values
        kept with the line (what JSON cannot hold is kept as its str()). At most ``max_log_lines``
        (TASKITO_MAX_LOG_LINES, 1000) lines are kept per job; later ones are dropped."""
        context = self._get()
        name = level.lower() if isinstance(level, str) else level
        if name not in LOG_LEVELS:
            raise InvalidValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, got {shown(level)}")
        text = message if isinstance(message, str) else str(message)
        job_logger.log(LOG_LEVELS[name], "%s", text, extra={"job_id": context.id, "task_name": context.task_name})
        line: LogLine = (time.time(), name, text,
                         json.dumps(extra, default=str, ensure_ascii=False) if extra else None)
        if context.write_log is not None:
            context.write_log(context.id, line)
        elif context.storage is not None and context.max_log_lines > 0:
            store_log_line(context.storage, context.id, line, context.max_log_lines)

    @property
    def cancelled(self) -> bool:
        """True once ``queue.cancel_job()`` was called on this job: stop soon, the job ends cancelled anyway."""
        cancel = self._get().cancel
        return cancel is not None and cancel.is_set()

    def check_cancelled(self) -> None:
        """Raise TaskCancelledError once this job's cancellation was asked for.

        Long tasks call this between steps: the job then ends ``cancelled``, not failed.
        """
        context = self._get()
        if context.cancel is not None and context.cancel.is_set():
            raise TaskCancelledError(f"job {context.id} ({context.task_name}) was cancelled")

    def check_timeout(self) -> None:
        """Raise SoftTimeLimitExceeded once the task's soft_timeout has passed.

        Long tasks call this between steps to stop cleanly before the hard timeout.
        """
        context = self._get()
        if context.soft_timeout is not None and time.monotonic() - context.started > context.soft_timeout:
            raise SoftTimeLimitExceeded(
                f"task {context.task_name!r} passed its soft timeout of {context.soft_timeout}s"
            )


current_job = _CurrentJob()
