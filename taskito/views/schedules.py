"""Schedule views: every periodic schedule, pausing, resuming and running one now."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..exceptions import JobNotFoundError
from . import params as p
from .errors import Reply, ViewError

if TYPE_CHECKING:
    from ..queue import Queue


def schedules(queue: Queue, params: p.Params) -> Reply:
    """Name, task, cron, timezone, queue, last and next run, paused, and whether this process declares it."""
    return 200, {"schedules": queue.periodic_schedules()}


def _on(name: str, action: Callable[[str], Any]) -> Any:
    try:
        return action(p.name(name, "schedule name"))
    except JobNotFoundError as exc:
        raise ViewError(404, str(exc)) from None


def pause_schedule(queue: Queue, params: p.Params, name: str) -> Reply:
    """Stop firing it on every worker until resumed (kept across restarts and deploys)."""
    _on(name, queue.pause_periodic)
    return 200, {"name": name, "paused": True}


def resume_schedule(queue: Queue, params: p.Params, name: str) -> Reply:
    """Fire it again from its next tick."""
    _on(name, queue.resume_periodic)
    return 200, {"name": name, "paused": False}


def run_schedule(queue: Queue, params: p.Params, name: str) -> Reply:
    """Enqueue one job of it now, out of turn."""
    return 200, {"name": name, "job_id": _on(name, queue.run_periodic_now).id}
