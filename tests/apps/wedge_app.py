"""A worker app whose tasks and hooks raise BaseExceptions that are not Exceptions.

``taskito worker --app wedge_app:queue``: none of them may cost the worker one of its
threads (or child processes). Effects go to EFFECTS_DIR as in worker_app.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from effects import EFFECTS, effect

from taskito import Queue, current_job

queue = Queue()


class Abort(BaseException):
    """A library's own control-flow signal: a BaseException, not an Exception."""


RAISED: dict[str, type[BaseException]] = {
    "cancelled": asyncio.CancelledError,
    "generator_exit": GeneratorExit,
    "abort": Abort,
}



@queue.task(max_retries=1, retry_backoff=0.01)
def raises(kind: str) -> None:
    effect(f"ran {kind} {current_job.id}")
    raise RAISED[kind](f"{kind} from the task")


@queue.task()
def hooked(kind: str) -> str:
    """Succeeds; every hook around it raises RAISED[kind]."""
    return kind


@queue.task(max_retries=0)
def meet(count: int) -> int:
    """Wait until ``count`` meet jobs run at once: proves the worker has that many free slots."""
    (EFFECTS / f"meet-{current_job.id}").touch()
    deadline = time.monotonic() + 15
    while len(list(EFFECTS.glob("meet-*"))) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {count} jobs ran at once")
        time.sleep(0.02)
    return count


def _hook(kind: str) -> Any:
    def hook(task_name: str, args: list[Any], kwargs: dict[str, Any], *outcome: Any) -> None:
        if task_name == hooked.name:
            effect(f"{kind} hooked {args[0]}")
            raise RAISED[args[0]](f"{kind} hook")
        if task_name == raises.name and kind in ("after_task", "on_failure"):
            effect(f"{kind} {args[0]} {type(outcome[-1]).__name__}")
    return hook


for _kind in ("before_task", "after_task", "on_success", "on_failure"):
    getattr(queue, _kind)(_hook(_kind))
