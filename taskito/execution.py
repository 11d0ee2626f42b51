"""Run one task call with its hooks; shared by the worker and eager mode."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from .exceptions import SerializationError

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


def run_failure_hooks(queue: Queue, task_name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                      error: BaseException) -> None:
    """The hooks of a failed attempt, also for failures the worker decides (timeouts, lost workers)."""
    _run_hooks(queue, "after_task", task_name, args, kwargs, None, error)
    _run_hooks(queue, "on_failure", task_name, args, kwargs, error)


class UnserializableResult(SerializationError):
    """The task returned what the serializer cannot hold: its attempt failed, and a retry would too."""


def call_task(queue: Queue, task: TaskWrapper, args: tuple[Any, ...], kwargs: dict[str, Any],
              still_current: Callable[[], bool] = lambda: True,
              encode: Callable[[Any], Any] | None = None) -> tuple[Any, BaseException | None]:
    """Call the task inside the queue's task contexts; return (result, error).

    Any ``BaseException`` raised by a task (``SystemExit``, ``KeyboardInterrupt``...) fails the attempt
    like any error.
    With ``encode``, the returned result is encoded, before the hooks run: a result that cannot
    be encoded fails the attempt (``UnserializableResult``) and the failure hooks run, not the
    success ones. The after-hooks are skipped when ``still_current()`` says the attempt was given
    up meanwhile (its timeout passed): the worker has already reported that attempt as failed.
    """
    name = task.name
    with ExitStack() as stack:
        for factory in queue.task_contexts:
            stack.enter_context(factory())
        _run_hooks(queue, "before_task", name, args, kwargs)
        value: Any = None
        result: Any = None
        error: BaseException | None = None
        try:
            value = result = task.fn(*args, **kwargs)
        except BaseException as exc:  # any of them (CancelledError, a custom one) fails just this attempt
            error = exc
        if error is None and encode is not None:
            try:
                result = encode(value)
            except SerializationError as exc:
                error = UnserializableResult(f"the result of {name!r} cannot be serialized: {exc}")
        if still_current():
            if error is None:
                _run_hooks(queue, "after_task", name, args, kwargs, value, None)
                _run_hooks(queue, "on_success", name, args, kwargs, value)
            else:
                run_failure_hooks(queue, name, args, kwargs, error)
    return result, error
