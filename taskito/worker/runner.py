"""Worker: the claim loop and its lifecycle (start, graceful drain, put back, stop)."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import validation
from ..exceptions import ConfigurationError
from ..middleware import emit
from ..storage.base import RATE_HORIZON
from .async_pool import AsyncPool, MixedPool
from .cancellation import CancelWatcher
from .completions import CompletionWriter
from .maintenance import Maintenance
from .pool import JobPool
from .process_pool import ProcessPool
from .scheduler import Scheduler
from .signals import StopSignals
from .thread_pool import ThreadPool

if TYPE_CHECKING:
    from ..queue import Queue

logger = logging.getLogger("taskito.worker")

IDLE_WAIT = 0.2  # longest the loop sleeps: hard timeouts, expired and rate-limited waiting jobs
IDLE_CLAIM = 5.0  # longest an idle worker goes without a claim when nothing announces work (a safety net)
PREFETCH = 16


class Worker:
    """One worker process's engine. ``Queue.run_worker`` builds and runs it."""

    def __init__(self, queue: Queue, queues: Sequence[str] | None = None, concurrency: int | None = None,
                 pool: str = "thread", burst: bool = False, max_tasks: int | None = None,
                 async_concurrency: int | None = None) -> None:
        pools = {"thread": ThreadPool, "prefork": ProcessPool}
        if pool not in pools:
            raise ConfigurationError(f"unknown pool {pool!r}: use 'thread' (default) or 'prefork'")
        concurrency = validation.concurrency("concurrency", concurrency)
        async_concurrency = validation.concurrency("async_concurrency", async_concurrency)
        max_tasks = validation.count("max_tasks", max_tasks, minimum=1)
        self.queue = queue
        self.storage = queue.storage
        # Each once: a claim takes up to its limit from each queue named.
        self.queues = list(dict.fromkeys(validation.name("queue", name) for name in queues)) if queues \
            else queue.default_queues()
        self.concurrency = concurrency or queue.concurrency
        self.burst = burst
        self.max_tasks = max_tasks
        self._claimed = 0  # jobs claimed and not put back: with max_tasks, no more are ever claimed
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        # The worker command's, installed before start-up: a signal that came meanwhile is not lost.
        self.signals = StopSignals.for_worker()
        self._stop = self.signals.stop
        self._force = self.signals.force
        self.writer = CompletionWriter(self.storage)
        self.pool: JobPool | MixedPool = pools[pool](queue, self.writer, self.concurrency, prefetch=PREFETCH)
        runs = f"{self.concurrency} {'threads' if pool == 'thread' else 'child processes'}"
        self.async_concurrency = async_concurrency or queue.async_concurrency
        if any(task.is_async for task in queue.tasks.values()):  # async def tasks: an event loop beside the pool
            prefetch = max(PREFETCH, self.async_concurrency // 2)  # claims of many short coroutines come in big batches
            self.pool = MixedPool(self.pool, AsyncPool(queue, self.writer, self.async_concurrency, prefetch,
                                                       beside=self.pool))
            runs += f" and an event loop for {self.async_concurrency} coroutines"
        self._runs = runs
        self.maintenance = Maintenance(queue, self.id, self.pool.held_ids)
        self.cancels = CancelWatcher(queue, self.id, self.pool)
        # Cluster-wide rate limits of the tasks this worker runs: each claim takes time slots from the database.
        self.rate_limits = {name: task.options.rate_limit for name, task in queue.tasks.items()
                            if task.options.rate_limit}
        self.scheduler = Scheduler(queue)

    def request_stop(self, force: bool = False) -> None:
        """Stop claiming and drain; with ``force``, stop waiting for running jobs too."""
        self._stop.set()
        if force:
            self._force.set()

    def run(self) -> None:
        with self.signals.running(self.queue.drain_timeout):
            if self._stop.is_set():  # asked to stop before it started: never registered, nothing claimed
                logger.info("worker %s stopped before it started", self.id)
                return
            self._run()

    def _run(self) -> None:
        self.storage.register_worker(self.id, {"hostname": socket.gethostname(), "pid": os.getpid(),
                                               "queues": self.queues, "concurrency": self.concurrency})
        self.pool.start()  # first: a prefork pool forks best while no other thread runs
        self.writer.start()
        self.maintenance.start()
        self.cancels.start()
        self.scheduler.start()
        logger.info("worker %s started: queues %s, %s, %r", self.id, ",".join(self.queues), self._runs, self.queue)
        emit(self.queue.registry, "worker.started", worker_id=self.id, hostname=socket.gethostname(),
             pid=os.getpid(), queues=list(self.queues))
        try:
            self._loop()
        finally:
            self._drain()

    def _loop(self) -> None:
        """Claim while there is room and work may be there, else sleep until work is announced.

        An idle worker claims when the engine announces work (a commit on SQLite, a NOTIFY on
        PostgreSQL), when its alarm rings (a delayed job or an expiry falls due: see
        ``Storage.next_due``), or at the latest every IDLE_CLAIM seconds; the loop itself wakes
        every IDLE_WAIT seconds for the pool's timeouts and waiting jobs, without a claim.
        """
        failures = 0
        settled = False  # burst: completions written since the last empty claim
        work_announced = True  # or the last claim was full: claim as soon as there is room
        alarm = 0.0  # time.time() at which to claim even if nothing is announced
        while not self._stop.is_set():
            self.pool.check_timeouts()
            # Back to pending: the next claim cancels them as expired (and their dependents).
            expired = self.pool.take_expired()
            self._put_back([record.id for record in expired])
            self._claimed -= len(expired)
            free = self.pool.wanted()
            if self.max_tasks is not None:
                free = min(free, self.max_tasks - self._claimed)
                if free <= 0:
                    if self.pool.wait_idle(0.05):
                        logger.info("ran %d jobs (max_tasks): worker stopping", self._claimed)
                        return
                    continue
            if free <= 0:
                self.pool.wait_for_room(0.05)
                continue
            if not work_announced and time.time() < alarm:
                work_announced = self.storage.wait_for_work(min(IDLE_WAIT, alarm - time.time()))
                continue
            try:
                jobs = self.storage.claim(self.id, self.queues, free, self.queue.lease_seconds, self.rate_limits)
                self._claimed += len(jobs)
                self.pool.submit(jobs)
                if len(jobs) < free:
                    alarm = self._alarm()
                if failures:
                    logger.warning("database reachable again; claiming resumed")
                failures = 0
            except Exception as exc:
                failures += 1
                delay = min(0.1 * 2 ** failures, 10.0)
                logger.error("cannot claim jobs (%s); retrying in %.1fs", exc, delay)
                self._stop.wait(delay)
                continue
            if self.burst and not jobs and self.pool.wait_idle(0):
                if settled:
                    logger.info("no job is due: burst worker stopping")
                    return
                # Written completions may release dependents: claim once more before stopping.
                self.writer.flush()
                settled = True
                continue
            settled = False
            work_announced = len(jobs) >= free or self.storage.wait_for_work(
                max(min(IDLE_WAIT, alarm - time.time()), 0))

    def _alarm(self) -> float:
        """When an idle worker claims again if no work is announced meanwhile."""
        if self.burst:  # short-lived: it polls, as the completions of its last jobs announce nothing
            return time.time() + IDLE_WAIT
        try:
            due = self.storage.next_due(self.queues)
        except Exception as exc:  # the next claim meets the problem too, and reports it
            logger.debug("cannot read when the next delayed job is due (%s); polling", exc)
            return time.time() + IDLE_WAIT
        safety_net = time.time() + (RATE_HORIZON / 2 if self.rate_limits else IDLE_CLAIM)  # slots free up with time
        return safety_net if due is None else min(due, safety_net)

    def _drain(self) -> None:
        unstarted = self.pool.take_unstarted()
        self._put_back([record.id for record in unstarted])
        deadline = time.monotonic() + self.queue.drain_timeout
        while not self._force.is_set():
            remaining = deadline - time.monotonic()
            if self.pool.wait_idle(min(0.1, max(remaining, 0))) or remaining <= 0:
                break
            self.pool.check_timeouts()
        leftover = self.pool.abandon_all()
        self.writer.stop(timeout=10)
        if leftover:
            logger.warning("putting %d unfinished job(s) back for another worker", len(leftover))
        self._put_back([record.id for record in leftover])
        self.pool.close()
        self.scheduler.stop()
        self.cancels.stop()
        self.maintenance.stop()
        try:
            self.storage.unregister_worker(self.id)
        except Exception as exc:
            logger.warning("could not unregister worker %s: %s", self.id, exc)
        logger.info("worker %s stopped", self.id)
        emit(self.queue.registry, "worker.stopped", worker_id=self.id, hostname=socket.gethostname(),
             pid=os.getpid(), queues=list(self.queues))

    def _put_back(self, job_ids: list[str]) -> None:
        if not job_ids:
            return
        try:
            self.storage.requeue(self.id, job_ids)
        except Exception as exc:
            logger.error("could not put %d job(s) back (%s); their leases will return them", len(job_ids), exc)
