"""The narrow interface every storage engine implements.

The queue and the worker speak only this protocol; an engine is one module that
implements it and passes ``tests/storage`` (the shared contract tests).
Times are UNIX timestamps (float seconds) taken from the caller's clock.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..exceptions import InvalidValueError
from ..options import JobOptions, compile_row
from ..validation import shown


class Status:
    """Job states. A job that failed an attempt and waits for its retry is ``failed``."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    DEAD = "dead"
    CANCELLED = "cancelled"

    ALL = (PENDING, RUNNING, COMPLETE, FAILED, DEAD, CANCELLED)
    FINISHED = (COMPLETE, DEAD, CANCELLED)
    # Stored only, never shown: a worker claimed the job (it holds the lease) but its function has
    # not started. Users see it as pending with that worker's id; "running" means the code runs.
    CLAIMED = "claimed"

    @classmethod
    def public(cls, stored: str) -> str:
        """The status users see for a stored one."""
        return cls.PENDING if stored == cls.CLAIMED else stored

    @classmethod
    def parse(cls, value: str) -> str:
        """A status filter as users write it: stats() says "completed", so that means "complete" too."""
        status = "complete" if value == "completed" else value
        if status not in cls.ALL:
            raise InvalidValueError(f"unknown status {shown(value)}: use one of {', '.join(cls.ALL)}")
        return status


# stats() reports "completed" for the "complete" status, as users read it, and counts claimed jobs
# (not started yet) as pending. Several stored states may add up in one key.
STATS_KEYS = {"pending": "pending", "claimed": "pending", "running": "running", "complete": "completed",
              "failed": "failed", "dead": "dead", "cancelled": "cancelled"}


def empty_stats() -> dict[str, int]:
    return dict.fromkeys(STATS_KEYS.values(), 0)


# Seconds: the bounds of the run-time histogram the engines keep per task (the rows of
# taskito_runtime_bounds in the schema), Prometheus' defaults stretched to cover long-running tasks.
# task_metrics() answers for any of them, from counters, at once.
RUNTIME_BOUNDS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                                     60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


def new_job_id() -> str:
    """A 128-bit id as 32 hex characters: 48 bits of milliseconds, then 80 random bits (UUIDv7's layout).

    Time-ordered ids land at the right edge of the id index instead of on a random page, so each
    insert dirties few pages (on PostgreSQL, no full-page image in the WAL for every enqueue).
    """
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


# What job lists sort by, as ``list_jobs(order_by=...)`` names it, and the SQL behind each (a claimed
# job is listed, and so sorted, as pending: the expression of the index taskito_jobs_listed_by_status).
JOB_ORDERS = {"created": "seq", "task": "task_name", "queue": "queue",
              "status": "(CASE status WHEN 'claimed' THEN 'pending' ELSE status END)", "priority": "priority",
              "started": "started_at", "finished": "finished_at", "attempts": "retry_count"}

# Text search (``list_jobs(text=...)``) reads at most this many jobs, the most recent that match the other
# filters, and looks at the first TEXT_SEARCH_REACH bytes of each one's arguments and of its error: its
# cost is bounded whatever the table holds.
TEXT_SEARCH_ROWS = 10_000
TEXT_SEARCH_REACH = 4096


def indexed_orders(status: str | None = None, queue: str | None = None, task_name: str | None = None,
                   id_prefix: str | None = None) -> set[str]:
    """The orders of ``JOB_ORDERS`` an index delivers with these filters (both engines have the same
    indexes), so that a page of a listing reads about as many rows as it shows at any table size.

    Enqueue order always (each filter's index ends in seq; an id prefix's range is read in id order, which
    starts with the enqueue time); a filter's own column when it is the only filter (or there is none);
    the finish time with a status filter of finished jobs (the index taskito_jobs_finished)."""
    if id_prefix is not None:
        return {"created"}
    found = {"created"}
    given = {"status": status, "queue": queue, "task": task_name}
    for name in given:
        if all(value is None for other, value in given.items() if other != name):
            found.add(name)
    if status in Status.FINISHED:
        found.add("finished")
    return found


@dataclass(kw_only=True)
class NewJob(JobOptions):
    """A job about to be written: its id, task and payload, and its options (``taskito.options``).

    ``delay`` and ``expires`` are seconds from now; an option left None takes the schema's default
    (``max_retries`` and ``timeout`` None: the worker applies the task's own setting).
    """

    id: str
    task_name: str
    payload: bytes


