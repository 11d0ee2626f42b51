"""The async benchmark's app (apart from bench_app, whose worker then runs plain tasks only, as before)."""

import asyncio

from taskito import Queue

queue = Queue()


@queue.task()
async def nap() -> None:
    """A coroutine that waits 0.1 s (as for an HTTP API) without holding a thread."""
    await asyncio.sleep(0.1)
