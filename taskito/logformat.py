"""Log lines for people (text) or for log shippers (one JSON object per line: ``--log-format json``)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

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


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Send log lines of ``level`` and above to stderr in ``log_format``; replaces an earlier setup."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
