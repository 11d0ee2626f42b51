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
    """Every known queue with its counts; when its oldest due job became due (``oldest_due_at``, a UNIX
    time: its age is the caller's clock minus that, so that the answer does not change while it waits) and,
    over the last ``since`` seconds, its jobs' ``wait`` (p50, p95), ``completed_recently`` and
    ``failure_rate`` (``Queue.queue_stats``)."""
    window = p.since(params)
    figures = queue.queue_stats(since=window)
    rows = queue_rows(queue)
    for row in rows:
        found = figures.get(row["name"], {})
        row.update(oldest_due_at=found.get("oldest_due_at"), wait=found.get("wait"),
                   completed_recently=found.get("completed", 0), failure_rate=found.get("failure_rate", 0.0))
    return 200, {"queues": rows, "since": window}


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
