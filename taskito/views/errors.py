"""What every view answers: a ``(status, body)`` reply, and errors as ``{"error": message, **fields}``."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("taskito.views")

Reply = tuple[int, dict[str, Any]]


class ViewError(Exception):
    """Raised by a view to answer HTTP ``code`` with ``{"error": message, **fields}``; ``call`` turns it into
    a reply. (``fields`` may hold a ``status``: the job's.)"""

    def __init__(self, code: int, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields

    @property
    def reply(self) -> Reply:
        return self.code, {"error": self.message, **self.fields}


def error(code: int, message: str, **fields: Any) -> Reply:
    """The one error shape, for adapters that answer an error themselves (authorization, unknown paths)."""
    return ViewError(code, message, **fields).reply


def unavailable(what: str, exc: Exception) -> Reply:
    """503 for the open endpoints that load balancers read: no database details, which go to the log."""
    logger.warning("taskito %s failed: %s", what, exc)
    return error(503, "the taskito database is unavailable", status="unavailable")
