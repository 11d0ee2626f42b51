"""The prefork pool: jobs run in child processes, so a hard timeout really stops them.

Children are forked from the worker (the task registry comes with them) and open their
own database connections. They ignore SIGINT and SIGTERM: the parent decides when a job
is drained, and kills a child whose job passed its timeout, then forks a fresh one.
A cancelled job's child gets SIGUSR1 (``current_job.cancelled`` turns true in it) and is
killed if it still runs the job ``cancel_grace`` seconds later.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from ..exceptions import TaskCancelledError, WorkerLostError
from ..storage import JobRecord
from .attempt import Outcome, lost_attempt, record_outcome, run_attempt, timed_out
from .pool import JobPool, Running

if TYPE_CHECKING:
    from ..queue import Queue
    from .completions import CompletionWriter

logger = logging.getLogger("taskito.worker")

TICK = 0.05  # how often the dispatcher looks at deadlines when nothing else wakes it
# How often an idle child checks that its worker is alive. Children inherit the parent ends of the
# pipes forked before them, so a killed worker's children never see end-of-file.
PARENT_CHECK = 1.0


def _child_main(queue: Queue, conn: Connection) -> None:
    """Run the jobs the parent sends until it sends None or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    cancel = threading.Event()
    signal.signal(signal.SIGUSR1, lambda signum, frame: cancel.set())
    queue.reconnect()
    parent = os.getppid()
    while True:
        try:
            if not conn.poll(PARENT_CHECK):
                if os.getppid() != parent:
                    return  # the worker was killed (kill -9): no job will come, and no EOF either
                continue
            record = conn.recv()
        except (EOFError, OSError):
            return
        if record is None:
            return
        cancel.clear()  # the parent signals only while this child runs the job it cancels
        started = time.monotonic()
        try:
            outcome = run_attempt(queue, record, started, cancel=cancel)
        except BaseException as exc:  # the worker's own error: still an attempt to record, not a dead child
            logger.exception("job %s %s: unexpected worker error", record.id, record.task_name)
            outcome = lost_attempt(queue, record, exc, time.monotonic() - started)
        try:
            conn.send(outcome)
        except (BrokenPipeError, OSError):
            return


@dataclass
class Child:
    process: Any
    conn: Connection
    job: Running | None = None
    signalled: bool = False  # its job's cancellation was passed on (SIGUSR1)


