"""Queue: the one object users hold: task registry, enqueueing, inspection and operations."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import config, validation
from .eager import EagerResult, run_eagerly
from .exceptions import InvalidValueError, JobNotFoundError, SerializationError
from .result import JobResult
from .schedule import validate_schedule
from .serializers import Serializer, describe_unserializable, get_serializer
from .storage import NewJob, Status, Storage, new_job_id, open_storage
from .storage.base import empty_stats
from .task import TaskOptions, TaskWrapper, parse_rate_limit

if TYPE_CHECKING:
    from .worker import Worker

logger = logging.getLogger("taskito.queue")

Hook = Callable[..., Any]


@dataclass(frozen=True)
class PeriodicSpec:
    name: str
    task_name: str
    cron: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    queue: str
    timezone: str | None


def add_schedule(specs: list[PeriodicSpec], fn: Any, wrapper: TaskWrapper, name: str | None, cron: str,
                 args: Sequence[Any], kwargs: dict[str, Any] | None, queue: str, timezone: str | None) -> None:
    """Add the schedule ``periodic()`` declares; one name, one schedule.

    ``name`` names the task when ``periodic`` makes it; stacked on a task, it names the extra
    schedule (two unnamed schedules of one task would otherwise be one).
    """
    schedule = (name or wrapper.name) if fn is wrapper else wrapper.name
    if any(spec.name == schedule for spec in specs):
        raise InvalidValueError(f"a periodic schedule named {schedule!r} is declared already: give the upper (outer) "
                                "of the stacked @periodic decorators a name=... of its own")
    specs.append(PeriodicSpec(name=schedule, task_name=wrapper.name, cron=cron, args=tuple(args),
                              kwargs=dict(kwargs or {}), queue=queue, timezone=timezone))


class Queue:
    """A task queue on SQLite (default) or PostgreSQL.

    Every argument left as None falls back to its ``TASKITO_*`` environment
    variable, then to the documented default (see ``taskito.config.SETTINGS``).
    """

    def __init__(self, db_path: str | os.PathLike[str] | None = None, backend: str | None = None,
                 db_url: str | None = None, schema: str | None = None, workers: int | None = None,
                 default_retry: int | None = None, default_timeout: float | None = None,
                 default_priority: int | None = None, result_ttl: float | None = None,
                 drain_timeout: float | None = None, pool_size: int | None = None,
                 eager: bool | None = None, serializer: str | Serializer | None = None,
                 lease_seconds: float | None = None) -> None:
        self.db_path = str(config.resolve("db_path", None if db_path is None else os.fspath(db_path)))
        self.backend = config.resolve("backend", backend)
        self.db_url = config.resolve("db_url", db_url)
        self.schema = config.resolve("schema", schema)
        self.concurrency = config.resolve("workers", workers) or os.cpu_count() or 1
        self.default_retry = config.resolve("default_retry", default_retry)
        self.default_timeout = config.resolve("default_timeout", default_timeout)
        self.default_priority = config.resolve("default_priority", default_priority)
        self.result_ttl = config.resolve("result_ttl", result_ttl)
        self.drain_timeout = config.resolve("drain_timeout", drain_timeout)
        self.lease_seconds = config.resolve("lease_seconds", lease_seconds)
        self.eager = config.resolve("eager", eager)
        self.serializer = get_serializer(config.resolve("serializer", serializer))
        self.pool_size = config.resolve("pool_size", pool_size)
        self.storage: Storage = self._open_storage()
        self.tasks: dict[str, TaskWrapper] = {}
        self.periodic_tasks: list[PeriodicSpec] = []
        self.hooks: dict[str, list[Hook]] = {"before_task": [], "after_task": [], "on_success": [], "on_failure": []}
        # Context-manager factories entered around every task run (Flask's app context, Django's
        # connection handling); integrations append to it.
        self.task_contexts: list[Callable[[], AbstractContextManager[Any]]] = []
        self._worker: Worker | None = None
        self._worker_lock = threading.Lock()

    def _open_storage(self) -> Storage:
        return open_storage(self.backend, db_path=self.db_path, db_url=self.db_url, schema=self.schema,
                            pool_size=self.pool_size)

    def reconnect(self) -> None:
        """Give this process its own database connections (a forked child must not use its parent's).

        The inherited ones are left alone, never closed: closing them would end the parent's sessions.
        """
        self._inherited_storage = self.storage
        self.storage = self._open_storage()

    def __repr__(self) -> str:
        where = self.db_path if self.backend == "sqlite" else f"{self.backend} schema {self.schema}"
        return f"<taskito.Queue {where}>"

    # -- defining tasks ------------------------------------------------------------------
    def task(self, name: str | None = None, *, max_retries: int | None = None, retry_backoff: float = 1.0,
             timeout: float | None = None, expires: float | None = None, priority: int | None = None,
             queue: str = "default", retry_on: Sequence[type[BaseException]] | None = None,
             dont_retry_on: Sequence[type[BaseException]] | None = None, rate_limit: str | None = None,
             soft_timeout: float | None = None) -> Callable[[Callable[..., Any]], TaskWrapper]:
        """Register a function as a task. Unset options use the queue's defaults."""
        per_second = parse_rate_limit(rate_limit)
        timeout = validation.timeout("timeout", timeout)
        soft_timeout = validation.seconds("soft_timeout", soft_timeout)
        expires = validation.seconds("expires", expires)
        retry_backoff = validation.seconds("retry_backoff", retry_backoff)
        max_retries = validation.count("max_retries", max_retries)
        priority = validation.priority("priority", priority)
        queue = validation.name("queue", queue)

        def decorator(fn: Callable[..., Any]) -> TaskWrapper:
            options = TaskOptions(
                name=validation.name("task name", name or f"{fn.__module__}.{fn.__qualname__}"),
                queue=queue,
                priority=self.default_priority if priority is None else priority,
                max_retries=self.default_retry if max_retries is None else max_retries,
                retry_backoff=retry_backoff,
                timeout=self.default_timeout if timeout is None else timeout,
                soft_timeout=soft_timeout,
                expires=expires,
                retry_on=tuple(retry_on) if retry_on else None,
                dont_retry_on=tuple(dont_retry_on or ()),
                rate_limit=per_second,
            )
            wrapper = TaskWrapper(self, fn, options)
            self.tasks[options.name] = wrapper
            return wrapper

        return decorator

    def periodic(self, cron: str, name: str | None = None, args: Sequence[Any] = (),
                 kwargs: dict[str, Any] | None = None, queue: str = "default",
                 timezone: str | None = None) -> Callable[[Callable[..., Any]], TaskWrapper]:
        """Register a task that workers enqueue on a cron schedule (6 fields, seconds first).

        Each tick is enqueued once, however many workers run.
        """
        validate_schedule(cron, timezone)
        name = validation.name("periodic name", name or None)
        queue = validation.name("queue", queue)

        def decorator(fn: Callable[..., Any]) -> TaskWrapper:
            wrapper = fn if isinstance(fn, TaskWrapper) else self.task(name=name, queue=queue)(fn)
            self.encode_payload(wrapper.name, args, kwargs)  # arguments it cannot hold fail here, not in a worker
            add_schedule(self.periodic_tasks, fn, wrapper, name, cron, args, kwargs, queue, timezone)
            return wrapper

        return decorator

    def before_task(self, fn: Hook) -> Hook:
        """``fn(task_name, args, kwargs)`` runs before every task."""
        self.hooks["before_task"].append(fn)
        return fn

    def after_task(self, fn: Hook) -> Hook:
        """``fn(task_name, args, kwargs, result, error)`` runs after every attempt."""
        self.hooks["after_task"].append(fn)
        return fn

    def on_success(self, fn: Hook) -> Hook:
        """``fn(task_name, args, kwargs, result)`` runs after every successful task."""
        self.hooks["on_success"].append(fn)
        return fn

    def on_failure(self, fn: Hook) -> Hook:
        """``fn(task_name, args, kwargs, error)`` runs after every failed attempt."""
        self.hooks["on_failure"].append(fn)
        return fn

    # -- enqueueing -----------------------------------------------------------------------
    def encode_payload(self, task_name: str, args: Sequence[Any], kwargs: dict[str, Any] | None) -> bytes:
        """Serialize arguments, naming the argument that cannot be held."""
        if (isinstance(args, (str, bytes)) or not isinstance(args, Iterable)
                or not isinstance(kwargs, (Mapping, type(None)))):
            raise InvalidValueError(f"args must be a list or tuple and kwargs a dict (or None), got args "
                                    f"{validation.shown(args)} and kwargs {validation.shown(kwargs)}")
        args = tuple(args)
        kwargs = dict(kwargs or {})
        try:
            return self.serializer.dumps({"args": list(args), "kwargs": kwargs})
        except SerializationError as exc:
            message = describe_unserializable(self.serializer, task_name, args, kwargs, str(exc))
            raise SerializationError(message) from None

    def _new_jobs(self, task_name: str, calls: Iterable[tuple[Sequence[Any], dict[str, Any] | None]], *,
                  priority: int | None = None, delay: float | None = None, queue: str | None = None,
                  max_retries: int | None = None, timeout: float | None = None,
                  unique_key: str | None = None, expires: float | None = None,
                  depends_on: Any = None) -> Iterator[NewJob]:
        """Build the rows for calls of one task, as they are read; the options are checked and resolved
        once for all of them, at once (a bad option fails before any row is built)."""
        task_name = validation.name("task name", task_name)
        delay = validation.seconds("delay", delay)
        timeout = validation.timeout("timeout", timeout)
        expires = validation.seconds("expires", expires)
        max_retries = validation.count("max_retries", max_retries)
        priority = validation.priority("priority", priority)
        queue = validation.name("queue", queue)
        unique_key = validation.name("unique_key", unique_key)
        task = self.tasks.get(task_name)
        opts = task.options if task else None
        shared = {
            "task_name": task_name,
            "queue": queue or (opts.queue if opts else "default"),
            "priority": priority if priority is not None else (opts.priority if opts else self.default_priority),
            # Unknown here (enqueued by name): leave None so the worker applies the task's own settings.
            "max_retries": max_retries if max_retries is not None else (opts.max_retries if opts else None),
            "timeout": timeout if timeout is not None else (opts.timeout if opts else None),
            "delay": delay or 0.0,
            "expires": expires if expires is not None else (opts.expires if opts else None),
            "unique_key": unique_key,
            "depends_on": _job_ids(depends_on),
        }
        return (NewJob(id=new_job_id(), payload=self.encode_payload(task_name, args, kwargs), **shared)
                for args, kwargs in calls)

    def prepare_job(self, task_name: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
                    **options: Any) -> NewJob:
        """Validate and encode a job without writing it: its id is known now.

        ``queue.storage.enqueue([job])`` writes it later, e.g. when a transaction commits.
        """
        return next(self._new_jobs(task_name, [(args, kwargs)], **options))

    def enqueue(self, task_name: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
                **options: Any) -> JobResult:
        """Enqueue a job by task name (the task need not be importable here)."""
        job = self.prepare_job(task_name, args, kwargs, **options)  # the same checks in eager mode
        if self.eager:
            return run_eagerly(self, job)
        [job_id] = self.storage.enqueue([job])
        return JobResult(self, job_id)

    def enqueue_many(self, task_name: str, args_list: Iterable[Sequence[Any]],
                     kwargs_list: Iterable[dict[str, Any] | None] | None = None,
                     **options: Any) -> list[JobResult]:
        """Enqueue many jobs of one task, all or none.

        The arguments are read as they are written (a generator of a million is fine: memory holds a
        chunk of jobs, not all of them); a large batch commits in chunks that no worker sees until the
        last, so other writers never wait long behind it, and if it fails none of its jobs is left.
        """
        if kwargs_list is None:
            calls: Iterable[tuple[Any, Any]] = ((args, None) for args in args_list)
        else:
            if isinstance(args_list, Sized) and isinstance(kwargs_list, Sized) and len(kwargs_list) != len(args_list):
                raise InvalidValueError(
                    f"kwargs_list has {len(kwargs_list)} entries but args_list has {len(args_list)}")
            calls = _pairs(args_list, kwargs_list)
        jobs = self._new_jobs(task_name, calls, **options)
        if self.eager:
            return [run_eagerly(self, job) for job in jobs]
        return [JobResult(self, job_id) for job_id in self.storage.enqueue(jobs)]

    # -- inspecting ------------------------------------------------------------------------
    def get_job(self, job_id: str) -> JobResult | None:
        """The job with this id, or None (also for a string that cannot be a job id)."""
        record = self.storage.get_job(job_id)
        return None if record is None else JobResult(self, job_id, record)

    def list_jobs(self, status: str | None = None, queue: str | None = None, task_name: str | None = None,
                  limit: int = 50, offset: int = 0) -> list[JobResult]:
        """Newest first. ``status`` is one of pending, running, complete, failed, dead, cancelled.

        A ``queue`` or ``task_name`` that no job can have (see ``validation.name``) finds nothing.
        """
        status = None if status is None else Status.parse(status)
        limit = validation.count("limit", limit)
        offset = validation.count("offset", offset)
        if _impossible(queue) or _impossible(task_name):
            return []
        records = self.storage.list_jobs(status=status, queue=queue, task_name=task_name,
                                         limit=limit, offset=offset)
        return [JobResult(self, record.id, record) for record in records]

    def stats(self) -> dict[str, int]:
        """Job counts: pending, running, completed, failed, dead, cancelled (always all six)."""
        return self.storage.stats()

    def stats_by_queue(self, name: str) -> dict[str, int]:
        """The six counts of one queue (all zero for a name no queue can have)."""
        if _impossible(name):
            return empty_stats()
        return self.storage.stats(queue=name)

    def stats_all_queues(self) -> dict[str, dict[str, int]]:
        return self.storage.stats_all_queues()

    def check_counts(self, repair: bool = False) -> list[dict[str, Any]]:
        """Recount jobs and failed attempts and compare with the counters behind stats() and /metrics.

        The counters change with every job in the same transaction, so they should always match; this
        returns the ones that differ (empty: all good), and with ``repair`` rebuilds them from the
        recount. It reads the whole jobs table: about a second per million jobs (SQLite's repair holds
        the write lock meanwhile).
        """
        return self.storage.check_counts(repair=repair)

    def job_errors(self, job_id: str) -> list[dict[str, Any]]:
        """One entry per failed attempt, oldest first."""
        return self.storage.job_errors(job_id)

    def workers(self) -> list[dict[str, Any]]:
        """Workers whose heartbeat is recent enough to hold their jobs' leases."""
        return self.storage.workers(alive_within=self.lease_seconds)

    # -- operating ---------------------------------------------------------------------------
    def cancel_job(self, job_id: str) -> bool:
        """Cancel a pending job (and the jobs depending on it); False if it started already, or if
        a worker has claimed it and is about to start it (it is then pending with that worker's id)."""
        return self.storage.cancel(job_id)

    def dead_letters(self, limit: int = 10, offset: int = 0) -> list[JobResult]:
        return self.list_jobs(status=Status.DEAD, limit=limit, offset=offset)

    def retry_dead(self, job_id: str) -> str:
        """Replay a dead letter as a new pending job; returns the new job's id."""
        new_id = self.storage.retry_dead(job_id, new_job_id())
        if new_id is None:
            raise JobNotFoundError(f"no dead letter with id {job_id}")
        return new_id

    def delete_dead(self, job_id: str) -> bool:
        return self.storage.delete_dead(job_id)

    def purge_completed(self, older_than: float = 86400) -> int:
        """Delete completed jobs finished more than ``older_than`` seconds ago."""
        validation.seconds("older_than", older_than)
        return self.storage.purge(Status.COMPLETE, older_than)

    def purge_dead(self, older_than: float = 86400) -> int:
        """Delete dead letters that died more than ``older_than`` seconds ago."""
        validation.seconds("older_than", older_than)
        return self.storage.purge(Status.DEAD, older_than)

    def purge_cancelled(self, older_than: float = 86400) -> int:
        """Delete cancelled (and expired) jobs cancelled more than ``older_than`` seconds ago."""
        validation.seconds("older_than", older_than)
        return self.storage.purge(Status.CANCELLED, older_than)

    def pause(self, name: str = "default") -> None:
        """Stop workers from claiming jobs of this queue, from their very next claim."""
        self.storage.pause(validation.name("queue", name))

    def resume(self, name: str = "default") -> None:
        self.storage.resume(validation.name("queue", name))

    def paused_queues(self) -> list[str]:
        return self.storage.paused_queues()

    # -- running -------------------------------------------------------------------------------
    def default_queues(self) -> list[str]:
        """What a worker without ``queues`` serves: every queue its tasks use, plus default."""
        names = {"default"} | {task.options.queue for task in self.tasks.values()}
        names |= {spec.queue for spec in self.periodic_tasks}
        return sorted(names)

    def run_worker(self, queues: Sequence[str] | None = None, concurrency: int | None = None,
                   pool: str = "thread", burst: bool = False) -> None:
        """Run a worker in this process until SIGINT/SIGTERM or ``shutdown()``; drains on stop.

        With ``burst``, it returns as soon as no job is due (and none is running).
        """
        from .worker import Worker

        worker = Worker(self, queues=queues, concurrency=concurrency, pool=pool, burst=burst)
        with self._worker_lock:
            self._worker = worker
        try:
            worker.run()
        finally:
            with self._worker_lock:
                self._worker = None

    def shutdown(self) -> None:
        """Ask the worker running in this process to drain and stop."""
        with self._worker_lock:
            if self._worker is not None:
                self._worker.request_stop()

    def close(self) -> None:
        self.storage.close()


def _pairs(args_list: Iterable[Sequence[Any]],
           kwargs_list: Iterable[dict[str, Any] | None]) -> Iterator[tuple[Any, Any]]:
    """Zip the two lists as they are read, failing if one ends first."""
    try:
        yield from zip(args_list, kwargs_list, strict=True)
    except ValueError:
        raise InvalidValueError("kwargs_list and args_list have different lengths: give one kwargs entry "
                                "(or None) per args entry") from None


def _job_ids(depends_on: Any) -> list[str]:
    if depends_on is None:
        return []
    results = (JobResult, EagerResult)
    if isinstance(depends_on, (str, *results)):
        depends_on = [depends_on]
    try:
        items = list(depends_on)
    except TypeError:
        items = [depends_on]
    for item in items:
        if not isinstance(item, (str, *results)) or item == "":
            raise InvalidValueError(
                f"depends_on takes job ids or JobResults (one, or a list), got {validation.shown(item)}")
        if isinstance(item, str) and not validation.is_job_id(item):
            raise JobNotFoundError(f"depends_on names {validation.shown(item)}, which is not a job id (32 hex digits)")
    return [item if isinstance(item, str) else item.id for item in items]


def _impossible(name: str | None) -> bool:
    """A filter value no queue or task can have: it finds nothing (rather than a driver error)."""
    return name is not None and validation.name_problem(name) is not None

