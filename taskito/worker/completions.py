"""Write successful attempts in batches: one transaction for everything finished meanwhile.

Batching is what lets one worker complete thousands of jobs per second on SQLite;
when the worker is idle a batch is a single job, so latency does not suffer.

The same thread records when jobs start (claimed -> running). A start mark waits
``START_MARK_DELAY`` seconds and is dropped if its job completes meanwhile (the completion
carries the start), so short jobs cost no extra write and no wake-up of this thread; longer ones
show as running within about twice that delay, with the exact time their function started.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from ..storage import Completion, Started, Storage

logger = logging.getLogger("taskito.worker")

_STOP = object()
MAX_BATCH = 1000
START_MARK_DELAY = 0.05  # seconds a start mark waits; also how often the thread looks for due ones
START_MARK_RETRY = 1.0  # seconds before start marks that could not be written are tried again


class CompletionWriter:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._unwritten = 0
        self._written = threading.Condition()  # also guards _marks
        # Start marks not written yet: (job id, attempt) -> (monotonic time it is due, wall-clock start).
        # In insertion order, so the first one is due first.
        self._marks: dict[tuple[str, int], tuple[float, float]] = {}
        self._thread = threading.Thread(target=self._run, name="taskito-completions", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def started(self, job_id: str, attempt: int, started_at: float) -> None:
        """An attempt's function starts at ``started_at`` (wall clock): mark the job running soon."""
        with self._written:
            self._marks[(job_id, attempt)] = (time.monotonic() + START_MARK_DELAY, started_at)

    def add(self, completion: Completion) -> None:
        with self._written:
            self._unwritten += 1
            self._marks.pop((completion.job_id, completion.attempt), None)  # the completion carries the start
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
            try:
                item = self._inbox.get(timeout=self._until_marks_due())
            except queue.Empty:
                item = None
            batch: list[Completion] = []
            stopping = False
            while item is not None:
                if item is _STOP:
                    stopping = True
                else:
                    assert isinstance(item, Completion)
                    batch.append(item)
                    if len(batch) >= MAX_BATCH:
                        break
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    item = None
            if batch:
                self._write(batch)
            if stopping:
                return  # jobs still running are put back by the worker: their marks do not matter
            self._write_due_marks()

    def _until_marks_due(self) -> float:
        """Seconds until the oldest start mark is due; with none waiting, when to look again."""
        with self._written:
            if not self._marks:
                return START_MARK_DELAY
            due, _ = next(iter(self._marks.values()))
        return max(0.0, due - time.monotonic())

    def _write_due_marks(self) -> None:
        """Once the oldest start mark is due, write every waiting one: at most one write per START_MARK_DELAY."""
        with self._written:
            if not self._marks or next(iter(self._marks.values()))[0] > time.monotonic():
                return
            marks, self._marks = self._marks, {}
        try:
            self.storage.start([Started(job_id, attempt, started_at)
                                for (job_id, attempt), (_, started_at) in marks.items()])
        except Exception as exc:
            logger.warning("cannot mark %d started job(s) as running, retrying in %.0fs: %s",
                           len(marks), START_MARK_RETRY, exc)
            retry = time.monotonic() + START_MARK_RETRY
            with self._written:  # a late mark of a job completed meanwhile is harmless: marks are fenced
                for key, (_, started_at) in marks.items():
                    self._marks.setdefault(key, (retry, started_at))

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
