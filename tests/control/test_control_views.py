"""The control operations in the dashboard's JSON API: cancel a running job, schedules, bulk operations."""

from __future__ import annotations

import time
from typing import Any

import pytest
from werkzeug.test import Client, TestResponse

from taskito import Queue
from taskito.dashboard import create_app
from taskito.storage import Completion, Started

WORKER = "views-test-worker"
TOKEN = "views-test-token"


class Dashboard:
    """A client of the dashboard that sends the bearer token with every request (as scripts do: no CSRF)."""

    def __init__(self, queue: Queue, read_only: bool = False) -> None:
        self.client = Client(create_app(queue, token=TOKEN, read_only=read_only))
        self.headers = {"Authorization": f"Bearer {TOKEN}"}

    def get(self, path: str) -> TestResponse:
        return self.client.get(path, headers=self.headers)

    def post(self, path: str, json: Any = None) -> TestResponse:
        return self.client.post(path, headers=self.headers, json=json)


def dashboard(queue: Queue, read_only: bool = False) -> Dashboard:
    return Dashboard(queue, read_only)


@pytest.fixture(autouse=True)
def no_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKITO_DASHBOARD_TOKEN", raising=False)


def running(client: Queue, queue_name: str) -> str:
    job = client.enqueue("control_app.free", args=(1,), queue=queue_name)
    [record] = client.storage.claim(WORKER, [queue_name], 1, 30)
    client.storage.start([Started(record.id, record.attempt, time.time())])
    assert record.id == job.id
    return job.id


def test_cancel_a_running_job_from_the_dashboard(client: Queue) -> None:
    http = dashboard(client)
    job_id = running(client, "held")
    answer = http.post(f"/api/jobs/{job_id}/cancel").json
    assert answer == {"id": job_id, "cancelled": True, "status": "running", "cancel_requested": True}
    detail = http.get(f"/api/jobs/{job_id}").json
    assert detail["cancel_requested"] is True and detail["can_cancel"] is False  # asked once: no button again
    assert client.storage.cancel_requests(WORKER) == [(job_id, 1)]
    client.storage.finish_cancelled(job_id, 1, "cancelled while running", None)
    refused = http.post(f"/api/jobs/{job_id}/cancel")
    assert refused.status_code == 409 and "cancelled already" in refused.json["error"]
    page = http.get("/static/app.js").get_data(as_text=True)
    assert "Cancel running job" in page  # the detail's button is offered for running jobs


def test_schedules_from_the_dashboard(client: Queue) -> None:
    http = dashboard(client)
    [schedule] = http.get("/api/schedules").json["schedules"]
    name = schedule["name"]
    assert schedule["paused"] is False and schedule["cron"] == "* * * * * *"
    assert http.post(f"/api/schedules/{name}/pause").json == {"name": name, "paused": True}
    assert http.get("/api/schedules").json["schedules"][0]["paused"] is True
    ran = http.post(f"/api/schedules/{name}/run").json
    assert client.get_job(ran["job_id"]).status == "pending"
    assert http.post(f"/api/schedules/{name}/resume").json["paused"] is False
    assert client.periodic_schedules()[0]["paused"] is False
    missing = http.post("/api/schedules/nope/pause")
    assert missing.status_code == 404 and "no periodic schedule named 'nope'" in missing.json["error"]
    assert 'id="page-schedules"' in http.get("/").get_data(as_text=True)


def test_bulk_operations_from_the_dashboard(client: Queue) -> None:
    http = dashboard(client)
    for i in range(3):
        client.enqueue("control_app.free", args=(i,), queue="bulk")
    assert http.post("/api/queues/bulk/purge").json == {"queue": "bulk", "cancelled": 3}
    client.enqueue("control_app.capped", args=(1,))
    assert http.post("/api/tasks/control_app.capped/revoke").json == {"task": "control_app.capped", "cancelled": 1}
    client.enqueue("control_app.free", args=(5,), queue="dying")
    [record] = client.storage.claim(WORKER, ["dying"], 1, 30)
    client.storage.fail(record.id, record.attempt, "ValueError: boom", None, None)
    retried = http.post("/api/dead-letters/retry-all", json={"task": "control_app.free"}).json
    assert retried["retried"] == 1 and client.get_job(retried["new_ids"][0]).status == "pending"
    assert http.post("/api/dead-letters/retry-all", json={"queue": ""}).json["retried"] == 0
    [record] = client.storage.claim(WORKER, ["dying"], 1, 30)
    client.storage.complete([Completion(record.id, record.attempt, b"5")])
    replayed = http.post(f"/api/jobs/{record.id}/replay").json
    assert replayed["replayed"] == record.id and client.get_job(replayed["new_id"]).status == "pending"
    not_finished = http.post(f"/api/jobs/{replayed['new_id']}/replay")
    assert not_finished.status_code == 409 and "only a finished job" in not_finished.json["error"]
    assert http.post(f"/api/jobs/{'0' * 32}/replay").status_code == 404


def test_a_read_only_dashboard_refuses_every_control_operation(client: Queue) -> None:
    http = dashboard(client, read_only=True)
    name = client.periodic_schedules()[0]["name"]
    for path in (f"/api/schedules/{name}/pause", f"/api/schedules/{name}/run", "/api/queues/default/purge",
                 "/api/tasks/control_app.free/revoke", "/api/dead-letters/retry-all"):
        assert http.post(path).status_code == 403, path
    assert http.get("/api/schedules").status_code == 200
    assert client.periodic_schedules()[0]["paused"] is False and client.stats()["pending"] == 0


def test_the_fastapi_router_serves_the_same_control_views(client: Queue) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from taskito.contrib.fastapi import TaskitoRouter

    app = FastAPI()
    app.include_router(TaskitoRouter(client, auth=lambda: True), prefix="/tasks")
    http = TestClient(app)
    job_id = running(client, "held")
    assert http.post(f"/tasks/jobs/{job_id}/cancel").json() == {
        "id": job_id, "cancelled": True, "status": "running", "cancel_requested": True}
    [schedule] = http.get("/tasks/schedules").json()["schedules"]
    assert http.post(f"/tasks/schedules/{schedule['name']}/pause").json()["paused"] is True
    assert client.periodic_schedules()[0]["paused"] is True
    assert http.post(f"/tasks/schedules/{schedule['name']}/jump").status_code in (404, 405)  # not an action
    client.enqueue("control_app.free", args=(1,), queue="bulk")
    assert http.post("/tasks/queues/bulk/purge").json() == {"queue": "bulk", "cancelled": 1}
    client.enqueue("control_app.capped", args=(1,))
    assert http.post("/tasks/tasks/control_app.capped/revoke").json()["cancelled"] == 1
    assert http.post("/tasks/dead-letters/retry-all", params={"queue": "none-here"}).json()["retried"] == 0
    assert http.post(f"/tasks/jobs/{job_id}/replay").status_code == 409  # still running
