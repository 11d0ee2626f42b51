"""Storage logic shared by the SQL engines.

Each engine supplies connections, its ``queries.sql`` and the waiting strategy;
the orchestration of those statements (unique keys, dependencies, dead letters,
retries) lives here once.
"""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import fields
from typing import Any, cast

from ..exceptions import InvalidValueError, JobNotFoundError, TaskitoError
from ..options import replayed
from ..validation import is_job_id
from .base import (
    JOB_ORDERS,
    PAYLOAD_HEAD,
    RATE_HORIZON,
    RUNTIME_BOUNDS,
    STATS_KEYS,
    TEXT_SEARCH_REACH,
    TEXT_SEARCH_ROWS,
    Completion,
    JobRecord,
    NewJob,
    NewWorkflow,
    PeriodicDef,
    Started,
    Status,
    WorkflowJob,
    WorkflowRecord,
    WorkflowSummary,
    empty_stats,
    job_row,
    new_job_id,
)
from .sqlfiles import queries

logger = logging.getLogger("taskito.storage")

# Jobs written per transaction by a large enqueue (and per step of publishing it): on SQLite, where a
# writer holds the only write lock, each chunk keeps it for a few tens of milliseconds, so other
# processes' enqueues and claims never wait long behind a map of a million jobs.
CHUNK = 2000
# Chunks an enqueue writes in one plain transaction, unstaged: a map, group or chord of up to 10,000
# jobs goes in at full speed (about 0.1 s of SQLite's write lock); only a larger one is staged.
PLAIN_CHUNKS = 5
# Seconds a large enqueue may pause between two chunks before the workers' maintenance takes it for
# abandoned (its writer died) and discards its jobs.
BATCH_LEASE = 300.0
# Chunks of an abandoned batch one maintenance round finishes (the rest waits for the next round).
ABANDONED_CHUNKS_PER_ROUND = 20


