"""Fixtures for the dashboard: a queue holding jobs in every state, WSGI clients and a live server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.test import Client, TestResponse

from taskito import Queue
from taskito.dashboard import create_app, make_server
from taskito.storage import Completion, NewWorkflow, Started, new_job_id

SCRIPT_ARG = "<script>window.__pwned=1</script>"
WORKER = "dashboard-test-worker"


@pytest.fixture(autouse=True)
def no_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """create_app() reads TASKITO_DASHBOARD_TOKEN; a value in the runner's environment must not leak in."""
    monkeypatch.delenv("TASKITO_DASHBOARD_TOKEN", raising=False)


@dataclass
class Populated:
    """Job ids by the state the fixture left them in."""

    ids: dict[str, list[str]] = field(default_factory=dict)

    def __getitem__(self, status: str) -> list[str]:
        return self.ids[status]


def _claimed(queue: Queue, task: str, args: tuple[Any, ...], queue_name: str) -> Any:
    """Enqueue one job, claim it and start it at once (it is the only pending job of its queue then)."""
    job = queue.enqueue(task, args=args, queue=queue_name, max_retries=2, timeout=60)
    [record] = queue.storage.claim(WORKER, [queue_name], 1, 60)
    assert record.id == job.id
    queue.storage.start([Started(record.id, record.attempt, time.time())])
    return record


def populate(queue: Queue) -> Populated:
    """Two queues ("default", "mail") with jobs in all six states, including a <script> argument.

    Built with the storage calls a worker makes, so nothing moves while a test looks at it.
    """
    made = Populated({status: [] for status in ("pending", "running", "complete", "failed", "dead", "cancelled")})
    for n in range(2):
        record = _claimed(queue, "tasks.add", (n, 1), "default")
        queue.storage.complete([Completion(record.id, record.attempt, queue.serializer.dumps(n + 1))])
        made["complete"].append(record.id)
    record = _claimed(queue, "tasks.send_mail", ("ada@example.com",), "mail")
    made["running"].append(record.id)
    record = _claimed(queue, "tasks.flaky", (3,), "default")
    queue.storage.fail(record.id, record.attempt, "ConnectionError: try later", "Traceback (flaky)", 3600)
    made["failed"].append(record.id)
    for n in range(2):
        record = _claimed(queue, "tasks.explode", (n,), "mail" if n else "default")
        queue.storage.fail(record.id, record.attempt, f"ValueError: <b>boom {n}</b>",
                           f"Traceback (most recent call last):\n  ValueError: boom {n}", None)
        made["dead"].append(record.id)
    made["pending"].append(queue.enqueue("tasks.add", args=(5, 6)).id)
    made["pending"].append(queue.enqueue("tasks.echo", args=(SCRIPT_ARG,), kwargs={"note": SCRIPT_ARG}).id)
    made["pending"].append(queue.enqueue("tasks.send_mail", args=("bob@example.com",), queue="mail").id)
    cancelled = queue.enqueue("tasks.add", args=(7, 8))
    assert queue.cancel_job(cancelled.id)
    made["cancelled"].append(cancelled.id)
    made.ids["workflow"] = [stored_workflow(queue)]
    return made


def stored_workflow(queue: Queue) -> str:
    """A workflow for the routes that show one; without jobs, so that no count changes."""
    workflow = NewWorkflow(id=new_job_id(), kind="chain", stages=[], jobs=[])
    queue.storage.create_workflow(workflow)
    return workflow.id


@pytest.fixture
def populated(queue: Queue) -> Populated:
    return populate(queue)


class DashClient:
    """A werkzeug test client that knows the dashboard's CSRF dance."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.http = Client(app)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.http.get(path, **kwargs)

    def csrf(self, prefix: str = "") -> str:
        response = self.http.get(prefix + "/api/session")
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.json["csrf_token"]

    def post(self, path: str, json: Any = None, csrf: bool = True, **kwargs: Any) -> TestResponse:
        headers = dict(kwargs.pop("headers", {}))
        if csrf:
            headers.setdefault("X-CSRF-Token", self.csrf())
        return self.http.post(path, json=json if json is not None else {}, headers=headers, **kwargs)


@pytest.fixture
def make_client(queue: Queue) -> Callable[..., DashClient]:
    def make(**options: Any) -> DashClient:
        return DashClient(create_app(queue, **options))

    return make


@pytest.fixture
def client(make_client: Callable[..., DashClient]) -> DashClient:
    return make_client()


class LiveServer:
    """The dashboard on a real threaded wsgiref server (port picked by the OS)."""

    def __init__(self, app: Any) -> None:
        self.server = make_server(app, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def dashboard_server() -> Iterator[Callable[[Any], LiveServer]]:
    started: list[LiveServer] = []

    def start(app: Any) -> LiveServer:
        server = LiveServer(app)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
