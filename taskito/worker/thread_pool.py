"""The thread pool: jobs run on threads of the worker process; a stuck one is abandoned at its timeout."""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import TYPE_CHECKING

from .attempt import lost_attempt, record_outcome, run_attempt, timed_out
from .pool import JobPool, Running

if TYPE_CHECKING:
    from ..queue import Queue
    from .completions import CompletionWriter

logger = logging.getLogger("taskito.worker")

# A job that may start waits about this long at most for a runner while another one sleeps. New jobs
# wake only as many runners as run them within it at the jobs' mean run time; a watcher wakes one more
# whenever jobs wait and no runner took one for this long (a job ran long, or the mean misjudged it).
DISPATCH_SLACK = 0.005


class ThreadPool(JobPool):
    """Runs jobs on ``concurrency`` threads of the worker process."""

    def __init__(self, queue: Queue, writer: CompletionWriter, concurrency: int, prefetch: int) -> None:
        super().__init__(queue, writer, concurrency, prefetch)
        self._threads = 0
        self._arrived = threading.Condition(self._lock)  # runners wait here for jobs
        self._watched = threading.Condition(self._lock)  # the watcher waits here (see _watch_waiting)
        self._sleeping = 0  # runners waiting for jobs
        self._last_take = 0.0  # monotonic: when a runner last took a job
        self._mean_call: float | None = None  # seconds an attempt itself runs (see _called), a moving average

    def _announce(self, count: int | None) -> None:
        if count is None:
            self._arrived.notify_all()
            self._watched.notify()
            return
        woken = self._runners_for(count)
        self._arrived.notify(woken)
        if woken < count:  # jobs left for runners already busy: the watcher looks after them
            self._watched.notify()

    def _runners_for(self, count: int) -> int:
        """How many sleeping runners ``count`` new jobs wake: one per job while the mean attempt time is
        unknown, else as many as run them all within DISPATCH_SLACK."""
        if self._mean_call is None:
            return count
        return max(1, min(count, math.ceil(count * self._mean_call / DISPATCH_SLACK)))

    def _surplus(self) -> bool:
        """Whether the other awake runners, once done with the job each may be running, run the waiting
        jobs within DISPATCH_SLACK without this one, which then sleeps (called with the condition held).
        Sixteen threads sharing a backlog of no-op jobs cost 40% more CPU per job than one thread running
        them in turn: they waited for each other."""
        others = self.concurrency - self._sleeping - 1
        return (others > 0 and self._mean_call is not None
                and self._mean_call * (len(self._inbox) / others + 1) < DISPATCH_SLACK)

    def _called(self, seconds: float) -> None:
        """Average how long attempts run, from their own start to their end (not the pool's bookkeeping
        around them, where runners wait for each other's locks: counted in, waking more runners made
        every job look longer, which woke more). A sample counts at most four times the mean, so one
        job that waited for the interpreter lock does not wake every runner, and the mean still grows
        to a run of 10 ms jobs within some twenty of them."""
        mean = self._mean_call
        self._mean_call = seconds if mean is None else 0.9 * mean + 0.1 * min(seconds, 4 * mean)

    def start(self) -> None:
        for _ in range(self.concurrency):
            self._spawn()
        threading.Thread(target=self._watch_waiting, name="taskito-dispatch", daemon=True).start()

    def _watch_waiting(self) -> None:
        """Wake one more runner whenever a job may start, runners sleep, and none took a job for DISPATCH_SLACK."""
        with self._cond:
            while not self._closed:
                if not self._sleeping or self._first_startable()[0] is None:
                    self._watched.wait()  # until jobs arrive (runners finishing take them meanwhile)
                    continue
                late = time.monotonic() - self._last_take - DISPATCH_SLACK
                if late >= 0:
                    self._arrived.notify()
                    self._last_take = time.monotonic()  # the woken runner's turn to take one
                    late = -DISPATCH_SLACK
                self._watched.wait(-late)

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
        done: Running | None = None
        while True:
            # One hold of the pool's lock per job, for the end of the last and the start of the next: with
            # 16 threads busy, an eighth of their samples (py-spy) were waits to take it.
            with self._cond:
                if done is not None:
                    del self._running[done.key]
                    if done.abandoned:
                        return  # a replacement thread took this slot when the job timed out
                    self._release(time.monotonic() - done.started)
                # Not needed now: this one sleeps, woken by new jobs, or by the watcher should the others run long.
                record, wait = (None, None) if done is not None and self._surplus() else self._next_job()
                while record is None and not self._closed:
                    self._sleeping += 1
                    if self._inbox:  # a sleeper while jobs wait: the watcher looks after them
                        self._watched.notify()
                    try:
                        self._arrived.wait(wait)  # None: until jobs arrive; else until a rate limit allows one
                    finally:
                        self._sleeping -= 1
                    record, wait = self._next_job()
                if record is None:
                    return
                self._last_take = time.monotonic()
                done = self._begin(record)
            try:
                self._execute(done)
            except BaseException as exc:  # this thread is the slot: nothing may end it with the job held
                logger.exception("job %s %s: unexpected worker error", record.id, record.task_name)
                if not done.abandoned:
                    record_outcome(self.queue, self.writer, record,
                                   lost_attempt(self.queue, record, exc, time.monotonic() - done.started))

    def _execute(self, entry: Running) -> None:
        record = entry.record
        outcome = run_attempt(self.queue, record, entry.started, still_current=lambda: not entry.abandoned,
                              cancel=entry.cancel)
        self._called(outcome.duration)
        if entry.abandoned:
            logger.info("job %s %s finished after its timeout; result discarded", record.id, record.task_name)
            return
        record_outcome(self.queue, self.writer, record, outcome, cancelled=entry.cancel.is_set())