# ``job_row(job, now, waiting_deps)``: the columns of a new job's row, its options' and the bookkeeping.
# A job due later is "delayed": out of the claim index until a claim of its queue finds it due.
job_row = compile_row("waiting_deps", {
    "id": "options.id", "task_name": "options.task_name", "payload": "options.payload",
    "status": repr(Status.PENDING), "waiting_deps": "waiting_deps", "created_at": "now",
    "delayed": "scheduled_at > now"})


# Seconds ahead a claim hands out the time slots of a rate-limited task: a worker holds at most this
# much of a task's rate (at least one job), so the others find slots left whenever they claim.
RATE_HORIZON = 1.0


# Bytes of payload a listed job carries (list_jobs): enough for a preview, never a whole big payload.
PAYLOAD_HEAD = 1024


@dataclass
class JobRecord:
    """One job row. A row from ``list_jobs`` is partial: see ``payload_size``."""

    id: str
    task_name: str
    queue: str
    status: str
    priority: int
    payload: bytes
    result: bytes | None = None
    error: str | None = None
    retry_count: int = 0
    max_retries: int | None = None
    timeout: float | None = None
    attempt: int = 0
    progress: float | None = None
    unique_key: str | None = None
    created_at: float = 0.0
    scheduled_at: float = 0.0
    expires_at: float | None = None
    started_at: float | None = None  # of the latest attempt
    finished_at: float | None = None
    worker_id: str | None = None
    depends_on: list[str] = field(default_factory=list)
    # None: the whole row. A number (rows from list_jobs): ``payload`` holds only the first PAYLOAD_HEAD
    # bytes of a payload this long, ``error`` at most PAYLOAD_HEAD characters (then "…"), and ``result``
    # and ``depends_on`` were not read.
    payload_size: int | None = None
    first_started_at: float | None = None  # of the first attempt (retries start it again)
    cancel_requested: bool = False  # cancel_job() asked the worker holding it to stop it
    max_concurrent: int | None = None
    concurrency_key: str | None = None
    start_after: float | None = None  # a claimed job of a rate-limited task: its time slot (wall clock)
    # A job of a workflow: its id, its stage (-1: the error callback) and place in the stage, and
    # how its arguments are made (WF_CHAINED, WF_MAPPED bits; see taskito.workflow).
    workflow_id: str | None = None
    wf_stage: int | None = None
    wf_member: int | None = None
    wf_mode: int = 0

    @property
    def finished(self) -> bool:
        return self.status in Status.FINISHED

    @property
    def partial(self) -> bool:
        return self.payload_size is not None


@dataclass
class Completion:
    """A successful attempt, written in batches by the worker.

    It carries its own start and finish times: written later, in a batch, it still records the
    attempt's real run time (and a start mark not written yet is not needed). None: the start
    stays as stored, and the finish is the time of writing.
    """

    job_id: str
    attempt: int
    result: bytes
    started_at: float | None = None
    finished_at: float | None = None
    # The job's workflow (the worker copies it from the claimed row): an engine that advances workflows
    # from the client (SQLite) counts only these completions; PostgreSQL's taskito_complete() reads the rows.
    workflow_id: str | None = None
    # What the task minutes of the job need (see Storage.task_minutes), known to the worker from its claim;
    # None: the engine reads them from the job.
    task_name: str | None = None
    queue: str | None = None
    scheduled_at: float | None = None


# How a workflow job's arguments are made (JobRecord.wf_mode, bits).
WF_CHAINED = 1  # the previous stage's result (a group's: the list of its results) is the first argument
WF_MAPPED = 2  # args holds a list of argument lists: the task is called once per list (chunks, starmap)


@dataclass
class WorkflowJob:
    """A job of a workflow about to be written: ``stage`` -1 is the error callback."""

    job: NewJob
    stage: int
    member: int
    mode: int = 0


@dataclass
class NewWorkflow:
    """A workflow about to be written, all of it in one transaction: ``stages`` holds
    (size, is_group) per stage, ``jobs`` every job of every stage (and the error callback)."""

    id: str
    kind: str
    stages: list[tuple[int, bool]]
    jobs: list[WorkflowJob]


