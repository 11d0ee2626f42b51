"""What every pool shares: the jobs a worker holds (waiting or running), the claim budget, which
waiting job starts next (priority order, rate-limit slots, expiry), and cancellation requests."""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..storage import JobRecord
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
    # Set when cancel_job() asked to stop it: current_job.cancelled reads it, and the job ends cancelled.
    cancel: threading.Event = field(default_factory=threading.Event)
    kill_at: float | None = None  # monotonic: when a cancelled job's process is killed (prefork)

    @property
    def key(self) -> tuple[str, int]:
        return self.record.id, self.record.attempt


# Short jobs: a claim takes ahead what the runners finish in this many seconds, up to the engine's
# ``max_prefetch`` jobs (see Storage). Each claim is a transaction: on PostgreSQL, 16 no-op jobs a claim
# cost a third more CPU per job than 128.
PREFETCH_WINDOW = 0.05


class JobPool:
    """Holds at most ``concurrency + prefetch`` jobs, and more ahead while jobs are short (see ``_ran``);
    subclasses decide where they run."""

    def __init__(self, queue: Queue, writer: CompletionWriter, concurrency: int, prefetch: int) -> None:
        self.queue = queue
        self.writer = writer
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.capacity = concurrency + prefetch
        self._mean_run: float | None = None  # seconds a job runs, a moving average
        self._most_ahead = max(queue.storage.max_prefetch, prefetch)  # short jobs may be claimed this far ahead
        # Waiting jobs in priority order: a job claimed later may still start before earlier ones.
        self._inbox: list[JobRecord] = []
        # The pool's state changed (room to claim, idle): the worker loop waits on it. Runners that wait
        # for jobs wait on a condition of their own over the same lock (see _announce), so a job's end
        # does not wake them, nor new jobs the worker loop.
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
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
            self._announce(len(records))
        self._wake()

    def _announce(self, count: int | None) -> None:
        """``count`` jobs arrived, or (None) the pool closed: wake as many runners waiting for jobs
        (called with the lock held). Pools whose runners wait elsewhere are told by ``_wake``."""

    def _wake(self) -> None:
        """Tell the runners that jobs arrived, outside the lock (pools whose runners wait elsewhere)."""

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

        Returns ``(job, None)``, or ``(None, seconds)`` when every waiting job waits for its time
        slot (a rate limit: the claim gave it ``start_after``), or ``(None, None)`` when none may
        start. Expired jobs never start: they wait for ``take_expired``.
        """
        index, wait = self._first_startable()
        return (None, wait) if index is None else (self._inbox.pop(index), None)

    def _first_startable(self) -> tuple[int | None, float | None]:
        """Where the first waiting job that may start now is in the inbox, or ``(None, seconds until a
        rate-limit slot frees one)`` (``(None, None)`` if none will) (called with the condition held)."""
        now = time.time()
        wait: float | None = None
        for index, record in enumerate(self._inbox):
            if record.expires_at is not None and record.expires_at < now:
                continue
            if record.start_after is None or record.start_after <= now:
                return index, None
            slot_wait = record.start_after - now
            wait = slot_wait if wait is None else min(wait, slot_wait)
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

    def cancel(self, requested: Collection[tuple[str, int]], grace: float) -> list[JobRecord]:
        """Stop the attempts whose cancellation was asked for; returns those that had not started
        (removed here: the caller records them cancelled). Running ones are told to stop (see
        ``_stop_running``); their job ends cancelled when they do."""
        now = time.monotonic()
        stopping: list[Running] = []
        with self._cond:
            unstarted = [record for record in self._inbox if (record.id, record.attempt) in requested]
            if unstarted:
                self._inbox = [record for record in self._inbox if (record.id, record.attempt) not in requested]
                self._held -= len(unstarted)
                self._cond.notify_all()
            for key, entry in self._running.items():
                if key in requested and not entry.abandoned and not entry.cancel.is_set():
                    entry.cancel.set()
                    entry.kill_at = now + grace
                    stopping.append(entry)
        for entry in stopping:
            self._stop_running(entry)
        return unstarted

    def _stop_running(self, entry: Running) -> None:
        """Ask a running attempt to stop (threads: ``current_job.cancelled`` is all they can be told)."""

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
            self._announce(None)
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

    def _release(self, ran: float | None = None) -> None:
        """One held job is done, after running ``ran`` seconds if it ran (called with the condition held).

        Wakes the waiting threads only when it matters: the worker when a claim is worth it, or when the
        pool is idle (a drain waits for that). Runners wait for jobs, not for each other's ends: waking
        every runner at every job's end made 16 threads drain slower than one.
        """
        self._held -= 1
        if ran is not None and self._most_ahead > self.prefetch:  # claims can grow: size them
            self._ran(ran)
        if self._held <= 0 or self._wanted() > 0:
            self._cond.notify_all()

    def _ran(self, seconds: float) -> None:
        """Size the claims by how long jobs run: as many as the runners finish in PREFETCH_WINDOW, at least
        ``prefetch`` ahead (long jobs are not held back from other workers), at most the engine's max_prefetch."""
        mean = seconds if self._mean_run is None else 0.9 * self._mean_run + 0.1 * seconds
        self._mean_run = mean
        ahead = self.concurrency * PREFETCH_WINDOW / max(mean, 1e-6)
        self.capacity = self.concurrency + int(min(self._most_ahead, max(self.prefetch, ahead)))


def _start_order(record: JobRecord) -> tuple[int, float]:
    return -record.priority, record.scheduled_at
