"""The async client API: ``await task.adelay()``, ``await job.aresult()``, ``await queue.astats()``...

Every ``a``-method is the method of the same name without the ``a``, with the same arguments,
checks and errors, and none blocks the event loop it is awaited on:

- On PostgreSQL, enqueueing (``adelay``, ``aapply_async``, ``aenqueue``; with ``unique_key`` or
  ``depends_on`` see below), reading a job (``aget_job``, ``arefresh``) and waiting for it
  (``aresult``) use psycopg's async connections, a few per event loop; ``aresult`` waits for the
  notification of the storage's one LISTEN connection, so a thousand waiters cost no thread and no
  connection each.
- Everything else, and everything on SQLite (Python's sqlite3 has no async driver), runs the
  blocking call on a small thread pool of the queue's (ASYNC_THREADS threads), where a SQLite call
  takes a fraction of a millisecond; ``aresult`` on SQLite is one poll per event loop for all its
  waiters, on that pool.

The classes here are mixins of ``TaskWrapper``, ``Signature``, ``JobResult`` and ``Queue``.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from . import validation

if TYPE_CHECKING:
    from .queue import Queue
    from .result import JobHandle, JobResult
    from .storage import JobRecord, NewJob
    from .task import TaskWrapper

T = TypeVar("T")

ASYNC_THREADS = 4  # per queue: the most blocking calls the a-methods run at once
POLL_FIRST = 0.0005  # SQLite aresult: seconds between reads of the waited jobs, growing while none finishes...
POLL_MAX = 0.05  # ...to this

# Queue methods whose a-mirror runs the method itself on the queue's thread pool.
MIRRORED = ("list_jobs", "stats", "stats_by_queue", "stats_all_queues", "job_errors", "workers", "cancel_job",
            "get_workflow", "dead_letters", "retry_dead", "delete_dead", "purge_completed", "purge_dead",
            "purge_cancelled", "pause", "resume", "paused_queues", "purge_queue", "revoke_task", "retry_all_dead",
            "replay", "periodic_schedules", "pause_periodic", "resume_periodic", "run_periodic_now", "job_logs",
            "task_stats", "queue_stats", "list_workflows")

_state_lock = threading.Lock()


class _AsyncState:
    """What one queue's a-methods share: the thread pool, and the SQLite result poll of each event loop."""

    def __init__(self) -> None:
        self.threads = ThreadPoolExecutor(ASYNC_THREADS, thread_name_prefix="taskito-aio")
        self.polls: dict[asyncio.AbstractEventLoop, _ResultPoll] = {}


def _state(queue: Queue) -> _AsyncState:
    state = queue.__dict__.get("_async_state")
    if state is None:
        with _state_lock:
            state = queue.__dict__.get("_async_state")
            if state is None:
                state = queue.__dict__["_async_state"] = _AsyncState()
    return state


