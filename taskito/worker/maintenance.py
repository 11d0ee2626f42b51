"""Heartbeats, the reaper of dead workers' jobs, and result_ttl purging, on one thread."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..exceptions import WorkerLostError
from ..storage import Status
from .attempt import lost_attempt, record_cancelled, record_failure
from .retry import apply_task_defaults

if TYPE_CHECKING:
    from ..queue import Queue

logger = logging.getLogger("taskito.worker")

METRICS_INTERVAL = 60.0  # seconds between two upkeeps of the task minutes
RECENT_MINUTES = 600  # seconds of past minutes whose appended rows are merged (PostgreSQL)
HOURLY_AFTER = 2 * 3600  # minutes older than this are merged into hours (1 h charts keep their minutes)
HOURLY_WINDOW = 6 * 3600  # seconds of such minutes each upkeep looks at (a worker down longer leaves them be)

class Maintenance:
    def __init__(self, queue: Queue, worker_id: str, held: Callable[[], list[str]]) -> None:
        self.queue = queue
        self.held = held
        self.storage = queue.storage
        self.worker_id = worker_id
        self.interval = max(0.1, queue.lease_seconds / 3)
        ttl = queue.result_ttl
        self.purge_interval = None if ttl is None else min(max(ttl / 2, 0.5), 60.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="taskito-maintenance", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        last_purge = 0.0
        last_metrics = -METRICS_INTERVAL
        failures = 0
        while not self._stop.wait(self.interval if failures == 0 else min(self.interval * 2 ** failures, 10)):
            try:
                self.storage.heartbeat(self.worker_id, self.queue.lease_seconds, self.held())
                self.reap()
                if self.purge_interval is not None and time.monotonic() - last_purge >= self.purge_interval:
                    self.purge()
                    last_purge = time.monotonic()
                if time.monotonic() - last_metrics >= METRICS_INTERVAL:
                    self.tend_metrics()
                    last_metrics = time.monotonic()
                if failures:
                    logger.warning("database reachable again; heartbeats resumed")
                failures = 0
            except Exception as exc:
                failures += 1
                logger.warning("heartbeat failed (%s); retrying", exc)

    def reap(self) -> None:
        """Return the jobs of workers that died to the queue, as a failed attempt."""
        for record in self.storage.reap_expired_leases():
            apply_task_defaults(self.queue, record)
            if record.cancel_requested:  # cancelled while its worker died: it ends cancelled, never retried
                record_cancelled(self.queue, record, None, f"cancelled; its worker {record.worker_id} was lost")
                continue
            lost = WorkerLostError(f"worker {record.worker_id} stopped heart-beating (killed or crashed)")
            if record_failure(self.queue, record, lost_attempt(self.queue, record, lost, None)):
                logger.warning("job %s %s: its worker %s was lost", record.id, record.task_name, record.worker_id)

    def purge(self) -> None:
        ttl = self.queue.result_ttl
        assert ttl is not None
        removed = sum(self.storage.purge(status, ttl) for status in (Status.COMPLETE, Status.DEAD, Status.CANCELLED))
        if removed:
            logger.info("purged %d finished job(s) older than result_ttl=%gs", removed, ttl)

    def tend_metrics(self) -> None:
        """Keep the task minutes small: merge past minutes' rows (one per key), minutes older than two hours
        into hours (a week is then 166 hour rows and 120 minute rows per key), and drop those past
        TASKITO_METRICS_RETENTION."""
        now = time.time()
        minute = now // 60 * 60
        self.storage.merge_task_minutes(minute - RECENT_MINUTES, minute, 60)
        hour = (now - HOURLY_AFTER) // 3600 * 3600
        self.storage.merge_task_minutes(hour - HOURLY_WINDOW, hour, 3600)
        pruned = self.storage.prune_task_minutes(now - self.queue.metrics_retention)
        if pruned:
            logger.debug("pruned %d task-minute row(s) older than metrics_retention=%gs", pruned,
                         self.queue.metrics_retention)
