"""Views of what runs the jobs: live workers, registered tasks (and revoking one's waiting jobs), throughput."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from ..storage import Status
from . import params as p
from .errors import Reply, ViewError

if TYPE_CHECKING:
    from ..queue import Queue

MAX_POINTS = 1440
MAX_WINDOW = 7 * 86400  # what the task minutes keep by default (TASKITO_METRICS_RETENTION)


def workers(queue: Queue, params: p.Params) -> Reply:
    """Live workers from their heartbeats, each with the jobs it runs now (``jobs``), and the server's
    clock to judge them by."""
    found = queue.workers()
    running: dict[str, list[dict[str, Any]]] = {}
    for job in queue.list_jobs(status=Status.RUNNING, limit=p.MAX_LIMIT):
        record = job.record
        if record.worker_id:
            running.setdefault(record.worker_id, []).append(
                {"id": record.id, "task_name": record.task_name, "started_at": record.started_at})
    for worker in found:
        worker["jobs"] = running.get(worker["id"], [])
    return 200, {"workers": found, "now": time.time()}


def tasks(queue: Queue, params: p.Params) -> Reply:
    """Task names (registered here, or seen in the last ``since`` seconds: for a task filter), and per
    task its figures over that window (``Queue.task_stats``) in ``stats``, failing and slow ones first."""
    window = p.since(params)
    stats = queue.task_stats(since=window)
    ranked = sorted(stats.items(), key=lambda item: (-item[1]["failure_rate"], -(item[1]["runtime"]["p95"] or 0),
                                                     item[0]))
    return 200, {"tasks": sorted(set(queue.tasks) | set(stats)), "since": window,
                 "stats": [{"task_name": name, **figures} for name, figures in ranked]}


def task_series(queue: Queue, params: p.Params) -> Reply:
    """Attempts per ``step`` seconds over the last ``since`` seconds, per task and outcome (charts of 1 h,
    24 h, 7 d): ``points`` oldest first, each ``{"t", "tasks": {name: {outcome: n, "runtime_sum"}}}``."""
    window = p.since(params)
    step = p.integer(params, "step", 60, 60, 86400)
    if window // step > MAX_POINTS:
        raise ViewError(400, f"since/step gives {window // step} points; at most {MAX_POINTS} (take a larger step)")
    found = queue.task_series(since=window, step=step)
    start = (time.time() - window) // 60 * 60  # as Queue.task_series counts its buckets: from a whole minute
    count = math.ceil((time.time() - start) / step)
    return 200, {"since": window, "step": step,
                 "points": [{"t": start + index * step, "tasks": found.get(index, {})} for index in range(count)]}


def revoke_task(queue: Queue, params: p.Params, name: str) -> Reply:
    """Cancel every waiting job of the task (and their dependents); running ones go on, later ones run."""
    return 200, {"task": name, "cancelled": queue.revoke_task(p.name(name, "task name"))}


def throughput(queue: Queue, params: p.Params) -> Reply:
    """Completed jobs, dead jobs and failed attempts per ``step`` seconds over the last ``window`` (up to 7 d).

    Steps of whole minutes are read from the task minutes (``Queue.task_series``: cheap at any table size,
    and they survive purges); shorter steps, for the live view of the last hour at most, from the jobs
    and their errors (``Queue.throughput``)."""
    step = p.integer(params, "step", 10, 1, 86400)
    window = p.integer(params, "window", 600, step, MAX_WINDOW)
    if step % 60 and window > 3600:
        raise ViewError(400, f"window {window} needs a step of whole minutes (60, 120, ...), got {step}: ranges "
                             "longer than an hour are read from the per-minute task metrics")
    count = min(math.ceil(window / step), MAX_POINTS)
    now = time.time()
    end = (math.floor(now / step) + 1) * step  # the last bucket holds "now" and is still filling
    since = end - count * step
    if step % 60:
        found = queue.throughput(since, step)
    else:
        found = {bucket: _attempts(tasks) for bucket, tasks in queue.task_series(since=now - since, step=step).items()}
    points = []
    for index in range(count):
        values = found.get(index, {})
        points.append({"t": since + index * step, "completed": values.get("completed", 0),
                       "dead": values.get("dead", 0), "failed": values.get("failed", 0)})
    return 200, {"step": step, "window": count * step, "now": now, "points": points}


def _attempts(tasks: dict[str, dict[str, Any]]) -> dict[str, int]:
    """One bucket of task minutes as throughput counts it: failed attempts include those that died."""
    completed = sum(entry["complete"] for entry in tasks.values())
    dead = sum(entry["dead"] for entry in tasks.values())
    return {"completed": completed, "dead": dead, "failed": dead + sum(entry["failed"] for entry in tasks.values())}
