"""Views of what runs the jobs: live workers, registered tasks (and revoking one's waiting jobs), throughput."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from . import params as p
from .errors import Reply

if TYPE_CHECKING:
    from ..queue import Queue

MAX_POINTS = 1440


def workers(queue: Queue, params: p.Params) -> Reply:
    """Live workers from their heartbeats, with the server's clock to judge them by."""
    return 200, {"workers": queue.workers(), "now": time.time()}


def tasks(queue: Queue, params: p.Params) -> Reply:
    """Task names this process knows (for a task filter); jobs may name others."""
    return 200, {"tasks": sorted(queue.tasks)}


def revoke_task(queue: Queue, params: p.Params, name: str) -> Reply:
    """Cancel every waiting job of the task (and their dependents); running ones go on, later ones run."""
    return 200, {"task": name, "cancelled": queue.revoke_task(p.name(name, "task name"))}


def throughput(queue: Queue, params: p.Params) -> Reply:
    """Completed jobs, dead jobs and failed attempts per ``step`` seconds over the last ``window``."""
    step = p.integer(params, "step", 10, 1, 3600)
    window = p.integer(params, "window", 600, step, 86400)
    count = min(math.ceil(window / step), MAX_POINTS)
    now = time.time()
    end = (math.floor(now / step) + 1) * step  # the last bucket holds "now" and is still filling
    since = end - count * step
    found = queue.throughput(since, step)
    points = []
    for index in range(count):
        values = found.get(index, {})
        points.append({"t": since + index * step, "completed": values.get("completed", 0),
                       "dead": values.get("dead", 0), "failed": values.get("failed", 0)})
    return 200, {"step": step, "window": count * step, "now": now, "points": points}
