"""The worker's event loop: ``async def`` tasks run as coroutines on one loop thread per worker process.

Beside the thread (or prefork) pool that runs plain tasks, a worker whose queue has ``async def``
tasks runs one asyncio event loop on a thread of its own, up to ``async_concurrency`` coroutines at
once. ``MixedPool`` puts the two behind the interface the claim loop uses: one claim feeds both, and
each job goes where its task runs.

- ``current_job`` is a context variable: every coroutine (an asyncio task) sees its own job.
- A hard timeout cancels the coroutine (``Task.cancel()``): it stops at its next ``await``, and the
  attempt fails ("timed out") and is retried like any other failed attempt.
- Nothing on the loop waits for the database, nor writes a log line: progress updates and outcomes
  are recorded in order on one I/O thread of this pool (completions then go to the completion writer).
- A coroutine that blocks the loop (a blocking call where it should ``await``) is caught by a
  watchdog thread, which logs the task, the job and the line it is stuck on.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import TYPE_CHECKING

from ..context import LogLine, store_log_line
from ..storage import JobRecord
from .attempt import Outcome, arun_attempt, lost_attempt, record_outcome, timed_out
from .pool import JobPool, Running

if TYPE_CHECKING:
    from ..queue import Queue
    from .completions import CompletionWriter

logger = logging.getLogger("taskito.worker")

BEAT = 0.025  # how often the loop notes that it runs, and the watchdog looks
SLOW_CALLBACK = 0.1  # a coroutine holding the loop this long without awaiting is reported (asyncio's own default)
SHUTDOWN_GRACE = 2.0  # seconds cancelled coroutines get to run their cleanup when the worker stops


class AsyncPool(JobPool):
    """Runs coroutine tasks on one event loop thread, up to ``concurrency`` at once.

    It shares the condition of the pool beside it, so that the worker waiting for room in
    either one wakes when either frees a slot.
    """

    def __init__(self, queue: Queue, writer: CompletionWriter, concurrency: int, prefetch: int,
                 beside: JobPool) -> None:
        super().__init__(queue, writer, concurrency, prefetch)
        self._cond = beside._cond
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="taskito-asyncio", daemon=True)
        self._watchdog = threading.Thread(target=self._watch, name="taskito-asyncio-watchdog", daemon=True)
        self._stopping = threading.Event()
        # Progress updates and outcomes are recorded here, in order: nothing on the loop waits for the
        # database, nor for a log line's write (the loop would then wait for the GIL too).
        self._io = ThreadPoolExecutor(1, thread_name_prefix="taskito-asyncio-io")
        self._tasks: dict[tuple[str, int], asyncio.Task[None]] = {}  # touched on the loop thread only
        self._active = 0  # coroutines running and not given up (the condition guards it)
        self._refill: asyncio.TimerHandle | None = None  # a _fill waiting for a rate limit
        self._outbox: list[Callable[[], None]] = []  # for the I/O thread, gathered on the loop thread
        self._beat_at = time.monotonic()

    # -- what the worker loop calls --------------------------------------------------------
    def start(self) -> None:
        self._thread.start()
        self._watchdog.start()

    def _wake(self) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._fill)

    def check_timeouts(self) -> None:
        """Fail coroutines past their hard timeout and cancel them (they stop at their next await)."""
        now = time.monotonic()
        expired: list[Running] = []
        with self._cond:
            for entry in self._running.values():
                if not entry.abandoned and entry.deadline is not None and now > entry.deadline:
                    entry.abandoned = True
                    self._active -= 1
                    self._release()
                    expired.append(entry)
        if not expired:
            return
        self._loop.call_soon_threadsafe(self._cancel, [entry.key for entry in expired])
        for entry in expired:
            record_outcome(self.queue, self.writer, entry.record,
                           timed_out(self.queue, entry.record, now - entry.started), cancelled=entry.cancel.is_set())

    def _stop_running(self, entry: Running) -> None:
        """A cancelled coroutine is cancelled (``Task.cancel()``): it stops at its next await."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._cancel, [entry.key])

    def abandon_all(self) -> list[JobRecord]:
        records = super().abandon_all()
        with self._cond:
            self._active = 0
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._cancel, None)
        return records

    def close(self) -> None:
        """Cancel what still runs (its cleanup gets SHUTDOWN_GRACE seconds), stop the loop and the watchdog.

        A loop held by a blocking coroutine cannot answer: it is left to end with the process.
        """
        self._stopping.set()
        if self._thread.is_alive() and time.monotonic() - self._beat_at > BEAT + 1.0:
            logger.warning("the event loop is held by a blocking coroutine: stopping without it")
        elif self._thread.is_alive():
            done = asyncio.run_coroutine_threadsafe(self._cancel_all(), self._loop)
            try:
                done.result(SHUTDOWN_GRACE + 1)
            except Exception as exc:
                logger.warning("event loop did not stop cleanly: %s", exc)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._io.shutdown(wait=True)
        if self._watchdog.is_alive():
            self._watchdog.join(1)
        if not self._thread.is_alive():
            self._loop.close()

    # -- on the loop thread ----------------------------------------------------------------------
    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._beat)
        self._loop.run_forever()

    def _beat(self) -> None:
        self._beat_at = time.monotonic()
        self._loop.call_later(BEAT, self._beat)

    def _fill(self) -> None:
        """Start waiting jobs while fewer than ``concurrency`` coroutines run."""
        starting: list[Running] = []
        wait: float | None = None
        with self._cond:
            while self._active < self.concurrency:
                record, wait = self._next_job()
                if record is None:
                    break
                entry = self._begin(record)  # marked running now: its coroutine starts in this loop iteration
                self._active += 1
                starting.append(entry)
        for entry in starting:
            name = f"{entry.record.task_name} {entry.record.id}"
            self._tasks[entry.key] = self._loop.create_task(self._run(entry), name=name)
        if wait is not None and self._refill is None:  # held back by a rate limit: look again when it allows
            self._refill = self._loop.call_later(wait, self._refilled)

    def _refilled(self) -> None:
        self._refill = None
        self._fill()

    def _cancel(self, keys: Sequence[tuple[str, int]] | None) -> None:
        """Cancel the coroutines of these attempts (None: all of them)."""
        for key in list(self._tasks) if keys is None else keys:
            task = self._tasks.get(key)
            if task is not None:
                task.cancel()
        self._fill()

    async def _cancel_all(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)

    async def _run(self, entry: Running) -> None:
        record = entry.record
        outcome: Outcome | None = None
        try:
            outcome = await arun_attempt(self.queue, record, entry.started, still_current=lambda: not entry.abandoned,
                                         write_progress=self._write_progress, write_log=self._write_log,
                                         cancel=entry.cancel)
        except BaseException as exc:  # taskito's own error, or a cancel outside the task function
            if not entry.abandoned:
                logger.exception("job %s %s: unexpected worker error", record.id, record.task_name)
                outcome = lost_attempt(self.queue, record, exc, time.monotonic() - entry.started)
        finally:
            self._tasks.pop(entry.key, None)
        with self._cond:
            abandoned = entry.abandoned
            if abandoned:  # its slot was released when it was given up
                del self._running[entry.key]
            else:  # its coroutine slot is free now; the job stays held until its outcome is recorded
                entry.deadline = None
                self._active -= 1
        if abandoned or outcome is None:
            self._to_io(functools.partial(logger.info, "job %s %s stopped after it was given up (timeout or "
                                          "shutdown); result discarded", record.id, record.task_name))
            return
        # After its progress writes (one thread, in order); its log line's I/O stays off the loop too.
        self._to_io(functools.partial(self._record, entry, outcome))
        self._fill()

    def _write_progress(self, job_id: str, progress: float) -> None:
        """``current_job.update_progress`` in a coroutine: written on the I/O thread, in order."""
        action = functools.partial(self._store_progress, job_id, progress)
        if threading.get_ident() == self._thread.ident:
            self._to_io(action)
        else:  # from a thread the coroutine started with its context (asyncio.to_thread)
            self._loop.call_soon_threadsafe(self._to_io, action)

    def _write_log(self, job_id: str, line: LogLine) -> None:
        """``current_job.log`` in a coroutine: written on the I/O thread, in order."""
        if self.queue.max_log_lines <= 0:
            return
        action = functools.partial(store_log_line, self.queue.storage, job_id, line, self.queue.max_log_lines)
        if threading.get_ident() == self._thread.ident:
            self._to_io(action)
        else:
            self._loop.call_soon_threadsafe(self._to_io, action)

    def _to_io(self, action: Callable[[], None]) -> None:
        """Queue ``action`` for the I/O thread: those of one loop iteration go over together."""
        self._outbox.append(action)
        if len(self._outbox) == 1:
            self._loop.call_soon(self._hand_over)

    def _hand_over(self) -> None:
        actions, self._outbox = self._outbox, []
        self._io.submit(self._perform, actions)

    # -- on the I/O thread -------------------------------------------------------------------------
    def _perform(self, actions: list[Callable[[], None]]) -> None:
        for action in actions:
            try:
                action()
            except Exception:
                logger.exception("event loop I/O failed; carrying on")

    def _store_progress(self, job_id: str, progress: float) -> None:
        try:
            self.queue.storage.set_progress(job_id, progress)
        except Exception as exc:
            logger.warning("job %s: could not record progress %g: %s", job_id, progress, exc)

    def _record(self, entry: Running, outcome: Outcome) -> None:
        """Record the attempt (a completion is queued for the writer, a failure written now); only then is
        the job no longer held (a drain waits for it, the heartbeat renews its lease until then)."""
        try:
            record_outcome(self.queue, self.writer, entry.record, outcome, cancelled=entry.cancel.is_set())
        finally:
            with self._cond:
                del self._running[entry.key]
                if not entry.abandoned:
                    self._release()

    def _wanted(self) -> int:
        """Claim once half the prefetch is free, before the waiting jobs run out: coroutines finish fast and
        many at once, so a claim made only when none is left to start would leave slots idle meanwhile."""
        free = self.capacity - self._held
        return free if free >= max(1, (self.capacity - self.concurrency) // 2) else 0

    # -- the watchdog thread -------------------------------------------------------------------------
    def _watch(self) -> None:
        """Report a coroutine that keeps the loop from running: the loop's beat stops while it blocks."""
        suspect: tuple[tuple[str, int], float] | None = None  # (attempt, beat) seen blocking once
        reported: tuple[Running, float] | None = None  # the episode already reported
        while not self._stopping.wait(BEAT):
            beat_at = self._beat_at
            blocked = time.monotonic() - beat_at - BEAT
            if reported is not None and reported[1] != beat_at:
                entry, since = reported
                logger.warning("async task %s (job %s) blocked the event loop for %.2fs in all", entry.record.task_name,
                               entry.record.id, beat_at - since - BEAT)
                reported = None
            if blocked < SLOW_CALLBACK or reported is not None:
                suspect = None
                continue
            found = self._blocking_job()
            if found is None:
                suspect = None
                continue
            entry, where = found
            if suspect != (entry.key, beat_at):  # seen once: a busy loop passes through many jobs, a blocked one stays
                suspect = (entry.key, beat_at)
                continue
            reported = (entry, beat_at)
            logger.warning("async task %s (job %s) has blocked the worker's event loop for %.2fs, at %s: no other "
                           "coroutine runs meanwhile; await instead (asyncio.sleep, an async client) or move the "
                           "blocking call to a thread with asyncio.to_thread", entry.record.task_name, entry.record.id,
                           blocked, where)

    def _blocking_job(self) -> tuple[Running, str] | None:
        """The attempt whose coroutine the loop thread is executing now, and where; None if none is."""
        top = sys._current_frames().get(self._thread.ident or -1)
        try:
            frames = {task.get_coro().cr_frame: key for key, task in list(self._tasks.items())}  # type: ignore[union-attr]
        except RuntimeError:  # changed while read: the loop is running, not blocked
            return None
        frame: FrameType | None = top
        while frame is not None:
            key = frames.get(frame)
            if key is not None:
                entry = self._running.get(key)
                if entry is None or top is None:
                    return None
                code = top.f_code
                return entry, f"{code.co_filename}:{top.f_lineno} in {code.co_name}"
            frame = frame.f_back
        return None


class MixedPool:
    """The worker's pool when some tasks are ``async def``: plain jobs go to ``plain`` (threads or
    prefork), coroutines to ``coroutines``, and one claim budget covers both.

    A claim cannot ask for one kind, so it takes what the pool with the most room wants, within the
    room left in both together: at most the two capacities (concurrency + prefetch each) are held.
    """

    def __init__(self, plain: JobPool, coroutines: AsyncPool) -> None:
        self.plain = plain
        self.coroutines = coroutines
        self._pools = (plain, coroutines)
        self._cond = plain._cond  # shared by both (see AsyncPool)

    def start(self) -> None:
        self.plain.start()  # first: a prefork pool forks best while no other thread runs
        self.coroutines.start()

    def close(self) -> None:
        self.coroutines.close()
        self.plain.close()

    def check_timeouts(self) -> None:
        for pool in self._pools:
            pool.check_timeouts()

    def _wanted(self) -> int:
        room = sum(pool.capacity - pool._held for pool in self._pools)
        return min(max(pool._wanted() for pool in self._pools), room)

    def wanted(self) -> int:
        with self._cond:
            return self._wanted()

    def wait_for_room(self, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(self._wanted, timeout)

    def submit(self, records: list[JobRecord]) -> None:
        tasks = self.plain.queue.tasks
        coroutines = [record for record in records
                      if (task := tasks.get(record.task_name)) is not None and task.is_async]
        if coroutines:
            self.coroutines.submit(coroutines)
            chosen = {id(record) for record in coroutines}
            records = [record for record in records if id(record) not in chosen]
        if records:  # plain ones, and unknown tasks (they fail there at once)
            self.plain.submit(records)

    def take_expired(self) -> list[JobRecord]:
        return [record for pool in self._pools for record in pool.take_expired()]

    def cancel(self, requested: Collection[tuple[str, int]], grace: float) -> list[JobRecord]:
        return [record for pool in self._pools for record in pool.cancel(requested, grace)]

    def held_ids(self) -> list[str]:
        return [job_id for pool in self._pools for job_id in pool.held_ids()]

    def take_unstarted(self) -> list[JobRecord]:
        return [record for pool in self._pools for record in pool.take_unstarted()]

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: all(pool._held <= 0 for pool in self._pools), timeout)

    def abandon_all(self) -> list[JobRecord]:
        return [record for pool in self._pools for record in pool.abandon_all()]
