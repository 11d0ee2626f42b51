"""The thread pool that runs claimed jobs, and the hard timeout that abandons stuck ones."""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..storage import JobRecord
from .attempt import record_outcome, run_attempt, timed_out
from .ratelimit import TokenBucket
from .retry import apply_task_defaults

if TYPE_CHECKING:
    from ..queue import Queue
    from .completions import CompletionWriter

logger = logging.getLogger("taskito.worker")


@dataclass
class Running:
    record: JobRecord
    started: float
    deadline: float | None
    abandoned: bool = False


class ThreadExecutor:
    """Runs jobs on ``concurrency`` threads; holds at most ``concurrency + prefetch`` jobs."""

    def __init__(self, queue: Queue, writer: CompletionWriter, concurrency: int, prefetch: int) -> None:
        self.queue = queue
        self.storage = queue.storage
        self.writer = writer
        self.concurrency = concurrency
        self.capacity = concurrency + prefetch
        self._inbox: collections.deque[JobRecord] = collections.deque()
        self._cond = threading.Condition()
        self._running: dict[str, Running] = {}
        self._held = 0  # jobs buffered or running, not counting abandoned ones
        self._threads = 0
        self._closed = False
        self._buckets = {
            name: TokenBucket(task.options.rate_limit)
            for name, task in queue.tasks.items() if task.options.rate_limit
        }

    # -- called by the worker loop ---------------------------------------------------------
    def start(self) -> None:
        for _ in range(self.concurrency):
            self._spawn()

    def _wanted(self) -> int:
        # Claim in batches: wait until half the capacity is free, unless threads would go idle.
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
            self._cond.notify(len(records))

    def held_ids(self) -> list[str]:
        """Jobs this worker still owns: waiting for a thread or running (not abandoned)."""
        with self._cond:
            return [record.id for record in self._inbox] + [
                job_id for job_id, entry in self._running.items() if not entry.abandoned]

    def take_unstarted(self) -> list[JobRecord]:
        """Stop starting jobs and hand back the ones still waiting for a thread."""
        with self._cond:
            self._closed = True
            unstarted = list(self._inbox)
            self._inbox.clear()
            self._held -= len(unstarted)
            self._cond.notify_all()
        return unstarted

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._held > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def abandon_all(self) -> list[JobRecord]:
        """Give up on every running job (shutdown past the drain timeout)."""
        with self._cond:
            records = [entry.record for entry in self._running.values() if not entry.abandoned]
            for entry in self._running.values():
                entry.abandoned = True
            self._held = 0
        return records

    def check_timeouts(self) -> None:
        """Fail jobs past their hard timeout and give their thread slot to a fresh thread."""
        now = time.monotonic()
        expired = []
        with self._cond:
            for entry in self._running.values():
                if not entry.abandoned and entry.deadline is not None and now > entry.deadline:
                    entry.abandoned = True
                    self._held -= 1
                    expired.append(entry)
            if expired:
                self._cond.notify_all()
        for entry in expired:
            self._spawn()
            record_outcome(self.storage, self.writer, entry.record, timed_out(self.queue, entry.record,
                                                                              now - entry.started))

    # -- the threads -------------------------------------------------------------------------
    def _spawn(self) -> None:
        with self._cond:
            self._threads += 1
            number = self._threads
        threading.Thread(target=self._thread_main, name=f"taskito-exec-{number}", daemon=True).start()

    def _thread_main(self) -> None:
        while True:
            with self._cond:
                while not self._inbox and not self._closed:
                    self._cond.wait()
                if not self._inbox:
                    return
                record = self._inbox.popleft()
                started = time.monotonic()
                entry = Running(record, started, started + record.timeout if record.timeout else None)
                self._running[record.id] = entry
            try:
                self._execute(entry)
            except Exception:
                logger.exception("job %s %s: unexpected worker error", record.id, record.task_name)
            with self._cond:
                del self._running[record.id]
                if entry.abandoned:
                    return  # a replacement thread took this slot when the job timed out
                self._held -= 1
                self._cond.notify_all()

    def _execute(self, entry: Running) -> None:
        record = entry.record
        outcome = run_attempt(self.queue, record, entry.started, self._buckets.get(record.task_name))
        if entry.abandoned:
            logger.info("job %s %s finished after its timeout; result discarded", record.id, record.task_name)
            return
        record_outcome(self.storage, self.writer, record, outcome)
