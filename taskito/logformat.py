"""Log lines for people (text) or for log shippers (one JSON object per line: ``--log-format json``).

The lines are written to stderr by a thread of their own, in batches at most WRITE_EVERY seconds after
they are logged: a worker's job threads only hand each record over. Written by the job thread itself, each
line (one per job) was a write() that gave up the GIL, and every thread woken per line had to get it back:
that cost 30-40 % of a no-op drain.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import threading
from datetime import datetime, timezone
from logging.handlers import QueueHandler
from typing import Any

from .context import active

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message"}``, plus ``job_id`` and ``task_name`` for a line logged
    inside a job (or about one: the worker's own lines pass them as ``extra``), and ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        job_id = getattr(record, "job_id", None)
        task_name = getattr(record, "task_name", None)
        if job_id is None:
            context = active()
            if context is not None:
                job_id, task_name = context.id, context.task_name
        if job_id is not None:
            entry["job_id"] = job_id
            entry["task_name"] = task_name
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


class _HandOver(QueueHandler):
    """Hands a record to the writing thread with what only the logging thread knows settled: the message
    merged with its arguments (which the job may change next), the traceback as text, the active job."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record.msg = record.getMessage()
        record.args = None
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = _TRACEBACKS.formatException(record.exc_info)
            record.exc_info = None
        if getattr(record, "job_id", None) is None:
            context = active()
            if context is not None:
                record.job_id, record.task_name = context.id, context.task_name
        return record


class _Writer:
    """Writes the records handed over to it: it sleeps until the first comes, gathers for WRITE_EVERY
    seconds, writes them all, and so on (a line is written at most that late; at exit, all of them)."""

    def __init__(self, handler: logging.StreamHandler[Any]) -> None:
        self.handler = handler
        self.records: queue.SimpleQueue[logging.LogRecord | None] = queue.SimpleQueue()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="taskito-log-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.is_set():
            first = self.records.get()
            self._stopped.wait(WRITE_EVERY)
            self._write(first)

    def _write(self, record: logging.LogRecord | None) -> None:
        """Write ``record`` and every record waiting behind it, in one write(): each call gives up the GIL,
        and getting it back from busy threads is what costs."""
        lines = []
        while True:
            if record is not None:
                try:
                    lines.append(self.handler.format(record) + self.handler.terminator)
                except Exception:
                    self.handler.handleError(record)
            try:
                record = self.records.get_nowait()
            except queue.Empty:
                break
        if lines:
            self.handler.acquire()
            try:
                self.handler.stream.write("".join(lines))
                self.handler.flush()
            finally:
                self.handler.release()

    def stop(self) -> None:
        self._stopped.set()
        self.records.put(None)  # wakes a writer waiting for a first record
        self._thread.join(5)
        self._write(None)  # what was logged while it stopped


# Seconds a log line may wait to be written with others.
WRITE_EVERY = 0.02
_TRACEBACKS = logging.Formatter()
_writer: _Writer | None = None


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Send log lines of ``level`` and above to stderr in ``log_format``; replaces an earlier setup."""
    global _writer
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    _stop_writer()
    _writer = _Writer(handler)
    logging.basicConfig(level=level.upper(), handlers=[_HandOver(_writer.records)], force=True)


def _stop_writer() -> None:
    """Write what is still handed over, then stop the writing thread (at exit too)."""
    global _writer
    if _writer is not None:
        _writer.stop()
        _writer = None


def _write_directly_after_fork() -> None:
    """A forked child (``--pool prefork``) has no writing thread, and leaves with os._exit: it writes its
    lines itself."""
    global _writer
    if _writer is None:
        return
    handler = _writer.handler
    _writer = None
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _HandOver)]:
        root.removeHandler(old)
        root.addHandler(handler)


atexit.register(_stop_writer)
os.register_at_fork(after_in_child=_write_directly_after_fork)
