"""The app of the idle-worker tests: ``taskito worker --app idle_app:queue``.

The database comes from the TASKITO_* variables. Every claim the worker makes is logged (one line
in ``claims.log`` under EFFECTS_DIR), and a test can ask for a job to be enqueued right after the
worker's next claim that found nothing (create ``enqueue-after-claim``): that commit lands between
the claim and the worker's wait, the moment a wake-up can be lost. The enqueued job's id goes to
``hooked-id``.

With IDLE_APP_NO_POLL=1 the worker never polls (its idle loop and safety-net claim wait a minute):
whatever it runs on time, it ran because the database announced it or its alarm rang.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import taskito.worker.runner
from taskito import Queue, current_job

queue = Queue()
EFFECTS = Path(os.environ.get("EFFECTS_DIR", "."))

if os.environ.get("IDLE_APP_NO_POLL") == "1":
    taskito.worker.runner.IDLE_WAIT = 60.0
    taskito.worker.runner.IDLE_CLAIM = 60.0


@queue.task()
def echo(value: str) -> str:
    return value


@queue.task(retry_backoff=0.3, max_retries=2)
def fails_once() -> str:
    if current_job.retry_count == 0:
        raise ConnectionError("the first attempt fails")
    return "second attempt"


@queue.task(queue="held")
def held(n: int) -> int:
    return n


_claim = queue.storage.claim


def _logged_claim(*args: Any, **kwargs: Any) -> Any:
    jobs = _claim(*args, **kwargs)
    with open(EFFECTS / "claims.log", "a") as log:
        log.write(f"{len(jobs)}\n")
    trigger = EFFECTS / "enqueue-after-claim"
    if not jobs and trigger.exists():
        trigger.unlink()
        job = echo.delay("hooked")  # another connection commits: after the claim, before the wait
        (EFFECTS / "hooked-id").write_text(job.id)
    return jobs


queue.storage.claim = _logged_claim  # type: ignore[method-assign]
