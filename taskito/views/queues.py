"""Queue views: counts per queue, one queue, pausing and resuming, purging its waiting jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..storage.base import empty_stats
from . import params as p
from .errors import Reply

if TYPE_CHECKING:
    from ..queue import Queue


def queue_rows(queue: Queue) -> list[dict[str, Any]]:
    """Every queue with jobs, every paused queue and every queue the registered tasks use, by name."""
    per_queue = queue.stats_all_queues()
    paused = set(queue.paused_queues())
    names = set(per_queue) | paused | set(queue.default_queues())
    return [{"name": name, "paused": name in paused, "stats": per_queue.get(name, empty_stats())}
            for name in sorted(names)]


def queues(queue: Queue, params: p.Params) -> Reply:
    return 200, {"queues": queue_rows(queue)}


def stats_by_queue(queue: Queue, params: p.Params) -> Reply:
    """Counts keyed by queue name, and the paused queues."""
    return 200, {"queues": queue.stats_all_queues(), "paused": queue.paused_queues()}


def queue_detail(queue: Queue, params: p.Params, name: str) -> Reply:
    name = p.name(name, "queue name")
    return 200, {"name": name, "paused": name in queue.paused_queues(), "stats": queue.stats_by_queue(name)}


def pause(queue: Queue, params: p.Params, name: str) -> Reply:
    queue.pause(p.name(name, "queue name"))
    return 200, {"name": name, "paused": True}


def resume(queue: Queue, params: p.Params, name: str) -> Reply:
    queue.resume(p.name(name, "queue name"))
    return 200, {"name": name, "paused": False}


def purge_queue(queue: Queue, params: p.Params, name: str) -> Reply:
    """Cancel every waiting job of the queue (and their dependents); running ones go on."""
    return 200, {"queue": name, "cancelled": queue.purge_queue(p.name(name, "queue name"))}