@dataclass
class WorkflowRecord:
    """A workflow as stored: ``status`` is running, complete, failed or cancelled; ``stages`` holds
    (stage, size, remaining, is_group); ``jobs`` (id, task_name, status, stage, member, started_at,
    finished_at) in stage order, the error callback (stage -1) first if it was released."""

    id: str
    kind: str
    status: str
    created_at: float
    finished_at: float | None
    failed_job_id: str | None
    error: str | None
    stages: list[tuple[int, int, int, bool]]
    jobs: list[tuple[str, str, str, int, int, float | None, float | None]]


@dataclass
class WorkflowSummary:
    """A workflow in a listing: as stored (``status`` running, complete, failed or cancelled), with how many
    of its ``stages`` are done and how many ``jobs`` it has."""

    id: str
    kind: str
    status: str
    created_at: float
    finished_at: float | None
    failed_job_id: str | None
    error: str | None
    stages: int
    stages_done: int
    jobs: int


@dataclass
class Started:
    """A claimed job whose function started at ``started_at``: from then on it is running."""

    job_id: str
    attempt: int
    started_at: float


@dataclass
class PeriodicDef:
    name: str
    task_name: str
    cron: str
    payload: bytes
    queue: str
    timezone: str | None
    next_run_at: float
    last_run_at: float | None = None
    paused: bool = False


