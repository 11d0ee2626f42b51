"""FastAPI with async tasks: an endpoint that enqueues and awaits the result inside one request, against a
real worker, on both engines, while the event loop stays free; the router's endpoints are coroutines."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from taskito import Queue
from taskito.contrib.fastapi import TaskitoRouter
from tests.core.test_async_client import beating
from tests.support import start_worker
from tests.worker.conftest import APPS


@pytest.fixture
def queue(engine_env: dict[str, str]) -> Iterator[Queue]:
    queue = Queue()  # the web app's queue: it enqueues the worker's tasks by name
    yield queue
    queue.close()


def make_app(queue: Queue) -> FastAPI:
    app = FastAPI()
    app.include_router(TaskitoRouter(queue, auth=lambda: True), prefix="/tasks")

    @app.post("/nap")
    async def nap(seconds: float) -> dict[str, Any]:
        job = await queue.aenqueue("async_app.nap", args=(seconds,))
        return {"id": job.id, "answer": await job.aresult(timeout=20)}

    return app


def test_an_endpoint_enqueues_and_awaits_the_result_in_one_request(engine_env: dict[str, str],
                                                                   queue: Queue) -> None:
    app = make_app(queue)
    worker = start_worker("async_app:queue", APPS, env=engine_env)

    async def requests() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
            return await asyncio.gather(*(client.post("/nap", params={"seconds": 1.0}) for _ in range(30)),
                                        client.get("/tasks/stats"))

    try:
        started = time.monotonic()
        responses, worst = asyncio.run(beating(requests()))
        took = time.monotonic() - started
    finally:
        worker.stop()
    *naps, stats = responses
    assert all(response.status_code == 200 for response in responses)
    assert all(response.json()["answer"] == response.json()["id"] for response in naps)  # each its own job
    assert stats.json()["pending"] + stats.json()["running"] <= 30
    assert took < 8  # 30 requests waiting together, not one after another (30 s)
    # The app's event loop was never held by a wait: each would hold it 1 s (a loaded machine delays its beat
    # by up to 0.6 s on its own).
    assert worst < 0.9


def test_the_routers_endpoints_are_coroutines(queue: Queue) -> None:
    router = TaskitoRouter(queue, auth=lambda: True)
    assert router.routes and all(inspect.iscoroutinefunction(route.endpoint) for route in router.routes)
