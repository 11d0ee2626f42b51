"""The thread pool: jobs run on threads of the worker process; a stuck one is abandoned at its timeout."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from .attempt import lost_attempt, record_outcome, run_attempt, timed_out
from .pool import JobPool, Running

if TYPE_CHECKING:
    from ..queue import Queue
    from .completions import CompletionWriter

logger = logging.getLogger("taskito.worker")


class ThreadPool(JobPool):
    """Runs jobs on ``concurrency`` threads of the worker process."""

    def __init__(self, queue: Queue, writer: CompletionWriter, concurrency: int, prefetch: int) -> None:
        super().__init__(queue, writer, concurrency, prefetch)
        self._threads = 0
        self._arrived = threading.Condition(self._lock)  # runners wait here for jobs

    def _announce(self, count: int | None) -> None:
        if count is None:
            self._arrived.notify_all()
        else:
            self._arrived.notify(count)

    def start(self) -> None:
        for _ in range(self.concurrency):
            self._spawn()

    def check_timeouts(self) -> None:
        """Fail jobs past their hard timeout and give their thread slot to a fresh thread."""
        now = time.monotonic()
        expired = []
        with self._cond:
            for entry in self._running.values():
                if not entry.abandoned and entry.deadline is not None and now > entry.deadline:
                    entry.abandoned = True
                    self._release()
                    expired.append(entry)
        for entry in expired:
            self._spawn()
            outcome = timed_out(self.queue, entry.record, now - entry.started)
            record_outcome(self.queue, self.writer, entry.record, outcome, cancelled=entry.cancel.is_set())

    # -- the threads -------------------------------------------------------------------------
    def _spawn(self) -> None:
        with self._cond:
            self._threads += 1
            number = self._threads
        threading.Thread(target=self._thread_main, name=f"taskito-exec-{number}", daemon=True).start()

    def _thread_main(self) -> None:
        while True:
            with self._cond:
                record, wait = self._next_job()
                while record is None and not self._closed:
                    self._arrived.wait(wait)  # None: until jobs arrive; else until a rate limit allows one
                    record, wait = self._next_job()
                if record is None:
                    return
                entry = self._begin(record)
            try:
                self._execute(entry)
            except BaseException as exc:  # this thread is the slot: nothing may end it with the job held
                logger.exception("job %s %s: unexpected worker error", record.id, record.task_name)
                if not entry.abandoned:
                    record_outcome(self.queue, self.writer, record,
                                   lost_attempt(self.queue, record, exc, time.monotonic() - entry.started))
            with self._cond:
                del self._running[entry.key]
                if entry.abandoned:
                    return  # a replacement thread took this slot when the job timed out
                self._release(time.monotonic() - entry.started)

    def _execute(self, entry: Running) -> None:
        record = entry.record
        outcome = run_attempt(self.queue, record, entry.started, still_current=lambda: not entry.abandoned,
                              cancel=entry.cancel)
        if entry.abandoned:
            logger.info("job %s %s finished after its timeout; result discarded", record.id, record.task_name)
            return
        record_outcome(self.queue, self.writer, record, outcome, cancelled=entry.cancel.is_set())
