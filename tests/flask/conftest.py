"""Fixtures for the Flask tests: the factory app of sample_app.py on a database of its own."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from taskito import Queue
from taskito.storage import Completion, Started
from tests.flask import sample_app

HERE = Path(__file__).resolve().parent


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """``make_app(**config)`` builds sample_app's app on this test's database."""
    apps: list[Flask] = []

    def make(**config: Any) -> Flask:
        settings = {"TASKITO_DB_PATH": str(tmp_path / "taskito.db"),
                    "SAMPLE_TEARDOWN_LOG": str(tmp_path / "teardown.log"), **config}
        app = sample_app.create_app(settings)
        apps.append(app)
        return app

    yield make
    sample_app.taskito._authorize = None  # the extension is module-level: keep tests independent
    for app in apps:
        sample_app.taskito.queue_for(app).close()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def app_queue(app: Flask) -> Queue:
    return sample_app.taskito.queue_for(app)


def teardowns(tmp_path: Path) -> list[str]:
    log = tmp_path / "teardown.log"
    return log.read_text().splitlines() if log.exists() else []


SETUP = "setup"  # jobs put in a state by hand live on their own queue, so claiming them takes no other job


def claim(queue: Queue, job_id: str) -> Any:
    """Claim the job and start it, as a worker does."""
    [record] = queue.storage.claim("test-worker", [SETUP], 1, 30)
    assert record.id == job_id
    queue.storage.start([Started(record.id, record.attempt, time.time())])
    return record


def make_running(queue: Queue) -> str:
    job = queue.enqueue("sample.add", args=(1, 1), queue=SETUP)
    claim(queue, job.id)
    return job.id


def make_complete(queue: Queue, value: Any = 2) -> str:
    job = queue.enqueue("sample.add", args=(1, 1), queue=SETUP)
    record = claim(queue, job.id)
    queue.storage.complete([Completion(job.id, record.attempt, queue.serializer.dumps(value))])
    return job.id


def make_dead(queue: Queue, error: str = "RuntimeError: boom") -> str:
    job = queue.enqueue("sample.fail", max_retries=0, queue=SETUP)
    record = claim(queue, job.id)
    assert queue.storage.fail(job.id, record.attempt, error, "Traceback ...", None)
    return job.id
