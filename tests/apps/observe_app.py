"""The app of the observability tests: ``taskito worker --app observe_app:queue``.

Its middleware and event handlers append one JSON line per call to EFFECTS_DIR/observed.log, so a
test sees what ran in the worker process (and, with --pool prefork, in its children).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from taskito import JobInfo, Middleware, Queue, current_job

queue = Queue()


def observed(**entry: Any) -> None:
    # EFFECTS_DIR read at each call: the tests' own process imports this module once for several tests.
    fd = os.open(Path(os.environ.get("EFFECTS_DIR", ".")) / "observed.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, (json.dumps(entry, default=str) + "\n").encode())
    finally:
        os.close(fd)


class Recorder(Middleware):
    def on_enqueue(self, job: JobInfo) -> None:
        job.headers["origin"] = "enqueuer"
        observed(kind="on_enqueue", job_id=job.id, task=job.task_name)

    def before(self, job: JobInfo) -> None:
        job.state["seen"] = True
        observed(kind="before", job_id=job.id, task=job.task_name, origin=job.headers.get("origin"),
                 current=current_job.id, pid=os.getpid())

    def after(self, job: JobInfo, result: Any, error: BaseException | None) -> None:
        observed(kind="after", job_id=job.id, result=result, error=None if error is None else repr(error),
                 state=job.state.get("seen"))

    def on_retry(self, job: JobInfo, error: str, delay: float) -> None:
        observed(kind="on_retry", job_id=job.id, error=error, retry_count=job.retry_count)

    def on_dead(self, job: JobInfo, error: str) -> None:
        observed(kind="on_dead", job_id=job.id, error=error, args=list(job.args))


class Broken:
    """Raises in every step: the jobs must not notice."""

    def before(self, job: JobInfo) -> None:
        raise RuntimeError("broken middleware before")

    def after(self, job: JobInfo, result: Any, error: BaseException | None) -> None:
        raise RuntimeError("broken middleware after")

    def on_dead(self, job: JobInfo, error: str) -> None:
        raise RuntimeError("broken middleware on_dead")


queue.add_middleware(Recorder())
queue.add_middleware(Broken())


def _record_event(event: dict[str, Any]) -> None:
    observed(kind="event", **event)


for _name in ("job.started", "job.completed", "job.retrying", "job.dead", "worker.started", "worker.stopped"):
    queue.on_event(_name)(_record_event)


@queue.on_event("job.completed")
def _explode(event: dict[str, Any]) -> None:
    raise RuntimeError("broken event handler")


@queue.task()
def add(a: int, b: int) -> int:
    return a + b


@queue.task(max_retries=1, retry_backoff=0.01)
def always_fails(tag: str) -> None:
    raise ValueError(f"bad {tag}")


@queue.task()
def chatty(lines: int) -> int:
    for number in range(lines):
        current_job.log(f"line {number}", level="warning" if number % 2 else "info", number=number)
    return lines


@queue.task()
def talks(word: str) -> str:
    logging.getLogger("observe_app").warning("inside the job: %s", word)
    return word


@queue.task(timeout=60)
def steps() -> str:
    """Logs, then waits (up to 20 s) for the test to create EFFECTS_DIR/release, then logs again."""
    current_job.log("waiting for release")
    release = Path(os.environ.get("EFFECTS_DIR", ".")) / "release"
    deadline = time.monotonic() + 20
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    current_job.log("released", level="error", ok=True)
    return "done"


@queue.task()
async def async_chatty(lines: int) -> int:
    for number in range(lines):
        current_job.log(f"async line {number}", number=number)
    return lines
