"""Middleware and events: code of the user's that runs at each step of a job's life.

Middleware is an object with any of the methods of ``Middleware`` (subclassing it is optional);
an event handler is a function of one argument, the event (a dict with its ``event`` name, its
``time`` and, for job events, ``job_id``, ``task_name`` and ``queue``). Both are declared in the
registry (``queue.add_middleware(obj)``, ``@queue.on_event(name)``), so a Django or Flask queue
runs the same ones. Whatever one of them raises is logged and the job goes on: observing a job
must never change what happens to it.

Where they run: ``on_enqueue`` and ``job.enqueued`` in the enqueuing process; ``before``,
``after`` and ``job.started`` where the task runs (a worker's thread, its child process with
``--pool prefork``, or inline in eager mode); the outcome ones where the outcome is recorded
(the worker process).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .exceptions import InvalidValueError

if TYPE_CHECKING:
    from .registry import Registry
    from .storage import JobRecord

logger = logging.getLogger("taskito.middleware")

EVENTS = ("job.enqueued", "job.started", "job.completed", "job.retrying", "job.dead", "job.cancelled",
          "worker.started", "worker.stopped")
MIDDLEWARE_METHODS = ("on_enqueue", "before", "after", "on_retry", "on_dead", "on_cancel")


@dataclass
class JobInfo:
    """What middleware is told about a job.

    ``headers`` travel with the job from enqueue to every attempt: ``on_enqueue`` may add to them
    (strings, e.g. a trace context) and ``before`` finds them there. ``state`` is the middleware's
    own, kept from ``before`` to ``after`` of one attempt.
    """

    id: str
    task_name: str
    queue: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    retry_count: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)


class Middleware:
    """A base with every method doing nothing: subclass it and override what you need."""

    def on_enqueue(self, job: JobInfo) -> None:
        """Before the job is written (``job.headers`` may still be added to)."""

    def before(self, job: JobInfo) -> None:
        """Before each attempt, where the task runs, with ``current_job`` set."""

    def after(self, job: JobInfo, result: Any, error: BaseException | None) -> None:
        """After each attempt, where the task ran: its return value, or what it raised."""

    def on_retry(self, job: JobInfo, error: str, delay: float) -> None:
        """An attempt failed with ``error`` (``Type: message``); the job runs again in ``delay`` seconds."""

    def on_dead(self, job: JobInfo, error: str) -> None:
        """The last attempt failed: the job is a dead letter now."""

    def on_cancel(self, job: JobInfo) -> None:
        """The job was cancelled (``queue.cancel_job``)."""


def check_middleware(obj: Any) -> None:
    """Refuse an object that has none of the methods: it would silently never run."""
    if not any(callable(getattr(obj, name, None)) for name in MIDDLEWARE_METHODS):
        raise InvalidValueError(f"{obj!r} is no middleware: it has none of the methods {', '.join(MIDDLEWARE_METHODS)}"
                                " (subclass taskito.Middleware and override those you need)")


def check_event(name: Any) -> str:
    if name not in EVENTS:
        raise InvalidValueError(f"unknown event {name!r}: the events are {', '.join(EVENTS)}")
    return str(name)


def _implemented(obj: Any, method: str) -> Any:
    """``obj``'s bound ``method``, or None when it has none or only Middleware's own (which does nothing)."""
    if getattr(type(obj), method, None) is getattr(Middleware, method):
        return None
    return getattr(obj, method, None)


def has_middleware(registry: Registry, method: str) -> bool:
    return any(_implemented(obj, method) is not None for obj in registry.middleware)


def call_middleware(registry: Registry, method: str, *args: Any, reverse: bool = False) -> None:
    """Call ``method`` of every middleware that has it, in the order they were added (``reverse``: the
    other way round, so that ``after`` unwinds what ``before`` set up); log what they raise."""
    for obj in reversed(registry.middleware) if reverse else registry.middleware:
        fn = _implemented(obj, method)
        if fn is None:
            continue
        try:
            fn(*args)
        except BaseException:  # a middleware must never take the job or the worker's thread with it
            logger.exception("middleware %r raised in %s; the job goes on", obj, method)


def announce_cancelled(registry: Registry, record: JobRecord) -> None:
    """Tell handlers and middleware that a job ended cancelled, where that happened (the queue for a waiting
    job, the worker for one it held)."""
    emit(registry, "job.cancelled", job_id=record.id, task_name=record.task_name, queue=record.queue)
    call_middleware(registry, "on_cancel", JobInfo(id=record.id, task_name=record.task_name, queue=record.queue,
                                                   retry_count=record.retry_count))


def emit(registry: Registry, event: str, **data: Any) -> None:
    """Hand ``event`` to its handlers (nothing is built when it has none); log what they raise."""
    handlers = registry.event_handlers.get(event)
    if not handlers:
        return
    payload = {"event": event, "time": time.time(), **data}
    for handler in handlers:
        try:
            handler(dict(payload))
        except BaseException:
            logger.exception("handler %r of %s raised; the job goes on", handler, event)
