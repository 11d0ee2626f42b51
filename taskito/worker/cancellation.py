"""Cancelling running jobs: the worker looks for cancellation requests on the jobs it holds.

``queue.cancel_job()`` on a claimed or running job only marks it (``cancel_requested``): the
database is the coordinator, so a request reaches the worker holding the job on any host. This
thread asks for the requests on its worker's jobs every CANCEL_POLL seconds while it holds any
(one lookup in a partial index that holds only requested jobs), then the pool stops them: a
waiting job is cancelled at once, a running one is told (``current_job.cancelled``), an async one
has its coroutine cancelled, a prefork child is signalled and killed after ``cancel_grace``.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from .attempt import record_cancelled

if TYPE_CHECKING:
    from ..queue import Queue
    from .async_pool import MixedPool
    from .pool import JobPool

logger = logging.getLogger("taskito.worker")

CANCEL_POLL = 0.5  # seconds: a request reaches a running job within about this long


class CancelWatcher:
    def __init__(self, queue: Queue, worker_id: str, pool: JobPool | MixedPool) -> None:
        self.queue = queue
        self.worker_id = worker_id
        self.pool = pool
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="taskito-cancel", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(CANCEL_POLL):
            if not self.pool.held_ids():
                continue
            try:
                self.check()
            except Exception as exc:  # the next round asks again; the heartbeat reports a lost database
                logger.debug("cannot read cancellation requests (%s); asking again", exc)

    def check(self) -> None:
        requested = set(self.queue.storage.cancel_requests(self.worker_id))
        if not requested:
            return
        for record in self.pool.cancel(requested, self.queue.cancel_grace):
            record_cancelled(self.queue, record, None, "cancelled before it started")
