"""Checkpoints of a SQLite database's WAL, taken by a thread of the worker process.

Left to itself, SQLite checkpoints inside the commit that takes the WAL past ``wal_autocheckpoint``
pages: that enqueue, claim or completion then waits for the copy into the database and two
fdatasyncs (15 ms on a slow disk, more for a larger WAL). A worker process runs a ``Checkpointer``
instead, which backfills the WAL every ``CHECKPOINT_EVERY`` seconds beside the work; the connections'
own threshold stays as a backstop for processes that run no worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger("taskito.storage.sqlite")

# Seconds between two checkpoints of a worker process: from a few frames (round trips on an idle worker) to a
# few thousand (a drain) each time here, below the connections' backstop of 40 MB.
CHECKPOINT_EVERY = 0.1


class Checkpointer:
    """Calls ``checkpoint`` every CHECKPOINT_EVERY seconds on a daemon thread, from ``start`` to ``stop``."""

    def __init__(self, checkpoint: Callable[[], object]) -> None:
        self._checkpoint = checkpoint
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="taskito-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5)

    def _run(self) -> None:
        failing = False
        while not self._stopped.wait(CHECKPOINT_EVERY):
            try:
                self._checkpoint()
            except Exception as exc:  # the database went away for now: the commits' backstop still holds
                if not failing:
                    logger.warning("could not checkpoint the WAL (%s); trying again every %gs", exc, CHECKPOINT_EVERY)
                failing = True
            else:
                if failing:
                    logger.info("WAL checkpoints resumed")
                failing = False