async def run_blocking(queue: Queue, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on the queue's thread pool, awaited without blocking the loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_state(queue).threads, functools.partial(fn, *args, **kwargs))


def _native(queue: Queue) -> Any:
    """The storage's own async access (PostgreSQL's ``aio``), or None."""
    return getattr(queue.storage, "aio", None)


async def enqueue_jobs(queue: Queue, jobs: Sequence[NewJob]) -> list[str]:
    native = _native(queue)
    if native is not None and native.enqueues(jobs):
        return await native.enqueue(jobs)
    return await run_blocking(queue, queue.storage.enqueue, jobs)


async def read_job(queue: Queue, job_id: str) -> JobRecord | None:
    native = _native(queue)
    if native is not None:
        return await native.get_job(job_id)
    return await run_blocking(queue, queue.storage.get_job, job_id)


async def wait_for_job(queue: Queue, job_id: str, timeout: float) -> JobRecord | None:
    """The job once finished, or as it is when ``timeout`` passes (None: not found)."""
    native = _native(queue)
    if native is not None:
        return await native.wait_for_result(job_id, timeout)
    loop = asyncio.get_running_loop()
    state = _state(queue)
    with _state_lock:
        poll = state.polls.get(loop)
        if poll is None:
            for closed in [other for other in state.polls if other.is_closed()]:
                del state.polls[closed]
            poll = state.polls[loop] = _ResultPoll(queue)
    return await poll.wait(job_id, timeout)


class _ResultPoll:
    """SQLite's ``aresult``: one task per event loop reads every waited job in one call on the thread
    pool, at once when a waiter arrives, then at a growing interval until one finishes."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.waiting: dict[str, list[asyncio.Future[JobRecord | None]]] = {}
        self.arrived = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def wait(self, job_id: str, timeout: float) -> JobRecord | None:
        future: asyncio.Future[JobRecord | None] = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(job_id, []).append(future)
        self.arrived.set()
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run(), name="taskito-result-poll")
        try:
            done, _ = await asyncio.wait([future], timeout=None if timeout == float("inf") else timeout)
        finally:
            waiters = self.waiting.get(job_id)
            if waiters is not None and future in waiters:
                waiters.remove(future)
                if not waiters:
                    del self.waiting[job_id]
        if done:
            return future.result()
        return await run_blocking(self.queue, self.queue.storage.get_job, job_id)  # as it is now

    def _read(self, ids: list[str]) -> list[JobRecord | None]:
        return [self.queue.storage.get_job(job_id) for job_id in ids]

    async def _run(self) -> None:
        interval = POLL_FIRST
        while self.waiting:
            self.arrived.clear()
            ids = list(self.waiting)
            try:
                records = await run_blocking(self.queue, self._read, ids)
            except Exception as exc:  # the database is unavailable: every waiter hears it
                for waiters in self.waiting.values():
                    for future in waiters:
                        if not future.done():
                            future.set_exception(exc)
                return
            finished = False
            for job_id, record in zip(ids, records, strict=True):
                if record is None or record.finished:
                    finished = True
                    for future in self.waiting.get(job_id, ()):
                        if not future.done():
                            future.set_result(record)
            interval = POLL_FIRST if finished else min(interval * 1.25, POLL_MAX)
            try:
                await asyncio.wait_for(self.arrived.wait(), interval)
                interval = POLL_FIRST
            except asyncio.TimeoutError:
                pass


# -- the mixins ----------------------------------------------------------------------------------
class AsyncTaskMethods:
    """``TaskWrapper``'s async enqueue methods."""

    queue: Queue
    name: str

    async def adelay(self, *args: Any, **kwargs: Any) -> JobHandle:
        """``delay()`` from async code."""
        return await self.queue.aenqueue(self.name, args=args, kwargs=kwargs)

    async def aapply_async(self, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
                           **options: Any) -> JobHandle:
        """``apply_async()`` from async code: the same per-call options."""
        return await self.queue.aenqueue(self.name, args=args, kwargs=kwargs, **options)

    async def amap(self, args_list: Iterable[Sequence[Any]], **options: Any) -> list[JobHandle]:
        """``map()`` from async code: one job per argument tuple, in one transaction."""
        return await self.queue.aenqueue_many(self.name, [tuple(args) for args in args_list], **options)


class AsyncSignatureMethods:
    """``Signature``'s async sending."""

    task: TaskWrapper
    args: tuple[Any, ...]
    kwargs: dict[str, Any] | None
    options: Mapping[str, Any]

    async def adelay(self) -> JobHandle:
        return await self.task.aapply_async(args=self.args, kwargs=self.kwargs, **self.options)

    async def aapply_async(self, **options: Any) -> JobHandle:
        return await self.task.aapply_async(args=self.args, kwargs=self.kwargs, **{**self.options, **options})


class AsyncResultMethods:
    """``JobResult``'s async reads: ``arefresh()`` and ``aresult()``."""

    queue: Queue
    id: str

    async def arefresh(self: JobResult) -> JobResult:  # type: ignore[misc]  # a JobResult mixin
        """``refresh()`` from async code."""
        return self._keep(await read_job(self.queue, self.id))

    async def aresult(self: JobResult, timeout: float | None = 30) -> Any:  # type: ignore[misc]  # a JobResult mixin
        """``result()`` from async code: waits without blocking the loop; the same value and errors."""
        seconds = validation.seconds("timeout", timeout)  # None: wait for ever
        record = await wait_for_job(self.queue, self.id, float("inf") if seconds is None else seconds)
        return self._value(record, timeout)


class AsyncQueueMethods:
    """``Queue``'s async methods: ``aenqueue``, ``aenqueue_prepared``, ``aenqueue_many``, ``aget_job``, and an
    ``a``-mirror of each name in MIRRORED (added to the class that mixes this in)."""

    storage: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in MIRRORED:
            if hasattr(cls, name) and not hasattr(cls, f"a{name}"):
                setattr(cls, f"a{name}", _mirror(getattr(cls, name)))

    async def aenqueue(self: Queue, task_name: str, args: Sequence[Any] = (),  # type: ignore[misc]  # a Queue mixin
                       kwargs: dict[str, Any] | None = None, **options: Any) -> JobHandle:
        """``enqueue()`` from async code. In eager mode an ``async def`` task is awaited on this loop."""
        return await self.aenqueue_prepared(self.prepare_job(task_name, args, kwargs, **options))

    async def aenqueue_prepared(self: Queue, job: NewJob) -> JobHandle:  # type: ignore[misc]  # a Queue mixin
        """``enqueue_prepared()`` from async code: write a job from ``prepare_job`` (in eager mode, run it)."""
        from .eager import arun_eagerly
        from .result import JobResult

        announced = [(job.id, job.task_name, job.queue)]
        if self.eager:
            self._announce(announced)
            return await arun_eagerly(self, job)
        [job_id] = await enqueue_jobs(self, [job])
        self._announce(announced)
        return JobResult(self, job_id)

    async def aenqueue_many(self: Queue, task_name: str,  # type: ignore[misc]  # a Queue mixin
                            args_list: Iterable[Sequence[Any]],
                            kwargs_list: Iterable[dict[str, Any] | None] | None = None,
                            **options: Any) -> list[JobHandle]:
        """``enqueue_many()`` from async code: one transaction."""
        from .result import JobResult

        jobs = list(self._prepare_many(task_name, args_list, kwargs_list, options))
        if self.eager:
            return [await self.aenqueue_prepared(job) for job in jobs]
        if not jobs:
            return []
        ids = await enqueue_jobs(self, jobs)
        self._announce((job.id, job.task_name, job.queue) for job in jobs)
        return [JobResult(self, job_id) for job_id in ids]

    async def aget_job(self: Queue, job_id: str) -> JobResult | None:  # type: ignore[misc]  # a Queue mixin
        """``get_job()`` from async code."""
        from .result import JobResult

        record = await read_job(self, job_id)
        return None if record is None else JobResult(self, job_id, record)

    def _close_async(self) -> None:
        """Stop the a-methods' thread pool (``Queue.close()``)."""
        state = self.__dict__.pop("_async_state", None)
        if state is not None:
            state.threads.shutdown(wait=False)


def _mirror(method: Callable[..., T]) -> Callable[..., Any]:
    name = method.__name__

    @functools.wraps(method)
    async def mirror(self: Queue, *args: Any, **kwargs: Any) -> T:
        return await run_blocking(self, getattr(self, name), *args, **kwargs)

    mirror.__name__ = f"a{name}"
    mirror.__qualname__ = f"{mirror.__qualname__.rsplit('.', 1)[0]}.a{name}"
    mirror.__doc__ = f"``{name}()`` from async code, on the queue's thread pool.\n\n{method.__doc__ or ''}".rstrip()
    return mirror
