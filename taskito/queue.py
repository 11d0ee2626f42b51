"""Queue: the one object users hold: task registry, enqueueing, inspection and operations."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

from . import config, taskstats, validation
from .aio import AsyncQueueMethods
from .connections import dbapi_connection
from .eager import run_eagerly
from .exceptions import InvalidValueError, JobNotFoundError, SerializationError
from .middleware import JobInfo, announce_cancelled, call_middleware, emit, has_middleware
from .options import JobOptions, concurrency_key_of, replayed
from .registry import Hook, PeriodicSpec, Registry
from .result import JobHandle, JobResult
from .schedule import next_run
from .serializers import Serializer, describe_unserializable
from .storage import JOB_ORDERS, NewJob, PeriodicDef, Status, Storage, engine, new_job_id
from .storage.base import empty_stats
from .task import Signature, TaskMap, TaskWrapper
from .workflow import WorkflowResult

if TYPE_CHECKING:
    from .worker import Worker

logger = logging.getLogger("taskito.queue")


class Queue(AsyncQueueMethods):
    """A task queue on SQLite (default) or PostgreSQL.

    Every argument left as None falls back to its ``TASKITO_*`` environment
    variable, then to the documented default (see ``taskito.config.SETTINGS``).
    Building a Queue checks its settings but opens no connection: the database is
    opened (and its schema created or migrated) on first use, or by ``connect()``.
    Tasks, schedules and hooks go to its ``registry``, its own unless one is given.
    From async code, ``a``-methods do the same without blocking the loop (see ``taskito.aio``).
    """

    # What the task decorator returns, bound to this queue (taskito_django's adds on-commit variants).
    task_class: type[TaskWrapper] = TaskWrapper
    # The settings (config.SETTINGS), kept as attributes.
    db_path: str
    backend: str
    db_url: str | None
    schema: str
    concurrency: int
    async_concurrency: int
    default_retry: int
    default_timeout: float
    default_priority: int
    result_ttl: float | None
    drain_timeout: float
    cancel_grace: float
    pool_size: int | None
    lease_seconds: float
    serializer: Serializer
    eager: bool
    max_log_lines: int
    metrics_retention: float
    _settings_id: object  # a new object whenever the settings are (re)applied: task options follow
    _by_name: tuple[object, dict[str, Any]] | None = None

    def __init__(self, db_path: str | os.PathLike[str] | None = None, backend: str | None = None,
                 db_url: str | None = None, schema: str | None = None, workers: int | None = None,
                 default_retry: int | None = None, default_timeout: float | None = None,
                 default_priority: int | None = None, result_ttl: float | None = None,
                 drain_timeout: float | None = None, pool_size: int | None = None,
                 eager: bool | None = None, serializer: str | Serializer | None = None,
                 lease_seconds: float | None = None, registry: Registry | None = None,
                 async_concurrency: int | None = None, cancel_grace: float | None = None,
                 max_log_lines: int | None = None, metrics_retention: float | None = None) -> None:
        explicit = {name: value for name, value in locals().items() if name in config.SETTINGS_BY_KWARG}
        self._init_state(registry)
        self._apply_settings(config.queue_settings(explicit))

    def _init_state(self, registry: Registry | None) -> None:
        """What a Queue holds besides its settings."""
        self.registry = registry if registry is not None else Registry()
        self.tasks: Mapping[str, TaskWrapper] = TaskMap(self)
        # Context-manager factories entered around every task run (Flask's app context, Django's
        # connection handling); integrations append to it.
        self.task_contexts: list[Callable[[], AbstractContextManager[Any]]] = []
        self._storage: Storage | None = None
        self._storage_lock = threading.Lock()
        self._worker: Worker | None = None
        self._worker_lock = threading.Lock()
        # The app connection of the enclosing using_connection() block, if any.
        self._connection: ContextVar[Any] = ContextVar(f"taskito_connection_{id(self)}", default=None)
        # Integrations set this to find the app's current transaction: it returns the connection to
        # enqueue through (taskito_django: Django's, inside atomic()), or None for the queue's own.
        self.transaction_connection: Callable[[], Any] | None = None

    def _apply_settings(self, settings: Mapping[str, Any]) -> None:
        """Keep resolved settings (``config.queue_settings``) and check where the database goes, without
        connecting: a bad path or URL, or a missing driver, raises ConfigurationError now."""
        opener = engine(settings["backend"], db_path=settings["db_path"], db_url=settings["db_url"],
                        schema=settings["schema"], pool_size=settings["pool_size"])
        for name, value in settings.items():
            setattr(self, name, value)
        self._open_storage = opener
        self._settings_id = object()

    @property
    def storage(self) -> Storage:
        """The database engine, opened on first use (a failed open is tried again by the next use)."""
        storage = self._storage
        if storage is None:
            with self._storage_lock:
                if self._storage is None:
                    self._storage = self._open_storage()
                storage = self._storage
        return storage

    def connect(self) -> Queue:
        """Open the database now rather than on first use; DatabaseUnavailableError if it cannot be reached.

        Returns the queue, so that ``Queue(...).connect()`` reads as one step.
        """
        self.storage  # noqa: B018 - opening is what the property does on first use
        return self

    def reconnect(self) -> None:
        """Give this process its own database connections (a forked child must not use its parent's).

        The inherited ones are left alone, never closed: closing them would end the parent's sessions.
        """
        self._storage_lock = threading.Lock()  # the parent's may have been held by another thread at the fork
        self._inherited_storage = self._storage
        self._storage = self._open_storage()

    def __repr__(self) -> str:
        where = self.db_path if self.backend == "sqlite" else f"{self.backend} schema {self.schema}"
        return f"<taskito.Queue {where}>"

    # -- declaring work (kept in the registry) ----------------------------------------------
    def task(self, name: str | None = None, **options: Any) -> Callable[[Callable[..., Any]], TaskWrapper]:
        """Register a function as a task. ``options`` are the task options of ``taskito.options.JobOptions``
        (max_retries, retry_backoff, timeout, expires, priority, queue, retry_on, dont_retry_on, rate_limit,
        soft_timeout, max_concurrent, concurrency_key); unset ones use the queue's defaults. ``rate_limit`` and
        ``max_concurrent`` hold for the whole cluster (see README "Controlling work")."""
        declare = self.registry.task(name, **options)
        return lambda fn: self.tasks[declare(fn).name]

    def periodic(self, cron: str, name: str | None = None, args: Sequence[Any] = (),
                 kwargs: dict[str, Any] | None = None, queue: str = "default",
                 timezone: str | None = None) -> Callable[[Callable[..., Any]], TaskWrapper]:
        """Register a task that workers enqueue on a cron schedule (6 fields, seconds first).

        Each tick is enqueued once, however many workers run.
        """
        declare = self.registry.periodic(cron, name, args, kwargs, queue, timezone,
                                         check=self._check_schedule_args)
        return lambda fn: self.tasks[declare(fn).name]

    def _check_schedule_args(self, task_name: str, args: Sequence[Any], kwargs: Mapping[str, Any] | None) -> None:
        """Refuse, at declaration, schedule arguments this queue cannot serialize (not in a worker, later)."""
        self.encode_payload(task_name, args, kwargs)

    def before_task(self, fn: Hook) -> Hook:
        """``fn(task_name, args, kwargs)`` runs before every task."""
        return self.registry.before_task(fn)

    def after_task(self, fn: Hook) -> Hook:
        """``fn(task_name, args, kwargs, result, error)`` runs after every attempt."""
        return self.registry.after_task(fn)

    def on_success(self, fn: Hook) -> Hook:
        """``fn(task_name, args, kwargs, result)`` runs after every successful task."""
        return self.registry.on_success(fn)

    def on_failure(self, fn: Hook) -> Hook:
        """``fn(task_name, args, kwargs, error)`` runs after every failed attempt."""
        return self.registry.on_failure(fn)

    def add_middleware(self, obj: Any) -> Any:
        """Add middleware: an object with any of on_enqueue, before, after, on_retry, on_dead, on_cancel
        (see ``taskito.Middleware``). What one raises is logged; the job goes on."""
        return self.registry.add_middleware(obj)

    def on_event(self, name: str) -> Callable[[Hook], Hook]:
        """Decorator: ``fn(event)`` runs on every event ``name``: job.enqueued, job.started, job.completed,
        job.retrying, job.dead, job.cancelled, worker.started or worker.stopped. ``event`` is a dict."""
        return self.registry.on_event(name)

    @property
    def periodic_tasks(self) -> list[PeriodicSpec]:
        return self.registry.periodic_tasks

    @property
    def hooks(self) -> dict[str, list[Hook]]:
        return self.registry.hooks

    # -- enqueueing -----------------------------------------------------------------------
    def encode_payload(self, task_name: str, args: Sequence[Any], kwargs: Mapping[str, Any] | None,
                       headers: Mapping[str, str] | None = None) -> bytes:
        """Serialize arguments, naming the argument that cannot be held; ``headers`` (from middleware's
        on_enqueue) travel with them to every attempt."""
        if (isinstance(args, (str, bytes)) or not isinstance(args, Iterable)
                or not isinstance(kwargs, (Mapping, type(None)))):
            raise InvalidValueError(f"args must be a list or tuple and kwargs a dict (or None), got args "
                                    f"{validation.shown(args)} and kwargs {validation.shown(kwargs)}")
        args = tuple(args)
        kwargs = dict(kwargs or {})
        payload: dict[str, Any] = {"args": list(args), "kwargs": kwargs}
        if headers:
            payload["headers"] = {str(key): str(value) for key, value in headers.items()}
        try:
            return self.serializer.dumps(payload)
        except SerializationError as exc:
            message = describe_unserializable(self.serializer, task_name, args, kwargs, str(exc))
            raise SerializationError(message) from None

    def _new_jobs(self, task_name: str, calls: Iterable[tuple[Sequence[Any], dict[str, Any] | None]],
                  options: Mapping[str, Any]) -> Iterator[NewJob]:
        """Build the rows for calls of one task, as they are read; the options are checked and resolved
        once for all of them, at once (a bad option fails before any row is built)."""
        task_name = validation.name("task name", task_name)
        task = self.tasks.get(task_name)
        fields = task.job_defaults() if task is not None else self._by_name_defaults()
        if options:
            fields = {**fields, **JobOptions.for_call(options)}
        key = fields.get("concurrency_key")
        seen = has_middleware(self.registry, "on_enqueue")
        if callable(key) or seen:  # a key from each job's arguments (the task's function), or middleware to see it
            return (self._new_job(task_name, args, kwargs, fields, key if callable(key) else None, seen)
                    for args, kwargs in calls)
        return (NewJob(id=new_job_id(), task_name=task_name, payload=self.encode_payload(task_name, args, kwargs),
                       **fields) for args, kwargs in calls)

    def _new_job(self, task_name: str, args: Sequence[Any], kwargs: dict[str, Any] | None,
                 fields: Mapping[str, Any], key: Any, seen: bool) -> NewJob:
        """A new job whose concurrency key comes from its arguments (``key``: the task's function), and that
        middleware's on_enqueue sees first (``seen``: it may add headers)."""
        if key is not None:
            fields = {**fields, "concurrency_key": concurrency_key_of(task_name, key, args, kwargs)}
        if not seen:
            return NewJob(id=new_job_id(), task_name=task_name, payload=self.encode_payload(task_name, args, kwargs),
                          **fields)
        self.encode_payload(task_name, args, kwargs)  # bad arguments fail before middleware sees them
        info = JobInfo(id=new_job_id(), task_name=task_name, queue=fields.get("queue") or "default",
                       args=tuple(args), kwargs=dict(kwargs or {}))
        call_middleware(self.registry, "on_enqueue", info)
        return NewJob(id=info.id, task_name=task_name, payload=self.encode_payload(task_name, args, kwargs,
                                                                                   info.headers), **fields)

    def _write_announced(self, jobs: Iterable[NewJob], connection: Any) -> list[str]:
        """``_write``; then, with job.enqueued handlers, announce each job written (in eager mode, before
        running it). The jobs stream through as before: only their ids and queues are kept."""
        if not self.registry.event_handlers.get("job.enqueued"):
            return self._write(jobs, connection)
        seen: list[tuple[str, str, str | None]] = []

        def tap() -> Iterator[NewJob]:
            for job in jobs:
                seen.append((job.id, job.task_name, job.queue))
                yield job

        ids = self._write(tap(), connection)
        self._announce(seen)
        return ids

    def _announce(self, jobs: Iterable[tuple[str, str, str | None]]) -> None:
        for job_id, task_name, queue in jobs:
            emit(self.registry, "job.enqueued", job_id=job_id, task_name=task_name, queue=queue)

    def _by_name_defaults(self) -> dict[str, Any]:
        """The options of a job of a task not declared here: the queue's defaults, except those its worker decides."""
        cached = self._by_name
        if cached is None or cached[0] is not self._settings_id:
            cached = self._by_name = (self._settings_id, JobOptions().resolved(self, known=False).values())
        return cached[1]

    def prepare_job(self, task_name: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
                    **options: Any) -> NewJob:
        """Check and encode a job without writing it: its id is known now, ``enqueue_prepared`` writes it
        (e.g. when a transaction commits). Bad options or arguments raise here."""
        return next(self._new_jobs(task_name, [(args, kwargs)], options))

    def _prepare_many(self, task_name: str, args_list: Iterable[Sequence[Any]],
                      kwargs_list: Iterable[dict[str, Any] | None] | None,
                      options: Mapping[str, Any]) -> Iterator[NewJob]:
        """``enqueue_many``'s jobs, checked and encoded as they are read (``aenqueue_many`` writes them too)."""
        if kwargs_list is None:
            calls: Iterable[tuple[Any, Any]] = ((args, None) for args in args_list)
        else:
            if isinstance(args_list, Sized) and isinstance(kwargs_list, Sized) and len(kwargs_list) != len(args_list):
                raise InvalidValueError(
                    f"kwargs_list has {len(kwargs_list)} entries but args_list has {len(args_list)}")
            calls = _pairs(args_list, kwargs_list)
        return self._new_jobs(task_name, calls, options)

    def enqueue_prepared(self, job: NewJob, connection: Any = None) -> JobHandle:
        """Write a job from ``prepare_job`` (in eager mode, run it); writing it again adds no second job.

        With ``connection`` (see ``using_connection``), the job is written in that connection's
        transaction and commits or rolls back with it.
        """
        if self.eager:
            self._announce([(job.id, job.task_name, job.queue)])
            return run_eagerly(self, job)
        [job_id] = self._write_announced([job], connection)
        return JobResult(self, job_id)

    def enqueue(self, task_name: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None, *,
                connection: Any = None, **options: Any) -> JobHandle:
        """Enqueue a job by task name (the task need not be importable here); ``connection``: as
        ``enqueue_prepared``."""
        return self.enqueue_prepared(self.prepare_job(task_name, args, kwargs, **options), connection)

    def enqueue_many(self, task_name: str, args_list: Iterable[Sequence[Any]],
                     kwargs_list: Iterable[dict[str, Any] | None] | None = None, *,
                     connection: Any = None, **options: Any) -> list[JobHandle]:
        """Enqueue many jobs of one task, all or none (in ``connection``'s transaction, if given).

        The arguments are read as they are written (a generator of a million is fine: memory holds a
        chunk of jobs, not all of them); a large batch commits in chunks that no worker sees until the
        last, so other writers never wait long behind it, and if it fails none of its jobs is left.
        """
        jobs = self._prepare_many(task_name, args_list, kwargs_list, options)
        if self.eager:
            return [self.enqueue_prepared(job) for job in jobs]
        return [JobResult(self, job_id) for job_id in self._write_announced(jobs, connection)]

    @contextmanager
    def using_connection(self, connection: Any) -> Iterator[None]:
        """Within the block, every enqueue of this queue (``delay``, ``apply_async``, ``map``,
        ``enqueue``...) writes its jobs through ``connection``, in the transaction it is in.

        So a job commits with the app's own rows and vanishes if they roll back, and workers are
        woken at the commit, never before. ``connection`` is a psycopg (3) or psycopg2 connection,
        a SQLAlchemy ``Session`` (Flask-SQLAlchemy's ``db.session``) or ``Connection``, or on SQLite a
        sqlite3 connection; it must reach the queue's own database (ConfigurationError otherwise).
        On a connection in autocommit mode each enqueue commits at once, as it does without one.
        """
        dbapi_connection(connection)  # the wrong kind of object fails here, before the block runs
        token = self._connection.set(connection)
        try:
            yield
        finally:
            self._connection.reset(token)

    def _write(self, jobs: Iterable[NewJob], connection: Any) -> list[str]:
        """Store jobs through ``connection``, else the one of the enclosing ``using_connection`` block or
        of ``transaction_connection``, else in a transaction of the queue's own."""
        if connection is None:
            connection = self._connection.get()
        if connection is None and self.transaction_connection is not None:
            connection = self.transaction_connection()
        if connection is None:
            return self.storage.enqueue(jobs)
        return self.storage.enqueue_on(dbapi_connection(connection), list(jobs))

    # -- inspecting ------------------------------------------------------------------------
    def get_job(self, job_id: str) -> JobResult | None:
        """The job with this id, or None (also for a string that cannot be a job id)."""
        record = self.storage.get_job(job_id)
        return None if record is None else JobResult(self, job_id, record)

    def list_jobs(self, status: str | None = None, queue: str | None = None, task_name: str | None = None,
                  limit: int = 50, offset: int = 0, order_by: str = "-created", id_prefix: str | None = None,
                  text: str | None = None) -> list[JobResult]:
        """Newest first unless ``order_by`` says otherwise: created, task, queue, status, priority, started,
        finished or attempts, with a leading ``-`` for descending (jobs not started or finished yet come last
        when sorted by that time). ``status`` is one of pending, running, complete, failed, dead, cancelled.

        ``id_prefix``: jobs whose id starts with these hex digits, newest first by id (ids start with their
        enqueue time; only the created order applies). ``text``: jobs whose arguments or last error contain
        it (ASCII letters in any case), looked for in the most recent ``TEXT_SEARCH_ROWS`` (10,000) jobs
        that match the other filters, and in the first 4 KiB of each one's arguments and error, so that a
        search costs the same at any table size.

        A ``queue`` or ``task_name`` that no job can have (see ``validation.name``) finds nothing.
        """
        status = None if status is None else Status.parse(status)
        limit = validation.count("limit", limit)
        offset = validation.count("offset", offset)
        if not isinstance(order_by, str) or order_by.removeprefix("-") not in JOB_ORDERS:
            raise InvalidValueError(f"order_by must be one of {', '.join(JOB_ORDERS)} (with '-' first for "
                                    f"descending), got {validation.shown(order_by)}")
        if id_prefix is not None:
            id_prefix = validation.job_id_prefix(id_prefix)
            if order_by.removeprefix("-") != "created":
                raise InvalidValueError(f"order_by {order_by!r} does not go with id_prefix: jobs found by id are "
                                        "listed by id, which starts with the enqueue time (order_by 'created' "
                                        "or '-created')")
        text = None if text is None else validation.search_text(text)
        if _impossible(queue) or _impossible(task_name):
            return []
        records = self.storage.list_jobs(status=status, queue=queue, task_name=task_name, limit=limit,
                                         offset=offset, order_by=order_by, id_prefix=id_prefix, text=text)
        return [JobResult(self, record.id, record) for record in records]

    def list_workflows(self, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Workflows newest first: ``id``, ``kind``, ``status`` (running, complete, failed, cancelled),
        ``created_at``, ``finished_at``, ``failed_job_id``, ``error``, ``stages``, ``stages_done`` (stages
        whose jobs all completed) and ``jobs``. ``get_workflow(id)`` has one's steps."""
        limit = validation.count("limit", limit)
        offset = validation.count("offset", offset)
        return [dataclasses.asdict(found) for found in self.storage.list_workflows(limit=limit, offset=offset)]

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

    def throughput(self, since: float, step: float) -> dict[int, dict[str, int]]:
        """Activity since ``since`` (a UNIX time) in ``step``-second buckets, bucket 0 starting at ``since``:
        ``{bucket: {"completed", "dead", "failed"}}`` (failed attempts); buckets with no activity are left out."""
        return self.storage.throughput(since, step)

    def task_metrics(self, runtime_buckets: Sequence[float]) -> dict[str, dict[str, Any]]:
        """Per task, over the jobs still stored: its six counts, its failed attempts, and a histogram of the
        run time of its completed jobs (cumulative counts at each bound of ``runtime_buckets``, seconds)."""
        return self.storage.task_metrics(runtime_buckets)

    def job_logs(self, job_id: str, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """The lines the job's task wrote with ``current_job.log()``, oldest first: ``id``, ``time``,
        ``level``, ``message`` and ``extra`` (a dict). ``after``: only lines after the one with that id
        (to follow a running job)."""
        after = validation.count("after", after)
        limit = validation.count("limit", limit, minimum=1)
        lines = self.storage.job_logs(job_id, after=after, limit=limit)
        for line in lines:
            line["extra"] = json.loads(line["extra"]) if line["extra"] else {}
        return lines

    def task_stats(self, since: float = 3600) -> dict[str, dict[str, Any]]:
        """Per task, what its attempts did in the last ``since`` seconds (from the task minutes, which
        survive purges for ``metrics_retention``): ``counts`` by outcome (complete, failed: retried, dead,
        cancelled), ``attempts``, ``failure_rate`` (failed and dead attempts / attempts), ``runtime``
        (p50, p95, p99, mean, count: seconds each attempt ran) and ``wait`` (p50, p95, mean, count:
        seconds from due to started). Percentiles are read off histograms: within a bucket's bounds."""
        return {name: totals.figures() for name, totals in sorted(self.task_minutes_histograms(since).items())}

    def queue_stats(self, since: float = 3600) -> dict[str, dict[str, Any]]:
        """Per queue: its six job counts, whether it is ``paused``, ``oldest_due_at`` (when the longest-waiting
        due job became due, a UNIX time; None when none is due) and ``oldest_due_age`` (seconds since), and,
        over the last ``since`` seconds,
        ``completed``, ``failure_rate`` and ``wait`` (p50, p95, mean, count) of its tasks' attempts."""
        start = self._metrics_start(since)
        now = time.time()
        counts = self.stats_all_queues()
        paused = set(self.paused_queues())
        totals = taskstats.totals_by(self.storage.task_minutes(start), 0)
        result: dict[str, dict[str, Any]] = {}
        for name in sorted(set(counts) | set(totals) | paused):
            oldest = self.storage.oldest_due(name, now) if counts.get(name, {}).get("pending") else None
            figures = totals[name].figures() if name in totals else taskstats.Totals().figures()
            result[name] = {**counts.get(name, empty_stats()), "paused": name in paused,
                            "oldest_due_at": oldest,
                            "oldest_due_age": None if oldest is None else max(0.0, now - oldest),
                            "completed": figures["counts"]["complete"], "failure_rate": figures["failure_rate"],
                            "wait": figures["wait"]}
        return result

    def task_minutes_histograms(self, since: float = 3600) -> dict[str, taskstats.Totals]:
        """Per task, the outcome counts and run/wait histograms behind ``task_stats`` (what /metrics shows)."""
        return taskstats.totals_by(self.storage.task_minutes(self._metrics_start(since)), 1)

    def task_series(self, since: float = 3600, step: float = 60) -> dict[int, dict[str, dict[str, Any]]]:
        """Attempts per ``step``-second bucket of the last ``since`` seconds (bucket 0 is the oldest), per
        task: ``{bucket: {task: {"complete", "failed", "dead", "cancelled", "runtime_sum"}}}``; quiet
        buckets are left out. What the dashboard's charts draw."""
        start = self._metrics_start(since)
        step = validation.seconds("step", step, positive=True)
        series: dict[int, dict[str, dict[str, Any]]] = {}
        for bucket, task_name, outcome, n, runtime_sum in self.storage.task_minutes_series(start, step):
            entry = series.setdefault(int(bucket), {}).setdefault(
                task_name, {**dict.fromkeys(taskstats.OUTCOMES, 0), "runtime_sum": 0.0})
            entry[outcome] = entry.get(outcome, 0) + int(n)
            entry["runtime_sum"] += float(runtime_sum or 0)
        return series

    def _metrics_start(self, since: float) -> float:
        """The first minute of the last ``since`` seconds (metrics are kept per minute)."""
        since = validation.seconds("since", since, positive=True)
        return (time.time() - since) // 60 * 60

    def signature(self, task_name: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
                  **options: Any) -> Signature:
        """A step for a workflow by task name: ``chain(queue.signature("app.fetch", (url,)), ...)``.

        The task must be declared on this queue (a workflow checks every step before writing any).
        """
        task = self.tasks.get(task_name) if isinstance(task_name, str) else None
        if task is None:
            known = ", ".join(sorted(self.tasks)) or "none"
            raise InvalidValueError(f"unknown task {validation.shown(task_name)}: no task of this queue has that "
                                    f"name (registered: {known}); declare it with @queue.task first")
        return Signature(task, tuple(args), kwargs).set(**options)

    def get_workflow(self, workflow_id: str) -> WorkflowResult | None:
        """The workflow with this id (``chain``/``group``/``chord`` ``.delay().id``), or None."""
        record = self.storage.get_workflow(workflow_id)
        return None if record is None else WorkflowResult(self, workflow_id, record)

    # -- operating ---------------------------------------------------------------------------
    def cancel_job(self, job_id: str) -> bool:
        """Cancel a job that has not finished; False if it has (or no job has this id).

        A waiting job is cancelled at once, with the jobs depending on it. A running one (or one a
        worker claimed) is asked to stop: within about a second its worker sets ``current_job.cancelled``
        (``check_cancelled()`` raises TaskCancelledError), cancels an async task's coroutine, and kills a
        prefork child still running ``cancel_grace`` seconds later; the job then ends ``cancelled``.
        """
        cancelled = self.storage.cancel(job_id)
        if cancelled and (self.registry.event_handlers.get("job.cancelled")
                          or has_middleware(self.registry, "on_cancel")):
            record = self.storage.get_job(job_id)
            if record is not None and record.status == Status.CANCELLED:  # a held one: when its worker ends it
                announce_cancelled(self.registry, record)
        return cancelled

    def purge_queue(self, name: str) -> int:
        """Cancel every waiting (pending or retrying) job of queue ``name``, and their dependents; returns
        how many were cancelled. Running jobs go on (``cancel_job`` stops one)."""
        return self.storage.cancel_waiting(queue=validation.name("queue", name))

    def revoke_task(self, name: str) -> int:
        """Cancel every waiting (pending or retrying) job of task ``name``, and their dependents; returns how
        many were cancelled. The task stays declared: jobs enqueued from now on run as usual."""
        return self.storage.cancel_waiting(task_name=validation.name("task name", name))

    def retry_all_dead(self, task: str | None = None, queue: str | None = None) -> list[str]:
        """Replay every dead letter (of ``task`` and/or ``queue``, if given) as a new pending job; returns the
        new jobs' ids. Dead letters are read in pages: a large backlog never sits in memory at once."""
        task = validation.name("task", task)
        queue = validation.name("queue", queue)
        new_ids: list[str] = []
        after = 0
        while page := self.storage.dead_ids(queue, task, after, 500):
            for job_id, seq in page:
                new_id = self.storage.retry_dead(job_id, new_job_id())
                if new_id is not None:  # else retried or deleted by someone else meanwhile
                    new_ids.append(new_id)
                after = seq
        return new_ids

    def replay(self, job_id: str) -> JobResult:
        """A new job with the same task, arguments and options as a finished one (complete, dead or
        cancelled), which stays as it was; JobNotFoundError for an unknown id, InvalidValueError for a
        job that has not finished."""
        record = self.storage.get_job(job_id)
        if record is None:
            raise JobNotFoundError(f"no job with id {validation.shown(job_id)}")
        if not record.finished:
            raise InvalidValueError(f"job {job_id} is {record.status}: only a finished job (complete, dead or "
                                    "cancelled) can be replayed; cancel it first or wait for it")
        fresh = NewJob(id=new_job_id(), task_name=record.task_name, payload=record.payload, **replayed(record))
        [new_id] = self.storage.enqueue([fresh])
        return JobResult(self, new_id)

    # -- schedules ---------------------------------------------------------------------------
    def periodic_schedules(self) -> list[dict[str, Any]]:
        """Every schedule: those declared here and those stored by workers of other deployments.

        Each is a dict: name, task, cron, timezone, queue, last_run and next_run (UNIX times, or None),
        paused, and declared (whether this process declares it).
        """
        stored = {definition.name: definition for definition in self.storage.periodic()}
        declared = {spec.name: spec for spec in self.periodic_tasks}
        schedules = []
        for name in sorted(stored.keys() | declared.keys()):
            row = stored.get(name)
            spec = declared.get(name)
            definition = row if row is not None else self._periodic_def(cast(PeriodicSpec, spec))
            schedules.append({"name": name, "task": definition.task_name, "cron": definition.cron,
                              "timezone": definition.timezone, "queue": definition.queue,
                              "last_run": definition.last_run_at,
                              "next_run": None if definition.paused else definition.next_run_at,
                              "paused": definition.paused, "declared": spec is not None})
        return schedules

    def pause_periodic(self, name: str) -> None:
        """Stop firing schedule ``name`` on every worker until ``resume_periodic``; kept in the database, so
        it stays paused across worker restarts and deploys."""
        self._stored_schedule(name)
        self.storage.set_periodic_paused(name, True, None)

    def resume_periodic(self, name: str) -> None:
        """Fire schedule ``name`` again from its next tick (ticks missed while paused are not fired)."""
        definition = self._stored_schedule(name)
        self.storage.set_periodic_paused(name, False, next_run(definition.cron, definition.timezone))

    def run_periodic_now(self, name: str) -> JobResult:
        """Enqueue one job of schedule ``name`` now, out of turn (its ticks go on as before); returns it."""
        definition = self._stored_schedule(name)
        task = self.tasks.get(definition.task_name)
        fields = task.job_defaults() if task is not None else self._by_name_defaults()
        job = NewJob(**{**fields, "queue": definition.queue}, id=new_job_id(), task_name=definition.task_name,
                     payload=definition.payload)
        self.storage.run_periodic(name, job)
        return JobResult(self, job.id)

    def _periodic_def(self, spec: PeriodicSpec) -> PeriodicDef:
        return PeriodicDef(name=spec.name, task_name=spec.task_name, cron=spec.cron,
                           payload=self.encode_payload(spec.task_name, spec.args, spec.kwargs),
                           queue=spec.queue, timezone=spec.timezone, next_run_at=next_run(spec.cron, spec.timezone))

    def register_schedules(self) -> None:
        """Store the schedules declared here (workers do it when they start); a stored one keeps its state."""
        for spec in self.periodic_tasks:
            self.storage.register_periodic(self._periodic_def(spec))

    def _stored_schedule(self, name: str) -> PeriodicDef:
        """The schedule's row, written first if it is declared here but no worker has stored it yet."""
        validation.name("schedule name", name)
        found = self.storage.periodic(name)
        if not found and any(spec.name == name for spec in self.periodic_tasks):
            self.register_schedules()
            found = self.storage.periodic(name)
        if not found:
            known = ", ".join(schedule["name"] for schedule in self.periodic_schedules()) or "none"
            raise JobNotFoundError(f"no periodic schedule named {validation.shown(name)} (schedules: {known})")
        return found[0]

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
        names = {"default"} | {cast(str, task.options.queue) for task in self.tasks.values()}  # resolved: set
        names |= {spec.queue for spec in self.periodic_tasks}
        return sorted(names)

    def run_worker(self, queues: Sequence[str] | None = None, concurrency: int | None = None,
                   pool: str = "thread", burst: bool = False, max_tasks: int | None = None,
                   async_concurrency: int | None = None) -> None:
        """Run a worker in this process until SIGINT/SIGTERM or ``shutdown()``; drains on stop.

        With ``burst``, it returns as soon as no job is due (and none is running); with
        ``max_tasks``, once it has run that many jobs. ``async def`` tasks run on an event loop
        beside the pool, up to ``async_concurrency`` at once.
        """
        from .worker import Worker

        worker = Worker(self, queues=queues, concurrency=concurrency, pool=pool, burst=burst, max_tasks=max_tasks,
                        async_concurrency=async_concurrency)
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
        """Close the database connections, if any were opened, and the a-methods' threads."""
        self._close_async()
        if self._storage is not None:
            self._storage.close()


def _pairs(args_list: Iterable[Sequence[Any]],
           kwargs_list: Iterable[dict[str, Any] | None]) -> Iterator[tuple[Any, Any]]:
    """Zip the two lists as they are read, failing if one ends first."""
    try:
        yield from zip(args_list, kwargs_list, strict=True)
    except ValueError:
        raise InvalidValueError("kwargs_list and args_list have different lengths: give one kwargs entry "
                                "(or None) per args entry") from None



def _impossible(name: str | None) -> bool:
    """A filter value no queue or task can have: it finds nothing (rather than a driver error)."""
    return name is not None and validation.name_problem(name) is not None