def _like_pattern(text: str) -> str:
    """A LIKE pattern (escape character: backslash) matching values that contain ``text``."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _bucket(seconds: float | None) -> float:
    """The run-time bucket of ``seconds`` (the smallest bound at or above it; infinity above them all; 0 for
    no time), as the SQL of the task minutes computes it."""
    if seconds is None:
        return 0.0
    index = bisect.bisect_left(RUNTIME_BOUNDS, seconds)
    return RUNTIME_BOUNDS[index] if index < len(RUNTIME_BOUNDS) else math.inf


_RECORD_FIELDS = tuple(item.name for item in fields(JobRecord) if item.name != "depends_on")  # read separately


def _chunks(items: Iterable[NewJob], size: int) -> Iterator[list[NewJob]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


class _Pacing:
    """Spaces the transactions of a bulk operation (a large enqueue, a purge) by the engine's pause,
    and does the engine's upkeep after each (``settle``) while others write.

    The time spent between two turns (settling, reading the next chunk of jobs) counts towards the pause.
    """

    def __init__(self, pause: Callable[[float], float], settle: Callable[[], None]) -> None:
        self._pause = pause
        self._settle = settle
        self._free_until = 0.0

    @contextmanager
    def turn(self) -> Iterator[None]:
        delay = self._free_until - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        started = time.monotonic()
        yield
        ended = time.monotonic()
        self._free_until = ended + self._pause(ended - started)
        self._settle()


def _simple(job: NewJob) -> bool:
    """No unique key and no dependency: the job can be written without reading anything first."""
    return not job.unique_key and not job.depends_on


def to_record(row: Mapping[str, Any]) -> JobRecord:
    keys = row.keys()
    values = {name: row[name] for name in _RECORD_FIELDS if name in keys}
    for blob in ("payload", "result"):
        if isinstance(values.get(blob), memoryview):
            values[blob] = bytes(values[blob])
    if values.get("first_started_at") is None:  # stored once a retry replaced the first attempt's start
        values["first_started_at"] = values.get("started_at")
    if "status" in values:
        values["status"] = Status.public(values["status"])
    if "cancel_requested" in values:
        values["cancel_requested"] = bool(values["cancel_requested"])
    return JobRecord(**values)


def _periodic_def(row: Mapping[str, Any]) -> PeriodicDef:
    keys = row.keys()
    return PeriodicDef(name=row["name"], task_name=row["task_name"], cron=row["cron"], payload=bytes(row["payload"]),
                       queue=row["queue"], timezone=row["timezone"], next_run_at=row["next_run_at"],
                       last_run_at=row["last_run_at"] if "last_run_at" in keys else None,
                       paused=bool(row["paused"]) if "paused" in keys else False)


class SQLStorage:
    """Implements the Storage protocol on top of an engine's named queries."""

    engine: str = ""
    # Whether a filtered job list makes its first filter's index lead (list_jobs): PostgreSQL's planner
    # otherwise reads the table in seq order hoping to meet matching rows soon, and reads a million newer
    # rows when the matching ones are old. SQLite's planner takes the filter's index by itself.
    lead_filter = False

    def __init__(self) -> None:
        self.sql = queries(self.engine)

    # -- what an engine provides -------------------------------------------------------
    def _transaction(self) -> AbstractContextManager[Any]:
        """A write transaction; yields a cursor with execute/executemany/fetchall."""
        raise NotImplementedError

    def _autocommit(self) -> AbstractContextManager[Any]:
        """A cursor whose every statement is its own transaction: for reads and single-statement writes."""
        raise NotImplementedError

    def _id_list(self, ids: Sequence[str]) -> Any:
        """Encode a list of strings as the engine's list parameter."""
        raise NotImplementedError

    def _str_list(self, value: Any) -> list[str]:
        """Decode a list of strings that a query aggregated (an array, or JSON text on SQLite)."""
        return list(value or [])

    def _notify(self, cur: Any) -> None:
        """Tell idle workers that new work may be there (inside the writing transaction)."""

    def _lock_counts(self, cur: Any) -> None:
        """Keep other transactions from rewriting the counters until this one ends (check_counts)."""

    def _announce_done(self, cur: Any, job_ids: Sequence[str]) -> None:
        """Tell result() waiters that these jobs finished (inside the writing transaction); engines
        whose waiters poll need not."""

    def _pause_after(self, held: float) -> float:
        """Seconds a bulk operation waits after a transaction that took ``held`` seconds, so that other
        writers get their turn (an engine with one write lock needs it)."""
        return 0.0

    def _settle_after_chunk(self) -> None:
        """Upkeep of a bulk operation after each of its transactions, holding no lock (none by default)."""

    # -- helpers -----------------------------------------------------------------------
    def _rows(self, cur: Any, query: str, /, **params: Any) -> list[Any]:
        cur.execute(self.sql[query], params)
        return cur.fetchall()

    def _run(self, cur: Any, query: str, /, **params: Any) -> int:
        cur.execute(self.sql[query], params)
        return cur.rowcount

    # -- writing jobs ------------------------------------------------------------------
    def enqueue(self, jobs: Iterable[NewJob]) -> list[str]:
        """Up to PLAIN_CHUNKS * CHUNK jobs in one transaction; more in chunks, staged then published
        (see _write_staged).

        ``jobs`` is consumed as it goes: a generator of a million jobs is never held in memory at once.
        Jobs with unique keys or dependencies are read job by job, in one transaction however many.
        """
        chunks = _chunks(jobs, CHUNK)
        head = list(itertools.islice(chunks, PLAIN_CHUNKS + 1))
        if len(head) <= PLAIN_CHUNKS:
            return self._write(list(itertools.chain.from_iterable(head)))
        if not _simple(head[0][0]):
            return self._write([*itertools.chain.from_iterable(head), *itertools.chain.from_iterable(chunks)])
        return self._write_staged(itertools.chain(head, chunks))

    def _write(self, jobs: list[NewJob]) -> list[str]:
        """Write jobs in one transaction."""
        if not jobs:
            return []
        if len(jobs) == 1 and _simple(jobs[0]):
            # The common delay(): one autocommit statement, its own transaction.
            with self._autocommit() as cur:
                cur.execute(self.sql["insert_job"], job_row(jobs[0], time.time(), 0))
            return [jobs[0].id]
        with self._transaction() as cur:
            return self._write_jobs(cur, jobs)

    def enqueue_on(self, connection: Any, jobs: Sequence[NewJob]) -> list[str]:
        if not jobs:
            return []
        with self._foreign_transaction(connection) as cur:
            return self._write_jobs(cur, jobs)

    def _foreign_transaction(self, connection: Any) -> AbstractContextManager[Any]:
        """A cursor on the app's DB-API connection, in the transaction it is in (or, in autocommit
        mode, in one of its own), once the connection is known to reach the queue's own database."""
        raise NotImplementedError

    def _write_jobs(self, cur: Any, jobs: Sequence[NewJob]) -> list[str]:
        """Insert jobs inside the transaction of ``cur``, the queue's own or the app's.

        New rows wake workers by themselves once committed (PostgreSQL's insert trigger
        notifies; SQLite's workers see data_version change), so nothing wakes them earlier.
        """
        now = time.time()
        if all(_simple(job) for job in jobs):
            self._insert_simple(cur, jobs, now, batch=None)
            return [job.id for job in jobs]
        return [self._enqueue_one(cur, job, now) for job in jobs]

    def _insert_simple(self, cur: Any, jobs: Sequence[NewJob], now: float, batch: str | None) -> None:
        """Insert jobs without unique keys or dependencies: pending, or staged in ``batch``."""
        if batch is None:
            cur.executemany(self.sql["insert_job"], [job_row(job, now, 0) for job in jobs])
        else:
            cur.executemany(self.sql["stage_job"], [{**job_row(job, now, 0), "batch": batch} for job in jobs])

    # A large enqueue is all-or-nothing without holding the write lock for seconds: its chunks are
    # written as staged jobs (no worker claims, lists or counts them), each chunk its own transaction;
    # once every job is written, the batch turns to 'publishing' (the commit point, one row), and the
    # staged jobs become pending, a chunk per transaction. A failure before the commit point discards
    # them; a writer that dies leaves its batch to the workers' maintenance (reap_expired_leases),
    # which discards it, or finishes publishing it if it had reached the commit point.
    def _write_staged(self, chunks: Iterable[list[NewJob]]) -> list[str]:
        batch = new_job_id()
        ids: list[str] = []
        pacing = _Pacing(self._pause_after, self._settle_after_chunk)
        self._open_batch(batch)
        try:
            for chunk in chunks:
                with pacing.turn():
                    self._stage(batch, chunk)
                ids.extend(job.id for job in chunk)
            if not self._move_batch(batch, "publishing", "staging"):
                raise self._abandoned(batch, len(ids))
        except BaseException:
            self._discard(batch)
            raise
        self._finish_batch(batch, "publishing")
        return ids

    def _open_batch(self, batch: str) -> None:
        with self._transaction() as cur:
            self._run(cur, "open_batch", batch=batch, lease_until=time.time() + BATCH_LEASE)

    def _stage(self, batch: str, jobs: list[NewJob]) -> None:
        """Write one chunk of a batch as staged jobs, renewing the batch's lease."""
        if not all(_simple(job) for job in jobs):
            raise InvalidValueError("a large enqueue cannot mix jobs with unique keys or dependencies with others: "
                                    "enqueue those separately")
        now = time.time()
        with self._transaction() as cur:
            if not self._rows(cur, "renew_batch", batch=batch, state="staging", from_state=None,
                              lease_until=now + BATCH_LEASE, expired_before=None):
                raise self._abandoned(batch, None)
            self._insert_simple(cur, jobs, now, batch=batch)

    def _abandoned(self, batch: str, count: int | None) -> TaskitoError:
        what = "enqueue" if count is None else f"enqueue of {count} jobs"
        return TaskitoError(f"the {what} (batch {batch}) was abandoned: it paused more than {BATCH_LEASE:g}s "
                            "between two chunks, so its jobs were discarded; enqueue them again")

    def _move_batch(self, batch: str, state: str, from_state: str, expired_before: float | None = None) -> bool:
        """Move a batch from ``from_state`` to ``state`` (only if its lease ran out before ``expired_before``)."""
        with self._transaction() as cur:
            return bool(self._rows(cur, "renew_batch", batch=batch, state=state, from_state=from_state,
                                   lease_until=time.time() + BATCH_LEASE, expired_before=expired_before))

    def _batch_chunk(self, batch: str, state: str) -> int | None:
        """Publish or discard one chunk of a batch (by its state); the batch row goes with the last.

        Returns how many jobs it published or discarded, or None if the batch left that state.
        """
        with self._transaction() as cur:
            if not self._rows(cur, "renew_batch", batch=batch, state=state, from_state=None,
                              lease_until=time.time() + BATCH_LEASE, expired_before=None):
                return None
            done = self._run(cur, "publish_staged" if state == "publishing" else "discard_staged",
                             batch=batch, limit=CHUNK)
            if done < CHUNK:
                self._run(cur, "close_batch", batch=batch)
            if state == "publishing" and done:
                self._notify(cur)
        return done

    def _finish_batch(self, batch: str, state: str, max_chunks: int | None = None) -> None:
        pacing = _Pacing(self._pause_after, self._settle_after_chunk)
        for _ in itertools.count() if max_chunks is None else range(max_chunks):
            with pacing.turn():
                done = self._batch_chunk(batch, state)
            if done is None or done < CHUNK:
                return

    def _discard(self, batch: str) -> None:
        """Discard a batch that failed before its commit point (after it, publishing goes on)."""
        try:
            if self._move_batch(batch, "discarding", "staging"):
                self._finish_batch(batch, "discarding")
        except Exception as exc:  # the caller's own error matters more; maintenance finishes the job
            logger.warning("could not discard the staged jobs of batch %s now (%s); workers will", batch, exc)

    def _finish_abandoned_batches(self) -> None:
        """Discard, or finish publishing, the batches of writers that died (their lease ran out)."""
        now = time.time()
        with self._autocommit() as cur:
            abandoned = self._rows(cur, "abandoned_batches", now=now)
        for row in abandoned:
            batch, state = row["id"], row["state"]
            if state == "staging":
                if not self._move_batch(batch, "discarding", "staging", expired_before=now):
                    continue  # its writer renewed it meanwhile
                state = "discarding"
            logger.warning("batch %s of a large enqueue was abandoned by its writer; %s its jobs", batch,
                           "discarding" if state == "discarding" else "publishing")
            self._finish_batch(batch, state, max_chunks=ABANDONED_CHUNKS_PER_ROUND)

    def _enqueue_one(self, cur: Any, job: NewJob, now: float) -> str:
        if job.unique_key:
            existing = self._rows(cur, "find_unique", unique_key=job.unique_key)
            if existing:
                return existing[0]["id"]
        waiting = 0
        doomed_by: str | None = None
        if job.depends_on:
            deps = list(dict.fromkeys(job.depends_on))
            found = {row["id"]: row["status"] for row in self._rows(cur, "dep_statuses", ids=self._id_list(deps))}
            missing = [dep for dep in deps if dep not in found]
            if missing:
                raise JobNotFoundError(f"depends_on names unknown job id(s): {', '.join(missing)}")
            waiting = sum(1 for dep in deps if found[dep] != Status.COMPLETE)
            doomed_by = next((dep for dep in deps if found[dep] in (Status.DEAD, Status.CANCELLED)), None)
        self._run(cur, "insert_job", **job_row(job, now, waiting))
        for dep in dict.fromkeys(job.depends_on):
            self._run(cur, "insert_dep", depends_on=dep, job_id=job.id)
        if doomed_by:
            self._run(cur, "cancel_job", job_id=job.id, now=now)
            self._cancel_dependents(cur, job.id, now, f"dependency {doomed_by} did not complete")
        return job.id

    def _cancel_dependents(self, cur: Any, job_id: str, now: float, reason: str) -> None:
        self._run(cur, "cancel_dependents", id=job_id, reason=reason, now=now)

    def claim(self, worker_id: str, queues: Sequence[str], limit: int, lease_seconds: float,
              rate_limits: Mapping[str, float] | None = None) -> list[JobRecord]:
        """One transaction, which holds the write lock: no other claim counts caps or takes slots meanwhile."""
        now = time.time()
        steps = {task: 1.0 / per_second for task, per_second in sorted((rate_limits or {}).items())}
        rates = json.dumps([[task, step] for task, step in steps.items()])
        with self._transaction() as cur:
            for expired in self._rows(cur, "expire_jobs", now=now):
                self._cancel_dependents(cur, expired["id"], now, f"dependency {expired['id']} expired")
                self._end_workflow_of(cur, expired["id"], Status.CANCELLED, f"step {expired['id']} expired", now)
            self._run(cur, "promote_due", queues=self._id_list(queues), now=now)
            if steps:
                self._run(cur, "ensure_rate_limits", rates=rates)
            served = self._id_list(queues)
            controlled = steps or self._rows(cur, "capped_waiting", queues=served)
            rows = self._rows(cur, "claim" if controlled else "claim_plain", worker_id=worker_id, queues=served,
                              rates=rates, horizon=RATE_HORIZON, now=now, lease_until=now + lease_seconds, limit=limit)
            last_slots: dict[str, float] = {}
            for row in rows:
                if row["start_after"] is not None:
                    last_slots[row["task_name"]] = max(row["start_after"], last_slots.get(row["task_name"], 0.0))
            if last_slots:
                cur.executemany(self.sql["bump_rate_limit"], [
                    {"task_name": task, "next_at": slot + steps[task]} for task, slot in last_slots.items()])
        rows.sort(key=lambda row: (-row["priority"], row["scheduled_at"], row["seq"]))
        return [to_record(row) for row in rows]

    def next_due(self, queues: Sequence[str]) -> float | None:
        with self._autocommit() as cur:
            [row] = self._rows(cur, "next_due", queues=self._id_list(queues))
        times = [value for value in (row["scheduled"], row["expires"]) if value is not None]
        return min(times) if times else None

    def start(self, started: Sequence[Started]) -> None:
        if not started:
            return
        with self._transaction() as cur:
            cur.executemany(self.sql["start"], [
                {"job_id": item.job_id, "attempt": item.attempt, "started_at": item.started_at} for item in started])

    def complete(self, done: Sequence[Completion]) -> None:
        now = time.time()
        with self._transaction() as cur:
            # Dependents first, while the completing attempts still hold their jobs: the same
            # transaction then completes exactly those, and a stale or repeated completion
            # releases nothing.
            awaited = {row["id"] for row in self._rows(cur, "with_dependents",
                                                        ids=json.dumps([item.job_id for item in done]))}
            cur.executemany(self.sql["release_dependents"], [
                {"job_id": item.job_id, "attempt": item.attempt} for item in done if item.job_id in awaited])
            for item in done:
                if item.workflow_id is not None:
                    self._advance_workflow(cur, item, now)
            rows = [{"job_id": item.job_id, "attempt": item.attempt, "result": item.result,
                     "started_at": item.started_at,
                     "finished_at": now if item.finished_at is None else item.finished_at} for item in done]
            cur.executemany(self.sql["complete"], rows)
            self._record_completions(cur, done, rows, applied=cur.rowcount)

    def _record_completions(self, cur: Any, done: Sequence[Completion], rows: list[dict[str, Any]],
                            applied: int) -> None:
        """The task minutes of a batch of completions, in its transaction. When every completion applied
        and carries its job's task, queue and due time (the worker's do), they are added up here, one
        upsert per key; else a statement reads the jobs this batch completed."""
        if applied == len(done) and all(item.task_name is not None and item.queue is not None
                                        and item.scheduled_at is not None for item in done):
            minutes: dict[tuple[Any, ...], list[float]] = {}
            for item, row in zip(done, rows, strict=True):
                finished = row["finished_at"]
                started = item.started_at
                runtime = None if started is None else max(0.0, finished - started)
                wait = None if started is None else max(0.0, started - cast(float, item.scheduled_at))
                key = (int(finished // 60 * 60), item.queue, item.task_name, _bucket(runtime), _bucket(wait))
                sums = minutes.setdefault(key, [0, 0.0, 0.0])
                sums[0] += 1
                sums[1] += runtime or 0.0
                sums[2] += wait or 0.0
            cur.executemany(self.sql["insert_task_minutes"], [
                {"minute": minute, "queue": queue, "task_name": task_name, "outcome": Status.COMPLETE,
                 "runtime_le": runtime_le, "wait_le": wait_le, "n": n, "runtime_sum": runtime_sum, "wait_sum": wait_sum}
                for (minute, queue, task_name, runtime_le, wait_le), (n, runtime_sum, wait_sum) in minutes.items()])
            return
        self._run(cur, "record_completions",
                  done=json.dumps([[row["job_id"], row["attempt"], row["finished_at"]] for row in rows]))

    def fail(self, job_id: str, attempt: int, error: str, traceback: str | None,
             retry_delay: float | None, started_at: float | None = None) -> bool:
        now = time.time()
        with self._transaction() as cur:
            if retry_delay is None:
                applied = self._run(cur, "fail_dead", job_id=job_id, attempt=attempt, error=error, now=now,
                                    started_at=started_at)
            else:
                applied = self._run(cur, "fail_retry", job_id=job_id, attempt=attempt, error=error,
                                    scheduled_at=now + retry_delay, started_at=started_at, now=now)
            if not applied:
                return False
            self._run(cur, "insert_error", job_id=job_id, attempt=attempt, error=error,
                      traceback=traceback, now=now)
            if retry_delay is None:
                self._cancel_dependents(cur, job_id, now, f"dependency {job_id} failed")
                self._end_workflow_of(cur, job_id, "failed", error, now)
            else:
                self._notify(cur)  # idle workers set their alarm for the retry (see next_due)
        return True

    def requeue(self, worker_id: str, job_ids: Sequence[str]) -> None:
        if not job_ids:
            return
        now = time.time()
        with self._transaction() as cur:
            cur.executemany(self.sql["requeue"], [{"job_id": job_id, "worker_id": worker_id} for job_id in job_ids])
            # Put back before its worker saw a cancel request (it was stopping): cancelled, never run again.
            for cancelled in self._rows(cur, "cancel_put_back", now=now):
                self._cancel_dependents(cur, cancelled["id"], now, f"dependency {cancelled['id']} was cancelled")
            self._notify(cur)

    def set_progress(self, job_id: str, progress: float) -> None:
        with self._transaction() as cur:
            self._run(cur, "set_progress", job_id=job_id, progress=progress)

    def cancel(self, job_id: str) -> bool:
        if not is_job_id(job_id):
            return False
        now = time.time()
        with self._transaction() as cur:
            if not self._rows(cur, "cancel_job", job_id=job_id, now=now):
                return bool(self._rows(cur, "request_cancel", job_id=job_id))
            self._cancel_dependents(cur, job_id, now, f"dependency {job_id} was cancelled")
            self._end_workflow_of(cur, job_id, Status.CANCELLED, f"step {job_id} was cancelled", now)
        return True

    def cancel_requests(self, worker_id: str) -> list[tuple[str, int]]:
        with self._autocommit() as cur:
            return [(row["id"], row["attempt"]) for row in self._rows(cur, "cancel_requests", worker_id=worker_id)]

    def finish_cancelled(self, job_id: str, attempt: int, error: str, started_at: float | None) -> bool:
        now = time.time()
        with self._transaction() as cur:
            if not self._rows(cur, "finish_cancelled", job_id=job_id, attempt=attempt, error=error,
                              started_at=started_at, now=now):
                return False
            self._cancel_dependents(cur, job_id, now, f"dependency {job_id} was cancelled")
            self._end_workflow_of(cur, job_id, Status.CANCELLED, f"step {job_id} was cancelled", now)
        return True

    # -- workflows ---------------------------------------------------------------------
    def create_workflow(self, workflow: NewWorkflow) -> None:
        now = time.time()
        with self._transaction() as cur:
            if not self._rows(cur, "insert_workflow", id=workflow.id, kind=workflow.kind, stages=len(workflow.stages),
                              created_at=now):
                return  # written already: this is a retry after a commit whose answer was lost
            cur.executemany(self.sql["insert_workflow_stage"], [
                {"workflow_id": workflow.id, "stage": stage, "size": size, "is_group": is_group}
                for stage, (size, is_group) in enumerate(workflow.stages)])
            self._insert_workflow_jobs(cur, [self._workflow_job_row(workflow.id, step, now) for step in workflow.jobs])

    def _workflow_job_row(self, workflow_id: str, step: WorkflowJob, now: float) -> dict[str, Any]:
        """A workflow job's row: held back (waiting_deps 1) after the first stage; staged (never claimed,
        listed nor counted) for the error callback until a step dies."""
        row = job_row(step.job, now, 1 if step.stage > 0 else 0)
        if step.stage < 0:
            row.update(status="staged", delayed=True)
        return {**row, "workflow_id": workflow_id, "wf_stage": step.stage, "wf_member": step.member,
                "wf_mode": step.mode}

    def _insert_workflow_jobs(self, cur: Any, rows: list[dict[str, Any]]) -> None:
        cur.executemany(self.sql["insert_workflow_job"], rows)

    def _advance_workflow(self, cur: Any, item: Completion, now: float) -> None:
        """Count a workflow job's completion (before ``complete``, while its attempt holds the job);
        the completion that finishes its stage releases the next one, or completes the workflow."""
        rows = self._rows(cur, "workflow_step_done", job_id=item.job_id, attempt=item.attempt)
        if not rows or rows[0]["remaining"] != 0:
            return
        workflow_id, stage = rows[0]["workflow_id"], rows[0]["stage"]
        self._run(cur, "workflow_release_stage", workflow_id=workflow_id, stage=stage)
        if self._rows(cur, "workflow_finish", workflow_id=workflow_id, stage=stage, now=now):
            self._run(cur, "drop_error_callback", workflow_id=workflow_id)

    def _end_workflow_of(self, cur: Any, job_id: str, status: str, error: str, now: float) -> None:
        """A step of a workflow died (``failed``) or was cancelled: end its workflow so."""
        rows = self._rows(cur, "workflow_of", job_id=job_id)
        if rows and rows[0]["wf_stage"] >= 0:  # the error callback's own end ends nothing
            self._end_workflow(cur, rows[0]["workflow_id"], status, now, failed_job_id=job_id, error=error)

    def _end_workflow(self, cur: Any, workflow_id: str, status: str, now: float, failed_job_id: str | None = None,
                      error: str | None = None) -> bool:
        """Mark a running workflow failed or cancelled and cancel its steps not started yet; a failed one
        releases its error callback. Only the first end of a workflow does anything."""
        if not self._rows(cur, "end_workflow", workflow_id=workflow_id, status=status, now=now,
                          failed_job_id=failed_job_id, error=error):
            return False
        reason = (f"workflow {workflow_id} failed: step {failed_job_id} died" if status == "failed"
                  else f"workflow {workflow_id} was cancelled")
        cancelled = [row["id"] for row in self._rows(cur, "cancel_workflow_jobs", workflow_id=workflow_id,
                                                  reason=reason, now=now)]
        if status == "failed":
            self._run(cur, "start_error_callback", workflow_id=workflow_id, now=now)
            self._notify(cur)
        else:
            self._run(cur, "drop_error_callback", workflow_id=workflow_id)
        self._announce_done(cur, cancelled)
        return True

    def cancel_workflow(self, workflow_id: str) -> bool:
        if not is_job_id(workflow_id):
            return False
        with self._transaction() as cur:
            return self._end_workflow(cur, workflow_id, Status.CANCELLED, time.time(), error="cancelled")

    def get_workflow(self, workflow_id: str, with_jobs: bool = True) -> WorkflowRecord | None:
        if not is_job_id(workflow_id):
            return None
        with self._autocommit() as cur:
            rows = self._rows(cur, "get_workflow", workflow_id=workflow_id)
            if not rows:
                return None
            stages = [(r["stage"], r["size"], r["remaining"], bool(r["is_group"]))
                      for r in self._rows(cur, "workflow_stages", workflow_id=workflow_id)]
            jobs = [(r["id"], r["task_name"], r["status"], r["wf_stage"], r["wf_member"], r["started_at"],
                     r["finished_at"])
                    for r in self._rows(cur, "workflow_jobs", workflow_id=workflow_id)] if with_jobs else []
        row = rows[0]
        return WorkflowRecord(id=row["id"], kind=row["kind"], status=row["status"], created_at=row["created_at"],
                              finished_at=row["finished_at"], failed_job_id=row["failed_job_id"], error=row["error"],
                              stages=stages, jobs=jobs)

    def stage_results(self, workflow_id: str, stage: int) -> list[bytes | None]:
        with self._autocommit() as cur:
            rows = self._rows(cur, "stage_results", workflow_id=workflow_id, stage=stage)
        return [None if row["result"] is None else bytes(row["result"]) for row in rows]

    def cancel_waiting(self, queue: str | None = None, task_name: str | None = None) -> int:
        """A chunk per transaction (CHUNK), as a purge."""
        reason = f"cancelled with every waiting job of {'queue ' + repr(queue) if queue else 'task ' + repr(task_name)}"
        cancelled = 0
        pacing = _Pacing(self._pause_after, self._settle_after_chunk)
        while True:
            now = time.time()
            with pacing.turn(), self._transaction() as cur:
                ids = [row["id"] for row in self._rows(cur, "cancel_waiting", queue=queue, task_name=task_name,
                                                    reason=reason, now=now, limit=CHUNK)]
                for job_id in ids:
                    self._cancel_dependents(cur, job_id, now, f"dependency {job_id} was cancelled")
                    self._end_workflow_of(cur, job_id, Status.CANCELLED, f"step {job_id} was cancelled", now)
            cancelled += len(ids)
            if len(ids) < CHUNK:
                return cancelled

    def dead_ids(self, queue: str | None, task_name: str | None, after: int, limit: int) -> list[tuple[str, int]]:
        with self._autocommit() as cur:
            return [(row["id"], row["seq"]) for row in self._rows(cur, "dead_ids", queue=queue, task_name=task_name,
                                                           after=after, limit=limit)]

    # -- reading -----------------------------------------------------------------------
    def get_job(self, job_id: str) -> JobRecord | None:
        if not is_job_id(job_id):  # no job has it: no need to ask (a NUL would be a driver error)
            return None
        with self._autocommit() as cur:
            rows = self._rows(cur, "get_job", job_id=job_id)
        if not rows:
            return None
        record = to_record(rows[0])
        record.depends_on = self._str_list(rows[0]["depends_on"])
        return record

    def list_jobs(self, status: str | None = None, queue: str | None = None,
                  task_name: str | None = None, limit: int = 50, offset: int = 0,
                  order_by: str = "-created", id_prefix: str | None = None,
                  text: str | None = None) -> list[JobRecord]:
        asked = {"status": status, "queue": queue, "task_name": task_name}
        # Engines whose plans need it (lead_filter) have one filter's index lead: the first of status, queue,
        # task given, matched as a range of one value and first in the order (see list_jobs_from_status).
        lead = None if id_prefix is not None or not self.lead_filter else next(
            (name for name, value in asked.items() if value is not None), None)
        filters = [self.sql[f"list_jobs_{'from' if name == lead else 'by'}_{'task' if name == 'task_name' else name}"]
                   for name, value in asked.items() if value is not None]
        params: dict[str, Any] = {**asked, "limit": limit, "offset": offset, "head": PAYLOAD_HEAD}
        key = order_by.removeprefix("-")
        direction = "DESC" if order_by.startswith("-") else "ASC"
        lead_column = JOB_ORDERS["task" if lead == "task_name" else lead] if lead else None

        def enqueue_order(direction: str) -> str:
            return f"{lead_column} {direction}, seq {direction}" if lead_column else f"seq {direction}"

        recent = enqueue_order("DESC")  # the rows a text search reads: the most recent
        if id_prefix is not None:
            # The id index's range, in its order: a page reads about as many entries as it shows.
            filters.append(self.sql["list_jobs_by_id_prefix"])
            params.update(id_prefix=id_prefix, id_end=id_prefix + "g", id_length=len(id_prefix))
            order, recent = f"id {direction}", "id DESC"
        elif key == "created":
            order = enqueue_order(direction)
        else:
            # Fixed SQL of ours (JOB_ORDERS), never user text, goes into the query.
            nulls = " NULLS LAST" if key in ("started", "finished") else ""
            if key == "finished" and status in Status.FINISHED:
                filters.append(self.sql["list_jobs_finished"])  # the index taskito_jobs_finished leads
                nulls = ""
            order = f"{JOB_ORDERS[key]} {direction}{nulls}, seq {direction}"
        if text is not None:
            statement = self.sql["list_jobs_matching"]
            params.update(scan=TEXT_SEARCH_ROWS, reach=TEXT_SEARCH_REACH, pattern=_like_pattern(text),
                          payload_pattern=self._payload_pattern(text))
        else:
            statement = self.sql["list_jobs"]
        statement = statement.replace("/* filters */", " AND ".join(filters) or "TRUE")
        with self._autocommit() as cur:
            cur.execute(statement.replace("{order}", order).replace("{recent}", recent), params)
            rows = cur.fetchall()
        return [to_record(row) for row in rows]

    def _payload_pattern(self, text: str) -> str:
        """The LIKE pattern that finds ``text`` in a payload as the engine's list_jobs_matching reads it."""
        return _like_pattern(text)

    def list_workflows(self, limit: int = 50, offset: int = 0) -> list[WorkflowSummary]:
        with self._autocommit() as cur:
            rows = self._rows(cur, "list_workflows", limit=limit, offset=offset)
        return [WorkflowSummary(**row) for row in rows]  # the query selects exactly its fields

    def job_errors(self, job_id: str) -> list[dict[str, Any]]:
        if not is_job_id(job_id):
            return []
        with self._autocommit() as cur:
            rows = self._rows(cur, "job_errors", job_id=job_id)
        return [{"attempt": r["attempt"], "error": r["error"], "traceback": r["traceback"], "failed_at": r["failed_at"]}
                for r in rows]

    def stats(self, queue: str | None = None) -> dict[str, int]:
        counts = empty_stats()
        with self._autocommit() as cur:
            for row in self._rows(cur, "stats", queue=queue):
                if row["status"] in STATS_KEYS:  # staged jobs (a large enqueue in progress) are not counted yet
                    counts[STATS_KEYS[row["status"]]] += row["n"]
        return counts

    def stats_all_queues(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {}
        with self._autocommit() as cur:
            for row in self._rows(cur, "stats_all_queues"):
                if row["status"] in STATS_KEYS:
                    result.setdefault(row["queue"], empty_stats())[STATS_KEYS[row["status"]]] += row["n"]
        return result

    # -- dead letters and housekeeping ---------------------------------------------------
    def retry_dead(self, job_id: str, new_id: str) -> str | None:
        if not is_job_id(job_id):
            return None
        with self._transaction() as cur:
            rows = self._rows(cur, "get_job", job_id=job_id)
            if not rows or rows[0]["status"] != Status.DEAD:
                # Run again after a commit whose answer was lost, it finds its replay already there.
                return new_id if self._rows(cur, "get_job", job_id=new_id) else None
            old = to_record(rows[0])
            if not self._rows(cur, "delete_job", job_id=job_id, status=Status.DEAD):
                return None  # another caller retried or deleted it since we read it
            self._run(cur, "delete_job_details", job_id=job_id)
            fresh = NewJob(id=new_id, task_name=old.task_name, payload=old.payload, **replayed(old))
            self._run(cur, "insert_job", **job_row(fresh, time.time(), 0))
            self._notify(cur)
        return new_id

    def delete_dead(self, job_id: str) -> bool:
        if not is_job_id(job_id):
            return False
        with self._transaction() as cur:
            if not self._rows(cur, "delete_job", job_id=job_id, status=Status.DEAD):
                return False
            self._run(cur, "delete_job_details", job_id=job_id)
        return True

    def purge(self, status: str, older_than: float) -> int:
        """A chunk per transaction (see CHUNK): a purge of a million jobs never holds the write lock long."""
        before = time.time() - older_than
        removed = 0
        pacing = _Pacing(self._pause_after, self._settle_after_chunk)
        while True:
            with pacing.turn(), self._transaction() as cur:
                ids = [row["id"] for row in self._rows(cur, "purge_jobs", status=status, before=before, limit=CHUNK)]
                if ids:
                    self._run(cur, "purge_errors", ids=self._id_list(ids))
                    self._run(cur, "purge_deps", ids=self._id_list(ids))
            removed += len(ids)
            if len(ids) < CHUNK:
                break
        with self._transaction() as cur:  # workflows whose jobs are all purged now
            gone = [row["id"] for row in self._rows(cur, "purge_workflows", before=before)]
            if gone:
                self._run(cur, "purge_workflow_stages", ids=self._id_list(gone))
        return removed

    def reap_expired_leases(self) -> list[JobRecord]:
        """Also settles the batches of large enqueues whose writer died (see _write_staged)."""
        self._finish_abandoned_batches()
        with self._autocommit() as cur:
            return [to_record(row) for row in self._rows(cur, "expired_leases", now=time.time())]

    def pause(self, queue: str) -> None:
        with self._transaction() as cur:
            self._run(cur, "pause", name=queue, now=time.time())

    def resume(self, queue: str) -> None:
        with self._transaction() as cur:
            self._run(cur, "resume", name=queue)
            self._notify(cur)

    def paused_queues(self) -> list[str]:
        with self._autocommit() as cur:
            return [row["name"] for row in self._rows(cur, "paused_queues")]

    # -- workers -------------------------------------------------------------------------
    def register_worker(self, worker_id: str, info: dict[str, Any]) -> None:
        with self._transaction() as cur:
            self._run(cur, "register_worker", id=worker_id, hostname=info["hostname"], pid=info["pid"],
                      queues=",".join(info["queues"]), concurrency=info["concurrency"], now=time.time())

    def heartbeat(self, worker_id: str, lease_seconds: float, job_ids: Sequence[str]) -> None:
        now = time.time()
        with self._transaction() as cur:
            self._run(cur, "heartbeat_worker", worker_id=worker_id, now=now)
            self._run(cur, "renew_leases", worker_id=worker_id, lease_until=now + lease_seconds,
                      ids=self._id_list(job_ids))
            self._run(cur, "forget_stale_workers", now=now, forget_after=10 * lease_seconds)

    def unregister_worker(self, worker_id: str) -> None:
        with self._transaction() as cur:
            self._run(cur, "unregister_worker", worker_id=worker_id)

    def workers(self, alive_within: float) -> list[dict[str, Any]]:
        with self._autocommit() as cur:
            rows = self._rows(cur, "workers", now=time.time(), alive_within=alive_within)
        return [
            {"id": r["id"], "hostname": r["hostname"], "pid": r["pid"],
             "queues": r["queues"].split(",") if r["queues"] else [],
             "concurrency": r["concurrency"], "started_at": r["started_at"],
             "last_heartbeat": r["last_heartbeat"], "running": r["running"]}
            for r in rows
        ]

    # -- monitoring ------------------------------------------------------------------------
    def task_metrics(self, runtime_buckets: Sequence[float]) -> dict[str, dict[str, Any]]:
        bounds = sorted(float(bound) for bound in runtime_buckets)
        unknown = [bound for bound in bounds if bound not in RUNTIME_BOUNDS]
        if unknown:
            raise InvalidValueError(f"run-time bucket bound(s) {', '.join(map(repr, unknown))} are not kept: the "
                                    f"histogram counts run times against {', '.join(map(repr, RUNTIME_BOUNDS))}; "
                                    "use some of those")
        tasks: dict[str, dict[str, Any]] = {}

        def entry(task_name: str) -> dict[str, Any]:
            if task_name not in tasks:
                tasks[task_name] = {"counts": empty_stats(), "failures": 0,
                                    "runtime": {"buckets": [0] * len(bounds), "count": 0, "sum": 0.0}}
            return tasks[task_name]

        with self._autocommit() as cur:
            count_rows = self._rows(cur, "task_counts")
            failure_rows = self._rows(cur, "task_failures")
        for row in count_rows:
            if row["status"] not in STATS_KEYS:  # staged jobs
                continue
            task = entry(row["task_name"])
            count, le = row["n"], row["runtime_le"]
            task["counts"][STATS_KEYS[row["status"]]] += count
            if le:  # a completed job's run time: le is the smallest kept bound at or above it
                runtime = task["runtime"]
                runtime["count"] += count
                runtime["sum"] += float(row["runtime_sum"])
                for i, bound in enumerate(bounds):
                    if le <= bound:
                        runtime["buckets"][i] += count
        for row in failure_rows:
            entry(row["task_name"])["failures"] = row["n"]
        return tasks

    def check_counts(self, repair: bool = False) -> list[dict[str, Any]]:
        # A repair holds the write lock (SQLite) or keeps folds out (PostgreSQL) while it recounts; a
        # check only reads, each comparison in one statement, hence one consistent snapshot.
        with self._transaction() if repair else self._autocommit() as cur:
            if repair:
                self._lock_counts(cur)
            differences = [
                {"counter": "jobs", "queue": row["queue"], "task_name": row["task_name"], "status": row["status"],
                 "runtime_le": row["runtime_le"] or None, "counted": row["counted"], "actual": row["actual"],
                 "counted_runtime_sum": row["counted_sum"], "actual_runtime_sum": row["actual_sum"]}
                for row in self._rows(cur, "count_differences")
            ] + [
                {"counter": "failures", "task_name": row["task_name"], "counted": row["counted"],
                 "actual": row["actual"]}
                for row in self._rows(cur, "failure_count_differences")
            ]
            if repair and differences:
                self._run(cur, "recount_jobs")
                self._run(cur, "recount_failures")
        return differences

    def throughput(self, since: float, step: float) -> dict[int, dict[str, int]]:
        if step <= 0:
            raise InvalidValueError(f"step must be positive, got {step}")
        buckets: dict[int, dict[str, int]] = {}

        def bucket(index: int) -> dict[str, int]:
            return buckets.setdefault(int(index), {"completed": 0, "dead": 0, "failed": 0})

        with self._autocommit() as cur:
            for row in self._rows(cur, "finished_per_bucket", since=since, step=step):
                bucket(row["bucket"])["completed" if row["status"] == Status.COMPLETE else "dead"] += row["n"]
            for row in self._rows(cur, "failures_per_bucket", since=since, step=step):
                bucket(row["bucket"])["failed"] += row["n"]
        return buckets

    # -- job logs and task minutes ------------------------------------------------------------
    def add_job_log(self, job_id: str, logged_at: float, level: str, message: str, extra: str | None,
                    limit: int) -> bool:
        with self._transaction() as cur:
            return self._run(cur, "add_job_log", job_id=job_id, logged_at=logged_at, level=level, message=message,
                             extra=extra, limit=limit) > 0

    def job_logs(self, job_id: str, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        if not is_job_id(job_id):
            return []
        with self._autocommit() as cur:
            rows = self._rows(cur, "job_logs", job_id=job_id, after=after, limit=limit)
        return [{"id": r["id"], "time": r["logged_at"], "level": r["level"], "message": r["message"],
                 "extra": r["extra"]} for r in rows]

    def task_minutes(self, since: float) -> list[tuple[Any, ...]]:
        with self._autocommit() as cur:
            rows = self._rows(cur, "task_minutes", since=since)
        return [tuple(row[key] for key in ("queue", "task_name", "outcome", "runtime_le", "wait_le", "n", "runtime_sum",
                                           "wait_sum")) for row in rows]

    def task_minutes_series(self, since: float, step: float) -> list[tuple[Any, ...]]:
        if step <= 0:
            raise InvalidValueError(f"step must be positive, got {step}")
        with self._autocommit() as cur:
            rows = self._rows(cur, "task_minutes_series", since=since, step=step)
        return [tuple(row[key] for key in ("bucket", "task_name", "outcome", "n", "runtime_sum")) for row in rows]

    def merge_task_minutes(self, start: float, end: float, step: int) -> None:
        with self._transaction() as cur:
            self._run(cur, "grouped_task_minutes", start=start, end=end, step=step)

    def prune_task_minutes(self, before: float) -> int:
        with self._transaction() as cur:
            return self._run(cur, "prune_task_minutes", before=before)

    def oldest_due(self, queue: str, now: float) -> float | None:
        with self._autocommit() as cur:
            rows = self._rows(cur, "oldest_due", queue=queue, now=now)
        return None if not rows or rows[0]["oldest"] is None else float(rows[0]["oldest"])

    # -- periodic tasks -------------------------------------------------------------------
    def register_periodic(self, definition: PeriodicDef) -> None:
        with self._transaction() as cur:
            self._run(cur, "upsert_periodic", name=definition.name, task_name=definition.task_name,
                      cron=definition.cron, timezone=definition.timezone, payload=definition.payload,
                      queue=definition.queue, next_run_at=definition.next_run_at)

    def due_periodic(self, now: float) -> list[PeriodicDef]:
        with self._autocommit() as cur:
            return [_periodic_def(row) for row in self._rows(cur, "due_periodic", now=now)]

    def fire_periodic(self, name: str, expected_next: float, new_next: float, job: NewJob) -> bool:
        now = time.time()
        with self._transaction() as cur:
            if not self._run(cur, "advance_periodic", name=name, expected_next=expected_next,
                             new_next=new_next, now=now):
                return False
            self._run(cur, "insert_job", **job_row(job, now, 0))
            self._notify(cur)
        return True

    def periodic(self, name: str | None = None) -> list[PeriodicDef]:
        with self._autocommit() as cur:
            rows = self._rows(cur, "list_periodic") if name is None else self._rows(cur, "get_periodic", name=name)
        return [_periodic_def(row) for row in rows]

    def set_periodic_paused(self, name: str, paused: bool, next_run_at: float | None) -> bool:
        with self._transaction() as cur:
            changed = self._run(cur, "set_periodic_paused", name=name, paused=paused, next_run_at=next_run_at)
            if changed and not paused:
                self._notify(cur)
        return bool(changed)

    def run_periodic(self, name: str, job: NewJob) -> None:
        now = time.time()
        with self._transaction() as cur:
            self._run(cur, "ran_periodic", name=name, now=now)
            self._run(cur, "insert_job", **job_row(job, now, 0))
            self._notify(cur)
