"""The app of the control tests: ``taskito worker --app control_app:queue``.

Jobs write what they did to files under EFFECTS_DIR: ``started-<id>`` when they start (with the
process id), and one line per run to ``spans.log`` (start and end times) or ``effects.log``.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from taskito import Queue, current_job

queue = Queue()
EFFECTS = Path(os.environ.get("EFFECTS_DIR", "."))


def append(name: str, line: str) -> None:
    # O_APPEND writes of one short line are atomic, even across processes.
    fd = os.open(EFFECTS / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def mark_started() -> None:
    (EFFECTS / f"started-{current_job.id}").write_text(str(os.getpid()))


@queue.task(timeout=120)
def cooperative() -> str:
    """Works until told it is cancelled, then returns early."""
    mark_started()
    while not current_job.cancelled:
        time.sleep(0.02)
    append("effects.log", f"saw-cancel {current_job.id}")
    return "stopped early"


@queue.task(timeout=120)
def checking() -> str:
    """Calls check_cancelled() between steps."""
    mark_started()
    for _ in range(6000):
        current_job.check_cancelled()
        time.sleep(0.02)
    return "finished"


@queue.task(timeout=120)
async def sleeping_coroutine() -> str:
    mark_started()
    try:
        await asyncio.sleep(100)
    except asyncio.CancelledError:
        append("effects.log", f"coroutine-cancelled {current_job.id}")
        raise
    return "slept"


@queue.task(timeout=120)
def stubborn() -> str:
    """Ignores cancellation: under prefork, only killing its process stops it."""
    mark_started()
    time.sleep(100)
    append("effects.log", f"stubborn-finished {current_job.id}")
    return "finished"


@queue.task()
def after(tag: str) -> str:
    append("effects.log", f"after {tag}")
    return tag


def span(tag: str, seconds: float) -> None:
    start = time.time()
    time.sleep(seconds)
    append("spans.log", f"{tag} {start} {time.time()} {os.getpid()}")


@queue.task(max_concurrent=2)
def capped(i: int) -> int:
    span("capped", 0.3)
    return i


@queue.task(max_concurrent=1, concurrency_key=lambda tenant, i: tenant)
def per_tenant(tenant: str, i: int) -> int:
    span(tenant, 0.2)
    return i


@queue.task()
def free(i: int) -> int:
    append("effects.log", f"free {i}")
    return i


@queue.task(rate_limit="5/s")
def limited(i: int) -> int:
    append("starts.log", f"{time.time()}")
    return i


@queue.periodic(cron="* * * * * *")
def tick() -> None:
    append("ticks.log", f"{time.time()}")
