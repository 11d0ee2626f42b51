"""What every pool shares: the jobs a worker holds (waiting or running), the claim budget, and
which waiting job starts next (priority order, rate limits, expiry)."""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..storage import JobRecord
from .ratelimit import TokenBucket
from .retry import apply_task_defaults

if TYPE_CHECKING:
    from ..queue import Queue
    from .completions import CompletionWriter


@dataclass
class Running:
    record: JobRecord
    started: float  # monotonic: timeouts and durations
    deadline: float | None
    abandoned: bool = False

    @property
    def key(self) -> tuple[str, int]:
        return self.record.id, self.record.attempt


class JobPool:
    """Holds at most ``concurrency + prefetch`` jobs; subclasses decide where they run."""

    def __init__(self, queue: Queue, writer: CompletionWriter, concurrency: int, prefetch: int) -> None:
        self.queue = queue
        self.writer = writer
        self.concurrency = concurrency
        self.capacity = concurrency + prefetch
        # Waiting jobs in priority order: a job claimed later may still start before earlier ones.
        self._inbox: list[JobRecord] = []
        # One token bucket per rate-limited task: limits apply per worker process, children included.
        self._buckets = {name: TokenBucket(task.options.rate_limit)
                         for name, task in queue.tasks.items() if task.options.rate_limit}
        self._put_back_until: dict[str, float] = {}  # per rate-limited task: the turn after those put back
        self._cond = threading.Condition()
        # Keyed by (job id, attempt): a timed-out attempt may still run beside the job's retry.
        self._running: dict[tuple[str, int], Running] = {}
        self._held = 0  # jobs waiting or running, not counting abandoned ones
        self._closed = False

    # -- what the worker loop calls --------------------------------------------------------
    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the pool's resources once the worker has stopped."""

    def check_timeouts(self) -> None:
        """Enforce hard timeouts (pools that watch them elsewhere do nothing here)."""

    def _wanted(self) -> int:
        # Claim in batches: wait until half the capacity is free, unless runners would go idle.
        free = self.capacity - self._held
        return free if free >= self.capacity // 2 or not self._inbox else 0

    def wanted(self) -> int:
        """How many jobs to claim now (0: not worth a claim yet)."""
        with self._cond:
            return self._wanted()

    def wait_for_room(self, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(self._wanted, timeout)

    def submit(self, records: list[JobRecord]) -> None:
        for record in records:
            apply_task_defaults(self.queue, record)
        with self._cond:
            for record in records:
                bisect.insort_right(self._inbox, record, key=_start_order)
            self._held += len(records)
            self._cond.notify_all()
        self._wake()

    def _wake(self) -> None:
        """Tell the runners that jobs arrived (the condition already wakes threads)."""

    def _begin(self, record: JobRecord) -> Running:
        """A waiting job starts now (called with the condition held): from here on it is running,
        which the completion writer records in its next batch of start marks."""
        now = time.monotonic()
        entry = Running(record, now, now + record.timeout if record.timeout else None)
        self._running[entry.key] = entry
        self.writer.started(record.id, record.attempt, time.time())
        return entry

    def _next_job(self) -> tuple[JobRecord | None, float | None]:
        """Pop the first waiting job that may start now (called with the condition held).

        Returns ``(job, None)``, or ``(None, seconds)`` when every waiting job is held back by
        its rate limit, or ``(None, None)`` when none may start. Expired jobs never start: they
        wait for ``take_expired``.
        """
        now = time.time()
        wait: float | None = None
        for index, record in enumerate(self._inbox):
            if record.expires_at is not None and record.expires_at < now:
                continue
            bucket = self._buckets.get(record.task_name)
            token_wait = bucket.try_acquire() if bucket else 0.0
            if token_wait == 0.0:
                del self._inbox[index]
                return record, None
            wait = token_wait if wait is None else min(wait, token_wait)
        return None, wait

    def take_expired(self) -> list[JobRecord]:
        """Remove the waiting jobs whose ``expires`` passed: they must be cancelled, never run."""
        now = time.time()
        with self._cond:
            expired = [r for r in self._inbox if r.expires_at is not None and r.expires_at < now]
            if expired:
                self._inbox = [r for r in self._inbox if r.expires_at is None or r.expires_at >= now]
                self._held -= len(expired)
                self._cond.notify_all()
        return expired

    def take_rate_limited(self, hold: float) -> list[tuple[JobRecord, float]]:
        """Remove the waiting jobs a rate limit keeps from starting within ``hold`` seconds.

        Each comes back with the time its turn should come (its task's jobs spaced 1/rate apart,
        after those put back before), to be put back until then: held here, they would fill the
        worker's capacity and starve every other task's jobs.
        """
        now = time.time()
        later: list[tuple[JobRecord, float]] = []
        with self._cond:
            turn: dict[str, float] = {}  # per task: when its next waiting job may start
            for record in self._inbox:
                bucket = self._buckets.get(record.task_name)
                if bucket is None:
                    continue
                start = turn.get(record.task_name, now + bucket.wait())
                if start - now > hold:
                    start = max(start, self._put_back_until.get(record.task_name, 0.0))
                    later.append((record, start))
                    self._put_back_until[record.task_name] = start + 1 / bucket.per_second
                turn[record.task_name] = start + 1 / bucket.per_second
            if later:
                gone = {id(record) for record, _ in later}
                self._inbox = [record for record in self._inbox if id(record) not in gone]
                self._held -= len(later)
                self._cond.notify_all()
        return later

    def held_ids(self) -> list[str]:
        """Jobs this worker still owns: waiting or running (not abandoned)."""
        with self._cond:
            return [record.id for record in self._inbox] + [
                entry.record.id for entry in self._running.values() if not entry.abandoned]

    def take_unstarted(self) -> list[JobRecord]:
        """Stop starting jobs and hand back the ones still waiting."""
        with self._cond:
            self._closed = True
            unstarted = list(self._inbox)
            self._inbox.clear()
            self._held -= len(unstarted)
            self._cond.notify_all()
        self._wake()
        return unstarted

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._held <= 0, timeout)

    def abandon_all(self) -> list[JobRecord]:
        """Give up on every running job (shutdown past the drain timeout)."""
        with self._cond:
            records = [entry.record for entry in self._running.values() if not entry.abandoned]
            for entry in self._running.values():
                entry.abandoned = True
            self._held = 0
            self._cond.notify_all()
        return records

    def _release(self) -> None:
        """One held job is done (called with the condition held)."""
        self._held -= 1
        self._cond.notify_all()


def _start_order(record: JobRecord) -> tuple[int, float]:
    return -record.priority, record.scheduled_at
