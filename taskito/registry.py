"""Work declared once: tasks, schedules, hooks, middleware and event handlers, kept in a Registry queues take in.

A ``Queue`` makes a registry of its own unless it is given one (``Queue(registry=...)``), and
several queues may share one: the Flask extension declares on one registry that the queue of
each of its apps takes in, and Django's project queue keeps its registry across a rebuild from
changed settings. Declaring never needs a database, nor even the queue's settings: a task's
unset options take the queue's defaults when it is used (see ``taskito.options``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import validation
from .exceptions import InvalidValueError
from .middleware import check_event, check_middleware
from .options import JobOptions
from .schedule import validate_schedule

Hook = Callable[..., Any]
HOOK_KINDS = ("before_task", "after_task", "on_success", "on_failure")


@dataclass(frozen=True)
class TaskSpec:
    """A declared task: its name, its function, and the options ``@task`` gave it (None: the queue's)."""

    name: str
    fn: Callable[..., Any]
    options: JobOptions

    @property
    def is_async(self) -> bool:
        """An ``async def``: workers await it on their event loop (--async-concurrency at once), not on a thread."""
        return inspect.iscoroutinefunction(self.fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """A plain call, no queue involved (enqueue through a queue: ``queue.tasks[name].delay(...)``)."""
        return self.fn(*args, **kwargs)


@dataclass(frozen=True)
class PeriodicSpec:
    name: str
    task_name: str
    cron: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    queue: str
    timezone: str | None


def spec_of(declared: Any) -> TaskSpec | None:
    """The TaskSpec of a declared task (a TaskSpec, or what a decorator returned for one), else None."""
    if isinstance(declared, TaskSpec):
        return declared
    spec = getattr(declared, "spec", None)
    return spec if isinstance(spec, TaskSpec) else None


class Registry:
    """Tasks, periodic schedules, hooks, middleware and event handlers: declared here once, run by every
    queue that takes it in."""

    def __init__(self) -> None:
        self.tasks: dict[str, TaskSpec] = {}
        self.periodic_tasks: list[PeriodicSpec] = []
        self.hooks: dict[str, list[Hook]] = {kind: [] for kind in HOOK_KINDS}
        self.middleware: list[Any] = []
        self.event_handlers: dict[str, list[Hook]] = {}

    def __repr__(self) -> str:
        return f"<taskito.Registry {len(self.tasks)} task(s), {len(self.periodic_tasks)} schedule(s)>"

    def task(self, name: str | None = None, **options: Any) -> Callable[[Callable[..., Any]], TaskSpec]:
        """Declare a function as a task; ``options`` are those of ``taskito.options.JobOptions`` that a task
        may set (checked now: a bad one raises InvalidValueError, an unknown one TypeError)."""
        declared = JobOptions.for_task(options)

        def decorator(fn: Callable[..., Any]) -> TaskSpec:
            already = spec_of(fn)
            if already is not None:
                raise TypeError(f"{already.name} is already a task")
            task_name = validation.name("task name", name or f"{fn.__module__}.{fn.__qualname__}")
            assert task_name is not None
            if inspect.isasyncgenfunction(fn):
                raise InvalidValueError(f"task {task_name!r} is an async generator function (async def with yield): "
                                        "a task must return its result; collect the values and return a list")
            spec = TaskSpec(task_name, fn, declared)
            self.tasks[spec.name] = spec
            return spec

        return decorator

    def periodic(self, cron: str, name: str | None = None, args: Sequence[Any] = (),
                 kwargs: Mapping[str, Any] | None = None, queue: str = "default", timezone: str | None = None,
                 check: Callable[[str, Sequence[Any], Mapping[str, Any] | None], Any] | None = None,
                 ) -> Callable[[Any], TaskSpec]:
        """Declare a cron schedule (6 fields, seconds first) of a task, or of a function it makes a task.

        Stacked on a task, ``name`` names the extra schedule (two unnamed schedules of one task would
        otherwise be one). ``check(task_name, args, kwargs)`` may refuse the arguments before anything
        is declared (a Queue checks that its serializer can hold them).
        """
        validate_schedule(cron, timezone)
        name = validation.name("periodic name", name or None)
        queue = validation.name("queue", queue)
        assert queue is not None

        def decorator(fn: Any) -> TaskSpec:
            spec = spec_of(fn) or self.task(name=name, queue=queue)(fn)
            self.tasks.setdefault(spec.name, spec)  # a task declared on another registry is declared here too
            if check is not None:
                check(spec.name, args, kwargs)
            schedule = name or spec.name
            if any(existing.name == schedule for existing in self.periodic_tasks):
                raise InvalidValueError(f"a periodic schedule named {schedule!r} is declared already: give the upper "
                                        "(outer) of the stacked @periodic decorators a name=... of its own")
            self.periodic_tasks.append(PeriodicSpec(name=schedule, task_name=spec.name, cron=cron, args=tuple(args),
                                                    kwargs=dict(kwargs or {}), queue=queue, timezone=timezone))
            return spec

        return decorator

    def hook(self, kind: str, fn: Hook) -> Hook:
        """Add ``fn`` to the hooks of ``kind`` (one of HOOK_KINDS)."""
        self.hooks[kind].append(fn)
        return fn

    def before_task(self, fn: Hook) -> Hook:
        """``fn(task_name, args, kwargs)`` runs before every task."""
        return self.hook("before_task", fn)

    def after_task(self, fn: Hook) -> Hook:
        """``fn(task_name, args, kwargs, result, error)`` runs after every attempt."""
        return self.hook("after_task", fn)

    def on_success(self, fn: Hook) -> Hook:
        """``fn(task_name, args, kwargs, result)`` runs after every successful task."""
        return self.hook("on_success", fn)

    def on_failure(self, fn: Hook) -> Hook:
        """``fn(task_name, args, kwargs, error)`` runs after every failed attempt."""
        return self.hook("on_failure", fn)

    def add_middleware(self, obj: Any) -> Any:
        """Add middleware (see ``taskito.middleware.Middleware``); it runs after those added before it."""
        check_middleware(obj)
        self.middleware.append(obj)
        return obj

    def on_event(self, name: str) -> Callable[[Hook], Hook]:
        """Decorator: ``fn(event)`` runs on every event ``name`` (one of ``taskito.middleware.EVENTS``)."""
        event = check_event(name)

        def decorator(fn: Hook) -> Hook:
            self.event_handlers.setdefault(event, []).append(fn)
            return fn

        return decorator
