"""Run one task call with its hooks; shared by the worker and eager mode, for plain and ``async def`` tasks."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from .context import active
from .exceptions import SerializationError
from .middleware import JobInfo, call_middleware, emit

if TYPE_CHECKING:
    from .queue import Queue
    from .task import TaskWrapper

logger = logging.getLogger("taskito.execution")


def _run_hooks(queue: Queue, kind: str, *args: Any) -> None:
    for hook in queue.hooks[kind]:
        try:
            hook(*args)
        except BaseException:  # not only Exception: a hook must never take the worker's thread with it
            logger.exception("%s hook %r raised; the job goes on", kind, hook)


def run_failure_hooks(queue: Queue, task_name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                      error: BaseException) -> None:
    """The hooks of a failed attempt, also for failures the worker decides (timeouts, lost workers)."""
    _run_hooks(queue, "after_task", task_name, args, kwargs, None, error)
    _run_hooks(queue, "on_failure", task_name, args, kwargs, error)


def describe(error: BaseException) -> str:
    """``Type: message``, even for an exception whose ``str()`` itself raises."""
    try:
        text = str(error)
    except BaseException:
        text = "<its str() raised>"
    return f"{type(error).__name__}: {text}"


class UnserializableResult(SerializationError):
    """The task returned what the serializer cannot hold: its attempt failed, and a retry would too."""


def call_task(queue: Queue, task: TaskWrapper, args: tuple[Any, ...], kwargs: dict[str, Any],
              still_current: Callable[[], bool] = lambda: True,
              encode: Callable[[Any], Any] | None = None) -> tuple[Any, BaseException | None]:
    """Call the task inside the queue's task contexts; return (result, error).

    Whatever the task raises fails the attempt, every ``BaseException`` included
    (``SystemExit``, ``asyncio.CancelledError``, ``GeneratorExit``, a library's own): were one
    to escape, it would end the worker thread (or child process) running the job, and the job
    would stay held, its lease renewed, for as long as the worker lives.
    With ``encode``, the returned result is encoded, before the hooks run: a result that cannot
    be encoded fails the attempt (``UnserializableResult``) and the failure hooks run, not the
    success ones. The after-hooks are skipped when ``still_current()`` says the attempt was given
    up meanwhile (its timeout passed): the worker has already reported that attempt as failed.
    """
    with ExitStack() as stack:
        _enter(queue, stack, task.name, args, kwargs)
        value: Any = None
        error: BaseException | None = None
        try:
            value = task.fn(*args, **kwargs)
            _refuse_coroutine(task.name, value)
        except BaseException as exc:
            error = exc
        return _settle(queue, task.name, args, kwargs, value, error, still_current, encode)


async def acall_task(queue: Queue, task: TaskWrapper, args: tuple[Any, ...], kwargs: dict[str, Any],
                     still_current: Callable[[], bool] = lambda: True,
                     encode: Callable[[Any], Any] | None = None) -> tuple[Any, BaseException | None]:
    """``call_task`` for an ``async def`` task: the same contexts, hooks and encoding around an await.

    Cancelling the coroutine (a hard timeout) fails the attempt like any other error.
    """
    with ExitStack() as stack:
        _enter(queue, stack, task.name, args, kwargs)
        value: Any = None
        error: BaseException | None = None
        try:
            value = await task.fn(*args, **kwargs)
        except BaseException as exc:
            error = exc
        return _settle(queue, task.name, args, kwargs, value, error, still_current, encode)


def _enter(queue: Queue, stack: ExitStack, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for factory in queue.task_contexts:
        stack.enter_context(factory())
    context = active()
    if context is not None:
        registry = queue.registry
        emit(registry, "job.started", job_id=context.id, task_name=name, queue=context.queue_name,
             retry_count=context.retry_count)
        if registry.middleware:
            context.info = JobInfo(id=context.id, task_name=name, queue=context.queue_name, args=args,
                                   kwargs=kwargs, retry_count=context.retry_count, headers=context.headers)
            call_middleware(registry, "before", context.info)
    _run_hooks(queue, "before_task", name, args, kwargs)


def _refuse_coroutine(name: str, value: Any) -> None:
    """A function that is not ``async def`` but returns a coroutine (e.g. behind a plain decorator)
    would leave it never awaited and fail with an unserializable result: say what to do instead."""
    if inspect.iscoroutine(value):
        value.close()
        raise TypeError(f"task {name!r} returned a coroutine, which the worker does not await: declare the task "
                        "function with async def (a decorator between @queue.task and it must keep it a "
                        "coroutine function)")


def _settle(queue: Queue, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], value: Any,
            error: BaseException | None, still_current: Callable[[], bool],
            encode: Callable[[Any], Any] | None) -> tuple[Any, BaseException | None]:
    """Encode the result and run the after-hooks (see ``call_task``)."""
    result = value
    if error is None and encode is not None:
        try:
            result = encode(value)
        except BaseException as exc:  # an object's own __reduce__ or __str__ may raise anything
            detail = str(exc) if isinstance(exc, SerializationError) else describe(exc)
            error = UnserializableResult(f"the result of {name!r} cannot be serialized: {detail}")
    if still_current():
        if error is None:
            _run_hooks(queue, "after_task", name, args, kwargs, value, None)
            _run_hooks(queue, "on_success", name, args, kwargs, value)
        else:
            run_failure_hooks(queue, name, args, kwargs, error)
    context = active()
    if context is not None and context.info is not None:  # after pairs with before, even past a timeout
        call_middleware(queue.registry, "after", context.info, value, error, reverse=True)
        context.info = None
    return result, error
