"""What every pool shares: the jobs a worker holds (waiting or running) and the claim budget."""

from __future__ import annotations

import collections
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
    started: float
    deadline: float | None
    abandoned: bool = False

    @property
    def key(self) -> tuple[str, int]:
        return self.record.id, self.record.attempt

    @classmethod
    def start(cls, record: JobRecord) -> Running:
        now = time.monotonic()
        return cls(record, now, now + record.timeout if record.timeout else None)


class JobPool:
    """Holds at most ``concurrency + prefetch`` jobs; subclasses decide where they run."""

    def __init__(self, queue: Queue, writer: CompletionWriter, concurrency: int, prefetch: int) -> None:
        self.queue = queue
        self.writer = writer
        self.concurrency = concurrency
        self.capacity = concurrency + prefetch
        self._inbox: collections.deque[JobRecord] = collections.deque()
        self._cond = threading.Condition()
        # Keyed by (job id, attempt): a timed-out attempt may still run beside the job's retry.
        self._running: dict[tuple[str, int], Running] = {}
        self._held = 0  # jobs waiting or running, not counting abandoned ones
        self._closed = False

    @staticmethod
    def rate_limits_of(queue: Queue) -> dict[str, TokenBucket]:
        """One token bucket per rate-limited task (limits apply per process)."""
        return {name: TokenBucket(task.options.rate_limit)
                for name, task in queue.tasks.items() if task.options.rate_limit}

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
            self._inbox.extend(records)
            self._held += len(records)
            self._cond.notify_all()
        self._wake()

    def _wake(self) -> None:
        """Tell the runners that jobs arrived (the condition already wakes threads)."""

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
