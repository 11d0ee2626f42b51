"""The app the benchmark's worker processes run; settings come from TASKITO_* variables."""

import asyncio

from taskito import Queue

queue = Queue()


@queue.task()
def noop() -> None:
    return None


@queue.task()
async def nap() -> None:
    """The async benchmark's task: a coroutine that waits 0.1 s (e.g. for an HTTP API) without a thread."""
    await asyncio.sleep(0.1)
