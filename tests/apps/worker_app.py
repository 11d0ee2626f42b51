"""The app that worker subprocess tests run: ``taskito worker --app worker_app:queue``.

The database comes from TASKITO_DB_PATH; side effects go to the files under
EFFECTS_DIR so tests can count how often each job really ran.
"""

from __future__ import annotations

import os
import time

from effects import EFFECTS, effect

from taskito import Queue, current_job

queue = Queue()



@queue.task()
def add(a: int, b: int) -> int:
    return a + b


@queue.task()
def record(tag: str) -> str:
    effect(f"{tag} {current_job.id}")
    return tag


@queue.task(max_retries=0)
def strict_record(tag: str) -> str:
    effect(f"{tag} {current_job.id}")
    return tag


@queue.task(queue="other")
def on_other_queue() -> str:
    return "other"


@queue.task(timeout=60)
def slow(seconds: float) -> str:
    """Mark itself started (a file the test waits for), work, then record its effect."""
    (EFFECTS / f"started-{current_job.id}").touch()
    time.sleep(seconds)
    effect(f"slow {current_job.id}")
    return "done"


@queue.task(timeout=0.5, max_retries=1, retry_backoff=0.01)
def hangs() -> None:
    effect(f"hangs {current_job.id}")
    time.sleep(30)


@queue.task()
def wait_briefly(seconds: float) -> list[float]:
    """Wait as for a network call; when it began and ended (the worker's monotonic clock)."""
    began = time.monotonic()
    time.sleep(seconds)
    return [began, time.monotonic()]


@queue.task()
def whoami() -> list[int]:
    """Which process ran the job, and its parent (the worker, under --pool prefork)."""
    current_job.update_progress(100)
    return [os.getpid(), os.getppid()]


@queue.task(retry_backoff=0.01)
def crash_once() -> str:
    """The process running it dies on the first attempt; the retry succeeds."""
    if current_job.retry_count == 0:
        os._exit(7)
    return "survived"


@queue.task(timeout=60)
def pid_then_sleep(seconds: float) -> str:
    """Write this process's pid to started-<job id>, then work for a while."""
    (EFFECTS / f"started-{current_job.id}").write_text(str(os.getpid()))
    time.sleep(seconds)
    effect(f"slept {current_job.id}")
    return "done"


def _square(n: int) -> int:
    return n * n


@queue.task(timeout=60)
def squares_in_processes(count: int) -> list[int]:
    """CPU-bound work fanned out to processes of its own, as tasks under --pool prefork do."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as pool:
        return list(pool.map(_square, range(count)))
