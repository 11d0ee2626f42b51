"""The JSON blueprint: open health checks, job endpoints refused until @taskito.authorize allows."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, Request
from flask.testing import FlaskClient

from taskito import Queue
from tests.flask import sample_app
from tests.flask.conftest import make_complete, make_dead, make_running

PROTECTED = [
    ("GET", "/taskito/stats/queues"),
    ("GET", "/taskito/jobs"),
    ("GET", "/taskito/jobs/{job}"),
    ("GET", "/taskito/jobs/{job}/result"),
    ("GET", "/taskito/jobs/{job}/logs"),
    ("GET", "/taskito/tasks"),
    ("GET", "/taskito/queues"),
    ("GET", "/taskito/dead-letters"),
    ("POST", "/taskito/jobs/{job}/cancel"),
    ("POST", "/taskito/dead-letters/{dead}/retry"),
    ("GET", "/taskito/schedules"),
    ("POST", "/taskito/queues/default/purge"),
    ("POST", "/taskito/tasks/sample.add/revoke"),
    ("POST", "/taskito/dead-letters/retry-all"),
    ("POST", "/taskito/jobs/{dead}/replay"),
]
TOKEN = {"Authorization": "Bearer s3cret"}


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def allow_token(request: Request) -> bool:
    return request.headers.get("Authorization") == TOKEN["Authorization"]


def call(client: FlaskClient, method: str, url: str, app_queue: Queue, **kwargs: Any) -> Any:
    url = url.format(job=app_queue.enqueue("sample.add", args=(1, 2)).id, dead=make_dead(app_queue))
    return client.open(url, method=method, **kwargs)


def test_health_and_stats_are_open(client: FlaskClient, app_queue: Queue) -> None:
    app_queue.enqueue("sample.add", args=(1, 2))
    health = client.get("/taskito/health")
    assert health.status_code == 200 and health.json == {"status": "ok", "workers": 0}
    stats = client.get("/taskito/stats")
    assert stats.status_code == 200
    assert stats.json == {"pending": 1, "running": 0, "completed": 0, "failed": 0, "dead": 0, "cancelled": 0}


@pytest.mark.parametrize(("method", "url"), PROTECTED)
def test_job_endpoints_are_refused_without_an_authorize_callback(client: FlaskClient, app_queue: Queue,
                                                                 method: str, url: str) -> None:
    response = call(client, method, url, app_queue, headers=TOKEN)
    assert response.status_code == 403
    assert "@taskito.authorize" in response.json["error"]
    assert app_queue.stats()["cancelled"] == 0 and app_queue.stats()["dead"] == 1  # nothing was changed


@pytest.mark.parametrize(("method", "url"), PROTECTED)
def test_job_endpoints_are_refused_when_the_callback_says_no(client: FlaskClient, app_queue: Queue,
                                                             method: str, url: str) -> None:
    sample_app.taskito.authorize(allow_token)
    response = call(client, method, url, app_queue, headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 403 and response.json == {"error": "not authorized for taskito's job endpoints"}


@pytest.mark.parametrize("answer", [None, "", 0, "yes", 1, [True]], ids=repr)
def test_only_a_callback_answer_of_true_opens_the_job_endpoints(client: FlaskClient, app_queue: Queue,
                                                                answer: object) -> None:
    sample_app.taskito.authorize(lambda request: answer)
    for method, url in PROTECTED:
        response = call(client, method, url, app_queue, headers=TOKEN)
        assert response.status_code == 403, (method, url, response.json)
    assert app_queue.stats()["cancelled"] == 0 and app_queue.stats()["dead"] == len(PROTECTED)


@pytest.mark.parametrize(("method", "url"), PROTECTED)
def test_job_endpoints_answer_when_authorized(client: FlaskClient, app_queue: Queue, method: str, url: str) -> None:
    sample_app.taskito.authorize(allow_token)
    response = call(client, method, url, app_queue, headers=TOKEN)
    assert response.status_code == 200, response.json
    assert response.is_json


@pytest.fixture
def authorized(client: FlaskClient) -> FlaskClient:
    sample_app.taskito.authorize(allow_token)
    client.environ_base["HTTP_AUTHORIZATION"] = TOKEN["Authorization"]
    return client


def test_job_detail_and_result(authorized: FlaskClient, app_queue: Queue) -> None:
    done = make_complete(app_queue, value=2)
    detail = authorized.get(f"/taskito/jobs/{done}").json
    assert (detail["id"], detail["task_name"], detail["status"], detail["args"], detail["result"]) == (
        done, "sample.add", "complete", [1, 1], 2)
    assert authorized.get(f"/taskito/jobs/{done}/result").json == {
        "id": done, "task_name": "sample.add", "status": "complete", "ready": True, "progress": None,
        "result": 2, "error": None}

    dead = make_dead(app_queue)
    detail = authorized.get(f"/taskito/jobs/{dead}").json
    assert detail["status"] == "dead" and [e["error"] for e in detail["errors"]] == ["RuntimeError: boom"]
    pending = app_queue.enqueue("sample.add", args=(5, 5)).id
    assert authorized.get(f"/taskito/jobs/{pending}/result").json["ready"] is False


def test_logs_and_task_and_queue_metrics(authorized: FlaskClient, app_queue: Queue) -> None:
    done = make_complete(app_queue, value=2)
    assert authorized.get(f"/taskito/jobs/{done}/logs").json == {"job_id": done, "lines": []}
    assert authorized.get(f"/taskito/jobs/{done}/logs?after=x").status_code == 400
    assert authorized.get("/taskito/jobs/0123456789abcdef0123456789abcdef/logs").status_code == 404
    tasks = authorized.get("/taskito/tasks?since=600").json
    assert tasks["since"] == 600 and tasks["stats"][0]["task_name"] == "sample.add"
    assert tasks["stats"][0]["counts"]["complete"] == 1
    [setup] = [row for row in authorized.get("/taskito/queues").json["queues"] if row["name"] == "setup"]
    assert setup["completed_recently"] == 1 and setup["oldest_due_at"] is None
    bad = authorized.get("/taskito/tasks?since=5")
    assert bad.status_code == 400 and "since must be from 60" in bad.json["error"]


def test_job_list_filters_and_pages(authorized: FlaskClient, app_queue: Queue) -> None:
    ids = [app_queue.enqueue("sample.add", args=(i, i)).id for i in range(5)]
    other = app_queue.enqueue("sample.probe", args=("x",), queue="other").id
    dead = make_dead(app_queue)

    first = authorized.get("/taskito/jobs?status=pending&limit=2").json
    second = authorized.get(f"/taskito/jobs?status=pending&limit=2&offset={first['next_offset']}").json
    last = authorized.get("/taskito/jobs?status=pending&limit=2&offset=4").json
    listed = [job["id"] for page in (first, second, last) for job in page["jobs"]]
    assert sorted(listed) == sorted([*ids, other]) and len(set(listed)) == 6
    assert (first["limit"], first["offset"], first["next_offset"]) == (2, 0, 2)
    assert last["next_offset"] is None

    assert [j["id"] for j in authorized.get("/taskito/jobs?queue=other").json["jobs"]] == [other]
    assert [j["id"] for j in authorized.get("/taskito/jobs?task=sample.probe").json["jobs"]] == [other]
    assert [j["id"] for j in authorized.get("/taskito/jobs?status=dead").json["jobs"]] == [dead]
    assert [j["id"] for j in authorized.get("/taskito/dead-letters").json["jobs"]] == [dead]
    assert authorized.get("/taskito/dead-letters?offset=1").json["jobs"] == []

    queues = authorized.get("/taskito/stats/queues").json
    assert queues["queues"]["other"]["pending"] == 1 and queues["paused"] == []


@pytest.mark.parametrize(("query", "message"), [
    ("limit=abc", "limit must be a whole number from 1 to 500, got 'abc'"),
    ("limit=0", "limit must be from 1 to 500, got 0"),
    ("limit=501", "limit must be from 1 to 500, got 501"),
    ("offset=-1", "offset must be from 0 to 1000000000, got -1"),
    ("status=done", "unknown status 'done'"),
])
def test_bad_parameters_are_json_400(authorized: FlaskClient, query: str, message: str) -> None:
    response = authorized.get(f"/taskito/jobs?{query}")
    assert response.status_code == 400 and message in response.json["error"]
    if "status" not in query:
        assert authorized.get(f"/taskito/dead-letters?{query}").status_code == 400


def test_unknown_jobs_and_endpoints_are_json_404(authorized: FlaskClient) -> None:
    for method, url in [("GET", "/taskito/jobs/nope"), ("GET", "/taskito/jobs/nope/result"),
                        ("POST", "/taskito/jobs/nope/cancel"), ("POST", "/taskito/dead-letters/nope/retry"),
                        ("GET", "/taskito/no-such-endpoint"), ("DELETE", "/taskito/jobs/nope")]:
        response = authorized.open(url, method=method)
        assert response.status_code == 404 and response.is_json, (method, url)
        assert "nope" in response.json["error"] or "no taskito endpoint" in response.json["error"]


def test_cancel_and_retry(authorized: FlaskClient, app_queue: Queue) -> None:
    pending = app_queue.enqueue("sample.add", args=(1, 2)).id
    response = authorized.post(f"/taskito/jobs/{pending}/cancel")
    assert response.json == {"id": pending, "cancelled": True, "status": "cancelled"}
    assert app_queue.get_job(pending).status == "cancelled"

    running = make_running(app_queue)
    requested = authorized.post(f"/taskito/jobs/{running}/cancel")
    assert requested.json == {"id": running, "cancelled": True, "status": "running", "cancel_requested": True}
    refused = authorized.post(f"/taskito/jobs/{pending}/cancel")
    assert refused.status_code == 409 and refused.json["status"] == "cancelled"
    assert "only a job that has not finished can be cancelled" in refused.json["error"]

    dead = make_dead(app_queue)
    retried = authorized.post(f"/taskito/dead-letters/{dead}/retry").json
    assert retried["retried"] == dead and app_queue.get_job(retried["new_id"]).status == "pending"
    assert app_queue.stats()["dead"] == 0
    not_dead = authorized.post(f"/taskito/dead-letters/{pending}/retry")
    assert not_dead.status_code == 409 and "only dead letters can be retried" in not_dead.json["error"]


def test_cross_site_browser_posts_are_refused(authorized: FlaskClient, app_queue: Queue) -> None:
    pending = app_queue.enqueue("sample.add", args=(1, 2)).id
    forged = authorized.post(f"/taskito/jobs/{pending}/cancel", headers={"Sec-Fetch-Site": "cross-site"})
    assert forged.status_code == 403 and "cross-site" in forged.json["error"]
    assert app_queue.get_job(pending).status == "pending"
    own_page = authorized.post(f"/taskito/jobs/{pending}/cancel", headers={"Sec-Fetch-Site": "same-origin"})
    assert own_page.status_code == 200


def test_bulk_operations_and_schedules(authorized: FlaskClient, app_queue: Queue) -> None:
    waiting = [app_queue.enqueue("sample.add", args=(i, i)).id for i in range(2)]
    assert authorized.post("/taskito/queues/default/purge").json == {"queue": "default", "cancelled": 2}
    assert {app_queue.get_job(job_id).status for job_id in waiting} == {"cancelled"}
    app_queue.enqueue("sample.add", args=(1, 1))
    assert authorized.post("/taskito/tasks/sample.add/revoke").json == {"task": "sample.add", "cancelled": 1}
    done = make_complete(app_queue)
    replayed = authorized.post(f"/taskito/jobs/{done}/replay").json
    assert replayed["replayed"] == done and app_queue.get_job(replayed["new_id"]).status == "pending"
    refused = authorized.post(f"/taskito/jobs/{replayed['new_id']}/replay")
    assert refused.status_code == 409 and "only a finished job" in refused.json["error"]
    assert authorized.post("/taskito/queues/setup/purge").json["cancelled"] == 1
    dead = make_dead(app_queue)
    retried = authorized.post("/taskito/dead-letters/retry-all?task=sample.fail").json
    assert retried["retried"] == 1 and app_queue.get_job(dead) is None
    assert app_queue.get_job(retried["new_ids"][0]).status == "pending"
    assert authorized.get("/taskito/schedules").json == {"schedules": []}
    missing = authorized.post("/taskito/schedules/nope/pause")
    assert missing.status_code == 404 and "no periodic schedule named 'nope'" in missing.json["error"]
