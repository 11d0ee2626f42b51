"""The app that async worker tests run: ``taskito worker --app async_app:queue``.

The queue comes from the environment (TASKITO_DB_PATH, or TASKITO_BACKEND=postgres with
TASKITO_DB_URL and TASKITO_SCHEMA). Side effects go to EFFECTS_DIR: ``effects.log`` (one line per
event) and ``started-<job id>`` files a test waits for.
"""

from __future__ import annotations

import asyncio
import time

from effects import EFFECTS, effect

from taskito import Queue, current_job

queue = Queue()
_running = 0
_most = 0



@queue.task()
async def nap(seconds: float) -> str:
    """Wait without a thread; answers with the job id its own ``current_job`` sees."""
    await asyncio.sleep(seconds)
    return current_job.id


@queue.task()
async def crowd(seconds: float) -> int:
    """How many of these ran at once in this worker, at most, so far."""
    global _running, _most
    _running += 1
    _most = max(_most, _running)
    try:
        await asyncio.sleep(seconds)
    finally:
        _running -= 1
    return _most


@queue.task(retry_backoff=0.01)
async def flaky() -> int:
    """Fails its first two attempts."""
    await asyncio.sleep(0)
    if current_job.retry_count < 2:
        raise ConnectionError(f"attempt {current_job.retry_count + 1} failed")
    return current_job.retry_count


@queue.task(timeout=0.5, max_retries=1, retry_backoff=0.01)
async def hangs() -> None:
    """Never finishes by itself; records that its timeout really cancelled it."""
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        effect(f"cancelled {current_job.id} {current_job.retry_count}")
        raise


@queue.task(soft_timeout=0.2, max_retries=0)
async def polite() -> str:
    await asyncio.sleep(0.3)
    current_job.check_timeout()  # raises SoftTimeLimitExceeded
    return "not reached"


@queue.task(rate_limit="10/s")
async def limited() -> float:
    return time.time()


@queue.task()
async def progress() -> str:
    current_job.update_progress(30)
    await asyncio.sleep(0.01)
    current_job.update_progress(60)
    return "done"


@queue.task(timeout=60)
async def long_nap(seconds: float) -> str:
    """Marks itself started, then waits ``seconds`` on its first attempt (a short while on retries)."""
    (EFFECTS / f"started-{current_job.id}").touch()
    effect(f"start {current_job.id} {current_job.retry_count}")
    try:
        await asyncio.sleep(seconds if current_job.retry_count == 0 else 0.05)
    except asyncio.CancelledError:
        effect(f"cancelled {current_job.id}")
        raise
    effect(f"done {current_job.id}")
    return "rested"


@queue.task()
async def blocks(seconds: float) -> str:
    """A mistake: a blocking call in a coroutine holds the whole event loop."""
    time.sleep(seconds)
    return "blocked"


@queue.task(timeout=60)
async def steady(beats: int, interval: float) -> float:
    """A heartbeat that records its progress at every beat; returns the longest the loop kept it waiting."""
    (EFFECTS / f"started-{current_job.id}").touch()
    worst = 0.0
    last = time.monotonic()
    for beat in range(beats):
        current_job.update_progress(100 * beat / beats)
        await asyncio.sleep(interval)
        now = time.monotonic()
        worst = max(worst, now - last - interval)
        last = now
    return worst


@queue.task()
def plain(x: int) -> int:
    """A plain task beside the coroutines: it runs on the worker's threads."""
    return x * 2
