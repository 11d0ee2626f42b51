"""Write successful attempts in batches: one transaction for everything finished meanwhile.

Batching is what lets one worker complete thousands of jobs per second on SQLite;
when the worker is idle a batch is a single job, so latency does not suffer.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from ..storage import Completion, Storage

logger = logging.getLogger("taskito.worker")

_STOP = object()
MAX_BATCH = 1000


class CompletionWriter:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._unwritten = 0
        self._written = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="taskito-completions", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, completion: Completion) -> None:
        with self._written:
            self._unwritten += 1
        self._inbox.put(completion)

    def flush(self) -> None:
        """Wait until every completion added so far is in the database."""
        with self._written:
            self._written.wait_for(lambda: self._unwritten == 0)

    def stop(self, timeout: float) -> None:
        """Write everything queued so far, then stop."""
        self._inbox.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.error("could not write all completions within %.0fs; their jobs will run again", timeout)

    def _run(self) -> None:
        while True:
            item = self._inbox.get()
            stopping = item is _STOP
            batch = [] if stopping else [item]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                else:
                    batch.append(item)
            if batch:
                self._write(batch)  # type: ignore[arg-type]
            if stopping:
                return

    def _write(self, batch: list[Completion]) -> None:
        backoff = 0.05
        while True:
            try:
                self.storage.complete(batch)
                with self._written:
                    self._unwritten -= len(batch)
                    self._written.notify_all()
                return
            except Exception as exc:
                logger.warning("cannot record %d completed job(s), retrying in %.1fs: %s", len(batch), backoff, exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
