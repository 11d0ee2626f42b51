"""``current_job``: what a running task knows about its own job."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .exceptions import SoftTimeLimitExceeded, TaskitoError
from .validation import percent as percent_check

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
    # What middleware's on_enqueue added to the job (see taskito.middleware), and what its before/after share.
    headers: dict[str, str] = field(default_factory=dict)
    info: JobInfo | None = None


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
