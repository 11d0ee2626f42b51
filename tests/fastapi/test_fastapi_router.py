"""TaskitoRouter through FastAPI's TestClient: open health checks, job endpoints, the auth dependency."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi import FastAPI, Header, HTTPException
from fastapi.testclient import TestClient

from taskito import Queue, views
from taskito.contrib.fastapi import TaskitoRouter
from taskito.storage import Completion

SETUP = "setup"


def claimed(queue: Queue, job_id: str) -> int:
    [record] = queue.storage.claim("test-worker", [SETUP], 1, 30)
    assert record.id == job_id
    return record.attempt


def make_complete(queue: Queue, value: object) -> str:
    job = queue.enqueue("app.add", args=(1, 1), queue=SETUP)
    queue.storage.complete([Completion(job.id, claimed(queue, job.id), queue.serializer.dumps(value))])
    return job.id


def make_dead(queue: Queue) -> str:
    job = queue.enqueue("app.fail", max_retries=0, queue=SETUP)
    assert queue.storage.fail(job.id, claimed(queue, job.id), "RuntimeError: boom", "Traceback ...", None)
    return job.id


def allow() -> bool:
    return True


@pytest.fixture
def client(queue: Queue) -> TestClient:
    app = FastAPI()
    app.include_router(TaskitoRouter(queue, auth=allow), prefix="/tasks")
    return TestClient(app)


def test_core_stays_framework_free() -> None:
    code = ("import sys, taskito, taskito.cli, taskito.views; "
            "print(sorted(m for m in ('fastapi', 'flask', 'django') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == "[]", result.stderr


def test_stats_health_check_as_in_the_deployment_guide(client: TestClient, queue: Queue) -> None:
    queue.enqueue("app.add", args=(1, 2))
    response = client.get("/tasks/stats")
    assert response.status_code == 200
    assert response.json() == {"pending": 1, "running": 0, "completed": 0, "failed": 0, "dead": 0, "cancelled": 0}
    assert client.get("/tasks/health").json() == {"status": "ok", "workers": 0}


def test_job_detail_and_non_blocking_result(client: TestClient, queue: Queue) -> None:
    pending = queue.enqueue("app.add", args=(2, 3)).id
    assert client.get(f"/tasks/jobs/{pending}/result").json() == {
        "id": pending, "task_name": "app.add", "status": "pending", "ready": False, "progress": None,
        "result": None, "error": None}
    done = make_complete(queue, {"total": 5})
    assert client.get(f"/tasks/jobs/{done}/result").json()["result"] == {"total": 5}
    detail = client.get(f"/tasks/jobs/{done}").json()
    assert (detail["status"], detail["args"], detail["errors"]) == ("complete", [1, 1], [])
    dead = make_dead(queue)
    result = client.get(f"/tasks/jobs/{dead}/result").json()
    assert (result["ready"], result["status"], result["error"]) == (True, "dead", "RuntimeError: boom")
    for url in ("/tasks/jobs/nope", "/tasks/jobs/nope/result"):
        response = client.get(url)
        assert response.status_code == 404 and "nope" in response.json()["error"]


def test_logs_and_task_and_queue_metrics(client: TestClient, queue: Queue) -> None:
    done = make_complete(queue, 4)
    assert client.get(f"/tasks/jobs/{done}/logs").json() == {"job_id": done, "lines": []}
    assert client.get("/tasks/jobs/0123456789abcdef0123456789abcdef/logs").status_code == 404
    tasks = client.get("/tasks/tasks").json()
    assert tasks["since"] == 3600 and tasks["stats"][0]["task_name"] == "app.add"
    assert tasks["stats"][0]["counts"]["complete"] == 1
    [setup] = [row for row in client.get("/tasks/queues").json()["queues"] if row["name"] == "setup"]
    assert setup["completed_recently"] == 1
    assert client.get("/tasks/queues?since=abc").status_code == 400


def test_cancel(client: TestClient, queue: Queue) -> None:
    pending = queue.enqueue("app.add", args=(2, 3)).id
    response = client.post(f"/tasks/jobs/{pending}/cancel")
    assert response.status_code == 200 and response.json()["cancelled"] is True
    assert queue.get_job(pending).status == "cancelled"
    again = client.post(f"/tasks/jobs/{pending}/cancel")
    assert again.status_code == 409 and again.json()["status"] == "cancelled"
    assert client.post("/tasks/jobs/nope/cancel").status_code == 404


def test_dead_letters_page(client: TestClient, queue: Queue) -> None:
    dead = [make_dead(queue) for _ in range(3)]
    first = client.get("/tasks/dead-letters?limit=2").json()
    rest = client.get(f"/tasks/dead-letters?limit=2&offset={first['next_offset']}").json()
    assert sorted(job["id"] for job in first["jobs"] + rest["jobs"]) == sorted(dead)
    assert rest["next_offset"] is None
    assert client.get("/tasks/dead-letters?limit=0").json() == {"error": "limit must be from 1 to 500, got 0"}
    assert client.get("/tasks/dead-letters?offset=-1").status_code == 400


def require_token(x_token: str | None = Header(default=None)) -> bool:
    if x_token is None:
        raise HTTPException(status_code=401, detail="X-Token header missing")
    return x_token == "s3cret"


@pytest.mark.parametrize(("method", "url"), [
    ("GET", "/tasks/jobs/{job}"), ("GET", "/tasks/jobs/{job}/result"),
    ("POST", "/tasks/jobs/{job}/cancel"), ("GET", "/tasks/dead-letters"),
])
def test_auth_dependency_guards_job_endpoints_only(queue: Queue, method: str, url: str) -> None:
    app = FastAPI()
    app.include_router(TaskitoRouter(queue, auth=require_token), prefix="/tasks")
    client = TestClient(app)
    url = url.format(job=queue.enqueue("app.add", args=(1, 2)).id)
    assert client.request(method, url).status_code == 401
    assert client.request(method, url, headers={"X-Token": "wrong"}).status_code == 403
    assert queue.stats()["cancelled"] == 0
    assert client.request(method, url, headers={"X-Token": "s3cret"}).status_code == 200
    assert client.get("/tasks/stats").status_code == 200 and client.get("/tasks/health").status_code == 200


JOB_ROUTES = [("GET", "/tasks/jobs/{job}"), ("GET", "/tasks/jobs/{job}/result"),
              ("POST", "/tasks/jobs/{job}/cancel"), ("GET", "/tasks/dead-letters"), ("GET", "/tasks/schedules"),
              ("POST", "/tasks/schedules/some.schedule/pause"), ("POST", "/tasks/queues/default/purge"),
              ("POST", "/tasks/tasks/app.add/revoke"), ("POST", "/tasks/dead-letters/retry-all"),
              ("POST", "/tasks/jobs/{job}/replay")]


@pytest.mark.parametrize("answer", [None, "", 0, "yes", 1, False, [True]], ids=repr)
def test_only_an_auth_answer_of_true_opens_the_job_endpoints(queue: Queue, answer: object) -> None:
    app = FastAPI()
    app.include_router(TaskitoRouter(queue, auth=lambda: answer), prefix="/tasks")
    client = TestClient(app)
    for method, url in JOB_ROUTES:
        response = client.request(method, url.format(job=queue.enqueue("app.add", args=(1, 2)).id))
        assert response.status_code == 403, (method, url, response.text)
    assert queue.stats()["cancelled"] == 0
    assert client.get("/tasks/stats").status_code == 200 and client.get("/tasks/health").status_code == 200


def test_without_auth_the_job_endpoints_are_refused(queue: Queue) -> None:
    app = FastAPI()
    app.include_router(TaskitoRouter(queue), prefix="/tasks")
    client = TestClient(app)
    for method, url in JOB_ROUTES:
        response = client.request(method, url.format(job=queue.enqueue("app.add", args=(1, 2)).id))
        assert response.status_code == 403 and "auth=" in response.json()["error"], (method, url)
    assert queue.stats()["cancelled"] == 0
    assert client.get("/tasks/stats").status_code == 200 and client.get("/tasks/health").status_code == 200


def test_router_kwargs_and_bad_queue(queue: Queue) -> None:
    router = TaskitoRouter(queue, tags=["ops"])
    assert {route.path for route in router.routes} == {"/health", "/stats", *(view.path for view in views.VIEWS)}
    assert all(route.tags == ["ops"] for route in router.routes)
    with pytest.raises(TypeError, match="needs a taskito.Queue, got str"):
        TaskitoRouter("myapp:queue")  # type: ignore[arg-type]


def test_cross_site_browser_posts_are_refused(client: TestClient, queue: Queue) -> None:
    pending = queue.enqueue("app.add", args=(2, 3)).id
    forged = client.post(f"/tasks/jobs/{pending}/cancel", headers={"Sec-Fetch-Site": "cross-site"})
    assert forged.status_code == 403 and queue.get_job(pending).status == "pending"
    assert client.post(f"/tasks/jobs/{pending}/cancel", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
