"""The open views that load balancers and monitors read, and the dashboard's overview."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import params as p
from .errors import Reply, unavailable

if TYPE_CHECKING:
    from ..queue import Queue


def health(queue: Queue) -> Reply:
    """200 while the database answers; the live worker count is informational."""
    try:
        workers = queue.workers()
    except Exception as exc:
        return unavailable("health check", exc)
    return 200, {"status": "ok", "workers": len(workers)}


def stats(queue: Queue) -> Reply:
    """The six counts of ``Queue.stats()``, or 503."""
    try:
        return 200, queue.stats()
    except Exception as exc:
        return unavailable("stats", exc)


def overview(queue: Queue, params: p.Params) -> Reply:
    """Overall counts, counts per queue and the paused queues, in one answer."""
    return 200, {"stats": queue.stats(), "queues": queue.stats_all_queues(), "paused": queue.paused_queues()}