class Storage(Protocol):
    """What the queue and the worker need from a database."""

    # The most jobs a worker holds beyond its concurrency when its jobs are short (bigger claims, fewer
    # transactions; see worker.pool).
    max_prefetch: int

    # -- writing jobs ---------------------------------------------------------------
    def enqueue(self, jobs: Iterable[NewJob]) -> list[str]:
        """Write jobs, all or none; a live job with the same unique_key is returned instead.

        ``jobs`` is read as it is written, so a generator of a million jobs is never all in memory. A
        large batch commits in chunks, invisible to workers until the last one (no other writer waits
        long behind it); should it fail, none of its jobs is left.
        A job whose id is stored already is left as it is, so running an enqueue again after a
        commit whose answer was lost (a connection that died) never makes a second job.
        """

    def enqueue_on(self, connection: Any, jobs: Sequence[NewJob]) -> list[str]:
        """Write jobs as ``enqueue`` does, but through the app's own DB-API connection, so that they
        commit or roll back with the app's data (on a connection in autocommit mode: at once).

        Raises ConfigurationError for a connection of another kind or to another database than
        the queue's. Never retried on another connection: the transaction is the app's.
        """

    def claim(self, worker_id: str, queues: Sequence[str], limit: int, lease_seconds: float,
              rate_limits: Mapping[str, float] | None = None) -> list[JobRecord]:
        """Atomically give up to ``limit`` due jobs to the worker, in priority order.

        They are claimed (held under a lease, shown as pending) until ``start`` marks them running.
        The cost does not depend on jobs of other queues, nor on jobs due later.
        A job with ``max_concurrent`` is claimed only while fewer than that many jobs of its task and
        ``concurrency_key`` are held by any worker. ``rate_limits`` (jobs per second, by task) are
        shared by every worker: each claimed job of such a task gets its time slot (``start_after``),
        at most RATE_HORIZON seconds ahead.
        """

    def next_due(self, queues: Sequence[str]) -> float | None:
        """When time alone makes work claimable: the earliest scheduled time of a delayed job of
        ``queues``, or expiry of a waiting job of any queue (which a claim cancels); None if nothing waits."""

    def start(self, started: Sequence[Started]) -> None:
        """Mark claimed jobs running from the time their function started (in batches, by the worker);
        attempts that no longer hold their job, or finished already, are ignored."""

    def complete(self, done: Sequence[Completion]) -> None:
        """Mark attempts successful; attempts that no longer hold the job are ignored."""

    def fail(self, job_id: str, attempt: int, error: str, traceback: str | None,
             retry_delay: float | None, started_at: float | None = None) -> bool:
        """Record a failed attempt: retried after ``retry_delay`` seconds, or dead if None.

        ``started_at``: when the attempt's function started, if it did (None keeps the stored start).
        """

    def requeue(self, worker_id: str, job_ids: Sequence[str]) -> None:
        """Put this worker's claimed or running jobs back to pending without counting an attempt (graceful stop).

        A job whose cancellation was asked for meanwhile is cancelled instead (and its dependents), never run again.
        """

    def set_progress(self, job_id: str, progress: float) -> None: ...

    # -- workflows -----------------------------------------------------------------------
    def create_workflow(self, workflow: NewWorkflow) -> None:
        """Write a workflow and every one of its jobs in one transaction; only the first stage is claimable.

        Each later stage is released by the completion of the stage before it, in that completion's
        transaction (``complete``); a step that dies ends the workflow failed (``fail``).
        """

    def get_workflow(self, workflow_id: str, with_jobs: bool = True) -> WorkflowRecord | None:
        """The workflow, its stages and (``with_jobs``) its jobs; None if unknown."""

    def stage_results(self, workflow_id: str, stage: int) -> list[bytes | None]:
        """What the members of a stage returned, in member order."""

    def cancel_workflow(self, workflow_id: str) -> bool:
        """End a running workflow cancelled: its steps not started yet are cancelled."""

    def cancel(self, job_id: str) -> bool:
        """Cancel a pending job and every job that depends on it; for a claimed or running job, ask its
        worker to stop it (``cancel_requests``). False if the job is finished or unknown."""

    def cancel_requests(self, worker_id: str) -> list[tuple[str, int]]:
        """(job id, attempt) of this worker's held jobs whose cancellation was asked for."""

    def finish_cancelled(self, job_id: str, attempt: int, error: str, started_at: float | None) -> bool:
        """End an attempt stopped by a cancellation: the job is cancelled, and its dependents with it."""

    def cancel_waiting(self, queue: str | None = None, task_name: str | None = None) -> int:
        """Cancel the waiting (pending or retrying) jobs of a queue or of a task, and their dependents."""

    def dead_ids(self, queue: str | None, task_name: str | None, after: int, limit: int) -> list[tuple[str, int]]:
        """(id, seq) of dead letters, in enqueue order after ``after`` (a seq)."""

    # -- reading ----------------------------------------------------------------------
    def get_job(self, job_id: str) -> JobRecord | None: ...

    def list_jobs(self, status: str | None = None, queue: str | None = None,
                  task_name: str | None = None, limit: int = 50, offset: int = 0,
                  order_by: str = "-created", id_prefix: str | None = None,
                  text: str | None = None) -> list[JobRecord]:
        """Newest first (``order_by``: one of ``JOB_ORDERS``, ``-`` first for descending; enqueue order
        breaks ties; jobs without a start or finish time come last when sorted by it), as partial records:
        the database cuts each payload to its first PAYLOAD_HEAD bytes (and the error to as many
        characters) and reads no result, so a listing costs the same whatever jobs carry.

        ``id_prefix`` (lowercase hex): jobs whose id starts with it, read from the id index in id order
        (``order_by`` is then created, either way). ``text``: jobs whose arguments or error contain it
        (ASCII letters in any case), among the TEXT_SEARCH_ROWS most recent that match the other filters."""

    def list_workflows(self, limit: int = 50, offset: int = 0) -> list[WorkflowSummary]:
        """Workflows newest first (by id, which starts with the time it was sent), with their progress."""

    def job_errors(self, job_id: str) -> list[dict[str, Any]]: ...

    def stats(self, queue: str | None = None) -> dict[str, int]:
        """Counts of the six states (always all six keys), from counters: as fast at ten million jobs as at ten."""

    def stats_all_queues(self) -> dict[str, dict[str, int]]: ...

    def wait_for_result(self, job_id: str, timeout: float) -> JobRecord | None:
        """Block until the job is finished or ``timeout`` passes; return its latest record."""

    def wait_for_work(self, timeout: float) -> bool:
        """Block until new work may be claimable (True), or ``timeout`` passes (False).

        Work that arrived since this thread's last ``claim`` began counts, so a job enqueued while
        a claim ran is never left waiting. True also when the engine cannot tell (it polls).
        """

    # -- dead letters and housekeeping --------------------------------------------------
    def retry_dead(self, job_id: str, new_id: str) -> str | None:
        """Replace a dead job by a fresh pending copy with id ``new_id``."""

    def delete_dead(self, job_id: str) -> bool: ...

    def purge(self, status: str, older_than: float) -> int:
        """Delete finished jobs of ``status`` whose finished_at is older than ``older_than`` seconds.

        In chunks, each its own transaction: no other writer waits long behind a large purge.
        """

    def reap_expired_leases(self) -> list[JobRecord]:
        """Claimed or running jobs whose lease ran out (their worker died).

        Also discards the jobs of a large enqueue whose writer died before writing them all (or
        publishes them if it had written them all).
        """

    def pause(self, queue: str) -> None: ...

    def resume(self, queue: str) -> None: ...

    def paused_queues(self) -> list[str]: ...

    # -- workers ----------------------------------------------------------------------
    def register_worker(self, worker_id: str, info: dict[str, Any]) -> None: ...

    def heartbeat(self, worker_id: str, lease_seconds: float, job_ids: Sequence[str]) -> None:
        """Record the worker alive and extend the leases of the jobs it still holds.

        Only the ids the worker names are renewed, so a job it lost track of (a claim whose
        answer never arrived) expires and is reaped even while the worker lives.
        """

    def unregister_worker(self, worker_id: str) -> None: ...

    def workers(self, alive_within: float) -> list[dict[str, Any]]: ...

    # -- monitoring (the dashboard's /metrics and throughput chart) -------------------------
    def task_metrics(self, runtime_buckets: Sequence[float]) -> dict[str, dict[str, Any]]:
        """Per task, over the rows still retained: ``{"counts": the six stats, "failures": failed
        attempts recorded, "runtime": {"buckets": cumulative count of completed jobs whose last attempt
        ran <= each bound, "count": n, "sum": seconds}}``. Run time is ``finished_at - started_at``.
        The bounds must be some of RUNTIME_BOUNDS (the histogram is kept as jobs finish)."""

    def check_counts(self, repair: bool = False) -> list[dict[str, Any]]:
        """Compare the counters behind stats() and task_metrics() with a recount of the rows.

        Returns the counters that differ (``counter``: "jobs" or "failures", their key, ``counted``
        and ``actual``); none should. With ``repair``, the counters are rebuilt from the recount.
        """

    def throughput(self, since: float, step: float) -> dict[int, dict[str, int]]:
        """Activity since ``since`` in ``step``-second buckets (bucket 0 starts at ``since``):
        ``{bucket: {"completed": jobs completed, "dead": jobs that died, "failed": failed attempts}}``;
        buckets with no activity are left out."""

    # -- job logs and task minutes (observability) ---------------------------------------
    def add_job_log(self, job_id: str, logged_at: float, level: str, message: str, extra: str | None,
                    limit: int) -> bool:
        """Store one line of ``current_job.log()``; False (nothing stored) if the job holds ``limit`` already."""

    def job_logs(self, job_id: str, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """The job's lines oldest first (those after line id ``after``): ``id``, ``time``, ``level``,
        ``message``, ``extra`` (a JSON object's text, or None)."""

    def task_minutes(self, since: float) -> list[tuple[Any, ...]]:
        """The task minutes since ``since``, added up per (queue, task_name, outcome, runtime_le,
        wait_le): rows of those five, then n, runtime_sum, wait_sum."""

    def task_minutes_series(self, since: float, step: float) -> list[tuple[Any, ...]]:
        """(bucket, task_name, outcome, n, runtime_sum) in ``step``-second buckets from ``since``."""

    def merge_task_minutes(self, start: float, end: float, step: int) -> None:
        """Merge the task-minute rows of [start, end) into one per key and ``step`` seconds."""

    def prune_task_minutes(self, before: float) -> int:
        """Delete the task minutes before ``before``; returns how many rows went."""

    def oldest_due(self, queue: str, now: float) -> float | None:
        """When the longest-waiting due job of ``queue`` became due (its scheduled_at), or None."""

    # -- periodic tasks ------------------------------------------------------------------
    def register_periodic(self, definition: PeriodicDef) -> None:
        """Upsert a periodic task; keep its next run unless the schedule changed."""

    def due_periodic(self, now: float) -> list[PeriodicDef]: ...

    def fire_periodic(self, name: str, expected_next: float, new_next: float, job: NewJob) -> bool:
        """Enqueue ``job`` and advance the schedule, only if nobody fired this tick yet (nor paused it)."""

    def periodic(self, name: str | None = None) -> list[PeriodicDef]:
        """The stored schedules (only ``name``'s, if given), by name."""

    def set_periodic_paused(self, name: str, paused: bool, next_run_at: float | None) -> bool:
        """Pause or resume a stored schedule (``next_run_at``: where a resumed one starts again)."""

    def run_periodic(self, name: str, job: NewJob) -> None:
        """Enqueue a schedule's job now, out of turn, and note that it ran."""

    def close(self) -> None: ...
