"""Enqueue periodic tasks on their cron ticks; the database decides who fires each tick."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from ..middleware import emit
from ..schedule import next_run
from ..storage import NewJob, new_job_id

if TYPE_CHECKING:
    from ..queue import Queue

logger = logging.getLogger("taskito.scheduler")

TICK = 0.25


class Scheduler:
    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.storage = queue.storage
        self._stop = threading.Event()
        self._undeclared: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="taskito-scheduler", daemon=True)

    def start(self) -> None:
        if not self.queue.periodic_tasks:
            return
        self.queue.register_schedules()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(TICK):
            try:
                self.fire_due()
            except Exception as exc:
                logger.warning("periodic scheduling failed (%s); retrying", exc)

    def fire_due(self) -> None:
        now = time.time()
        declared = {spec.name: spec for spec in self.queue.periodic_tasks}
        for due in self.storage.due_periodic(now):
            if due.name not in declared:
                # Removed from the code (or declared only by other deployments): not this worker's to fire.
                if due.name not in self._undeclared:
                    self._undeclared.add(due.name)
                    logger.info("periodic %s is in the database but not declared here: not firing it", due.name)
                continue
            task = self.queue.tasks[declared[due.name].task_name]
            job = NewJob(**{**task.job_defaults(), "queue": due.queue},
                         id=new_job_id(), task_name=due.task_name, payload=due.payload)
            # Ticks missed while no worker ran are fired once, then the schedule moves on.
            upcoming = next_run(due.cron, due.timezone, after=max(now, due.next_run_at))
            if self.storage.fire_periodic(due.name, due.next_run_at, upcoming, job):
                logger.info("periodic %s enqueued job %s", due.name, job.id)
                emit(self.queue.registry, "job.enqueued", job_id=job.id, task_name=job.task_name, queue=job.queue,
                     periodic=due.name)
