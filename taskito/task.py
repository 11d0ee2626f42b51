"""Tasks as a queue runs them: the declared task bound to its queue, and signatures (a call to send later)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .aio import AsyncSignatureMethods, AsyncTaskMethods
from .options import JobOptions

if TYPE_CHECKING:
    from .queue import Queue
    from .registry import TaskSpec
    from .result import JobHandle
    from .workflow import Chain


class TaskWrapper(AsyncTaskMethods):
    """What ``@queue.task`` returns: still callable directly, plus ``delay`` and friends
    (``adelay`` and friends from async code).

    It is a declared task (``spec``) bound to one queue; ``options`` are the declared ones with
    the unset ones taken from that queue's defaults.
    """

    def __init__(self, queue: Queue, spec: TaskSpec) -> None:
        self.queue = queue
        self.spec = spec
        self.fn = spec.fn
        self.name = spec.name
        self.is_async = spec.is_async
        self._resolved: tuple[object, JobOptions, dict[str, Any]] | None = None
        functools.update_wrapper(self, spec.fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<task {self.name}>"

    def _defaults(self) -> tuple[object, JobOptions, dict[str, Any]]:
        """The options resolved against the queue's settings, again only when those changed."""
        resolved = self._resolved
        settings_id = self.queue._settings_id
        if resolved is None or resolved[0] is not settings_id:
            options = self.spec.options.resolved(self.queue)
            resolved = self._resolved = (settings_id, options, options.values())
        return resolved

    @property
    def options(self) -> JobOptions:
        """Every option of this task's jobs (unless a call overrides it)."""
        return self._defaults()[1]

    def job_defaults(self) -> dict[str, Any]:
        """``options`` as the fields of a new job."""
        return self._defaults()[2]

    def delay(self, *args: Any, **kwargs: Any) -> JobHandle:
        """Enqueue with the task's default options."""
        return self.queue.enqueue(self.name, args, kwargs)

    def apply_async(self, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
                    **options: Any) -> JobHandle:
        """Enqueue with per-call options (``taskito.options.JobOptions``: priority, delay, queue, max_retries,
        timeout, unique_key, expires, depends_on, concurrency_key); ``delay`` and ``expires`` are seconds from now."""
        return self.queue.enqueue(self.name, args, kwargs, **options)

    def map(self, args_list: Iterable[Sequence[Any]], **options: Any) -> list[JobHandle]:
        """Enqueue one job per argument tuple, all or none (see ``Queue.enqueue_many``: read as written)."""
        return self.queue.enqueue_many(self.name, (tuple(args) for args in args_list), **options)

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A call to send later: ``add.s(2, 3).delay()``. In a workflow, the previous step's result
        comes first: ``chain(add.s(1, 2), add.s(10))`` runs ``add(3, 10)`` second."""
        return Signature(self, args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature: in a workflow it takes no result from the step before it."""
        return Signature(self, args, kwargs, immutable=True)


class TaskMap(Mapping[str, TaskWrapper]):
    """``queue.tasks``: the tasks of the queue's registry, each bound to the queue (made on first use)."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue
        self._bound: dict[str, TaskWrapper] = {}

    def __getitem__(self, name: str) -> TaskWrapper:
        spec = self._queue.registry.tasks[name]
        wrapper = self._bound.get(name)
        if wrapper is None or wrapper.spec is not spec:  # first use, or declared again since
            wrapper = self._bound[name] = self._queue.task_class(self._queue, spec)
        return wrapper

    def get(self, name: str, default: Any = None) -> Any:  # Mapping's, without the exception (enqueue's path)
        return self[name] if name in self._queue.registry.tasks else default

    def __contains__(self, name: object) -> bool:
        return name in self._queue.registry.tasks

    def __iter__(self) -> Iterator[str]:
        return iter(self._queue.registry.tasks)

    def __len__(self) -> int:
        return len(self._queue.registry.tasks)

    def __repr__(self) -> str:
        return f"<tasks of {self._queue!r}: {', '.join(self)}>"


@dataclass(frozen=True)
class Signature(AsyncSignatureMethods):
    """A task call to send later, alone (``delay``) or as a step of a workflow (``taskito.workflow``).

    ``options`` are per-call job options (``set``); ``immutable`` (``task.si``): in a workflow, the
    previous step's result is not passed in; ``mapped`` (``chunks``, ``starmap``): ``args`` holds one
    list of argument lists, and the job calls the task once per list, returning the list of results.
    """

    task: TaskWrapper
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    immutable: bool = False
    mapped: bool = False

    def set(self, **options: Any) -> Signature:
        """The same call with these job options too (``queue=``, ``priority=``, ``delay=``...): checked now."""
        JobOptions.for_call(options)
        return replace(self, options={**self.options, **options})

    def __or__(self, other: Any) -> Chain:
        """``a.s(1) | b.s()``: a chain of the two."""
        from .workflow import Chain

        return Chain(self, other)

    def delay(self) -> JobHandle:
        return self.task.apply_async(args=self.args, kwargs=self.kwargs, **self.options)

    def apply_async(self, **options: Any) -> JobHandle:
        return self.task.apply_async(args=self.args, kwargs=self.kwargs, **{**self.options, **options})