class ProcessPool(JobPool):
    """Runs jobs in ``concurrency`` forked child processes, one job each at a time."""

    def __init__(self, queue: Queue, writer: CompletionWriter, concurrency: int, prefetch: int) -> None:
        super().__init__(queue, writer, concurrency, prefetch)
        self._context = multiprocessing.get_context("fork")
        self._children: list[Child] = []
        self._wake_reader, self._wake_writer = self._context.Pipe(duplex=False)
        self._stopping = threading.Event()
        self._dispatcher = threading.Thread(target=self._dispatch, name="taskito-prefork", daemon=True)

    def start(self) -> None:
        self._children = [self._fork() for _ in range(self.concurrency)]
        self._dispatcher.start()

    def _fork(self) -> Child:
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(target=_child_main, args=(self.queue, child_end),
                                        name="taskito-child")  # not daemonic: tasks may start processes
        process.start()
        child_end.close()
        return Child(process, parent_end)

    def _wake(self) -> None:
        self._wake_writer.send_bytes(b"")

    def close(self) -> None:
        """Stop the dispatcher, let idle children exit and kill any still running a job."""
        self._stopping.set()
        self._wake()
        self._dispatcher.join(5)
        for child in self._children:
            if child.job is None:
                try:
                    child.conn.send(None)
                except OSError:
                    pass
        deadline = time.monotonic() + 5
        for child in self._children:
            child.process.join(max(0.0, deadline - time.monotonic()))
            if child.process.is_alive():
                child.process.kill()
                child.process.join(5)

    def abandon_all(self) -> list[JobRecord]:
        self._stopping.set()  # no fresh children for the ones killed below
        records = super().abandon_all()
        for child in self._children:
            if child.job is not None:
                child.process.kill()
        return records

    # -- the dispatcher thread ---------------------------------------------------------------
    def _dispatch(self) -> None:
        while not self._stopping.is_set():
            try:
                self._collect(self._assign())
                self._enforce_deadlines()
            except Exception:
                logger.exception("prefork dispatcher error; carrying on")
                time.sleep(TICK)

    def _assign(self) -> float:
        """Give waiting jobs to idle children; return how long the dispatcher may sleep."""
        with self._cond:
            for child in self._children:
                if child.job is None and child.process.is_alive():
                    record, token_wait = self._next_job()
                    if record is None:
                        return TICK if token_wait is None else min(TICK, token_wait)
                    child.job = self._begin(record)
                    child.conn.send(record)
        return TICK

    def _collect(self, timeout: float) -> None:
        busy = {child.conn: child for child in self._children if child.job is not None}
        sentinels = {child.process.sentinel: child for child in self._children if child.job is None}
        ready = wait([self._wake_reader, *busy, *sentinels], timeout=timeout)
        for item in ready:
            if item is self._wake_reader:
                while self._wake_reader.poll():
                    self._wake_reader.recv_bytes()
            elif item in busy:
                child = busy[item]
                try:
                    outcome: Outcome | None = child.conn.recv()
                except (EOFError, OSError):
                    outcome = None
                self._finish(child, outcome)
            else:
                self._replace(sentinels[item])

    def _finish(self, child: Child, outcome: Outcome | None) -> None:
        entry = child.job
        assert entry is not None
        if outcome is None:  # the child died in the middle of the job
            child.process.join(1)
            code = child.process.exitcode
            outcome = lost_attempt(self.queue, entry.record,
                                   WorkerLostError(f"the process running this job died (exit code {code})"),
                                   time.monotonic() - entry.started)
            self._replace(child)
        self._settle(child, entry, outcome)

    def _stop_running(self, entry: Running) -> None:
        """The dispatcher passes the request on to the child (it alone knows which job each child runs)."""
        self._wake()

    def _pass_on_cancels(self) -> None:
        """Signal the children of cancelled jobs (SIGUSR1), and kill those still running past the grace."""
        now = time.monotonic()
        for child in self._children:
            entry = child.job
            if entry is None or not entry.cancel.is_set():
                continue
            if not child.signalled:
                child.signalled = True
                with suppress(ProcessLookupError):
                    os.kill(child.process.pid, signal.SIGUSR1)
            elif entry.kill_at is not None and now > entry.kill_at:
                logger.warning("job %s %s was cancelled and still ran %gs later: killing its process %s",
                               entry.record.id, entry.record.task_name, self.queue.cancel_grace, child.process.pid)
                child.process.kill()
                child.process.join(5)
                self._replace(child)
                self._settle(child, entry, lost_attempt(self.queue, entry.record, TaskCancelledError(
                    f"killed {self.queue.cancel_grace:g}s after its cancellation"), now - entry.started))

    def _enforce_deadlines(self) -> None:
        self._pass_on_cancels()
        now = time.monotonic()
        for child in self._children:
            entry = child.job
            if entry is not None and entry.deadline is not None and now > entry.deadline:
                logger.warning("job %s %s passed its %gs timeout: killing its process %s", entry.record.id,
                               entry.record.task_name, entry.record.timeout, child.process.pid)
                child.process.kill()
                child.process.join(5)
                self._replace(child)
                self._settle(child, entry, timed_out(self.queue, entry.record, now - entry.started))

    def _replace(self, child: Child) -> None:
        """Fork a fresh child in the place of one that died or was killed."""
        child.conn.close()
        if self._stopping.is_set():
            return
        fresh = self._fork()
        child.process, child.conn = fresh.process, fresh.conn

    def _settle(self, child: Child, entry: Running, outcome: Outcome) -> None:
        child.job = None
        child.signalled = False
        with self._cond:
            del self._running[entry.key]
            if entry.abandoned:
                return
            self._release(time.monotonic() - entry.started)
        record_outcome(self.queue, self.writer, entry.record, outcome, cancelled=entry.cancel.is_set())
