"""One JSON view layer: the dashboard's /api, the Flask blueprint and the FastAPI router answer the same
request with the same status and the same JSON, on both engines."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from flask import Flask

from taskito import Queue, views
from taskito.contrib.fastapi import TaskitoRouter
from taskito.dashboard import create_app
from taskito_flask import Taskito
from tests.dashboard.conftest import DashClient, _claimed, populate, stored_workflow

Call = Callable[..., tuple[int, Any]]
ADAPTERS = ["dashboard", "flask", "fastapi"]


@pytest.fixture
def adapters(engine_settings: dict[str, str], engine_queue: Queue) -> Iterator[dict[str, Call]]:
    """``adapters[name](method, path, body=None) -> (status, json)`` with ``path`` below each one's prefix."""
    dashboard = DashClient(create_app(engine_queue))
    flask_app = Flask("agreement")
    flask_app.config.update({f"TASKITO_{key.upper()}": value for key, value in engine_settings.items()})
    extension = Taskito(flask_app)  # its own Queue on the same database, as a Flask app has
    extension.authorize(lambda request: True)
    flask_client = flask_app.test_client()
    fastapi_app = FastAPI()
    fastapi_app.include_router(TaskitoRouter(engine_queue, auth=lambda: True), prefix="/tasks")
    fastapi_client = TestClient(fastapi_app)

    def on_dashboard(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = dashboard.get("/api" + path) if method == "GET" else dashboard.post("/api" + path, json=body)
        return response.status_code, response.json

    def on_flask(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = flask_client.open("/taskito" + path, method=method, json=body)
        return response.status_code, response.json

    def on_fastapi(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = fastapi_client.request(method, "/tasks" + path, json=body)
        return response.status_code, response.json()

    yield {"dashboard": on_dashboard, "flask": on_flask, "fastapi": on_fastapi}
    extension.queue_for(flask_app).close()


def same_everywhere(adapters: dict[str, Call], method: str, path: str, body: Any = None) -> tuple[int, Any]:
    answers = {name: call(method, path, body) for name, call in adapters.items()}
    assert answers["flask"] == answers["dashboard"], path
    assert answers["fastapi"] == answers["dashboard"], path
    return answers["dashboard"]


def without(job_id: str, answer: tuple[int, Any]) -> tuple[int, Any]:
    """The answer with the job's id blanked, to compare answers about different jobs."""
    status, body = answer
    return status, json.loads(json.dumps(body).replace(job_id, "<id>"))


def named(names: dict[str, str], answer: tuple[int, Any]) -> tuple[int, Any]:
    """The answer with job ids replaced by names, to compare answers about different jobs."""
    text = json.dumps(answer[1])
    for job_id, name in names.items():
        text = text.replace(job_id, name)
    return answer[0], json.loads(text)


def test_lists_details_and_counts_are_the_same_json_everywhere(adapters: dict[str, Call],
                                                               engine_queue: Queue) -> None:
    made = populate(engine_queue)
    status, first = same_everywhere(adapters, "GET", "/jobs?limit=4")
    assert status == 200
    assert set(first) == {"jobs", "limit", "offset", "has_more", "next_offset", "filters", "sort", "sortable",
                          "text_scan"}
    assert (first["limit"], first["offset"], first["has_more"], first["next_offset"]) == (4, 0, True, 4)
    assert "args" not in first["jobs"][0] and "preview" in first["jobs"][0]  # lists stay small
    _, last = same_everywhere(adapters, "GET", "/jobs?limit=4&offset=8")
    assert (len(last["jobs"]), last["has_more"], last["next_offset"]) == (2, False, None)

    _, dead = same_everywhere(adapters, "GET", "/jobs?status=dead&queue=mail")
    assert [job["id"] for job in dead["jobs"]] == [made["dead"][1]]
    assert dead["filters"] == {"status": "dead", "queue": "mail", "task": None, "id": None, "text": None}
    _, found = same_everywhere(adapters, "GET", "/jobs?text=BOOM&sort=-attempts")
    assert {job["id"] for job in found["jobs"]} == set(made["dead"]) and found["text_scan"] == 10_000
    _, by_id = same_everywhere(adapters, "GET", f"/jobs?id={made['dead'][1][:20].upper()}")
    assert [job["id"] for job in by_id["jobs"]] == [made["dead"][1]] and by_id["sortable"] == ["created"]
    _, flows = same_everywhere(adapters, "GET", "/workflows")
    assert [flow["id"] for flow in flows["workflows"]] == made["workflow"]
    _, completed = same_everywhere(adapters, "GET", "/jobs?status=completed")  # the name stats() uses
    assert {job["id"] for job in completed["jobs"]} == set(made["complete"])
    _, letters = same_everywhere(adapters, "GET", "/dead-letters?limit=1")
    assert (len(letters["jobs"]), letters["has_more"], letters["next_offset"]) == (1, True, 1)

    _, failed = same_everywhere(adapters, "GET", f"/jobs/{made['failed'][0]}")
    assert (failed["status"], failed["can_cancel"], failed["can_retry"]) == ("failed", True, False)
    _, running = same_everywhere(adapters, "GET", f"/jobs/{made['running'][0]}")
    assert (running["can_cancel"], running["can_retry"]) == (True, False)  # its worker is asked to stop it
    _, dead_one = same_everywhere(adapters, "GET", f"/jobs/{made['dead'][0]}")
    assert (dead_one["can_cancel"], dead_one["can_retry"]) == (False, True) and len(dead_one["errors"]) == 1
    same_everywhere(adapters, "GET", f"/jobs/{made['complete'][0]}/result")
    _, per_queue = same_everywhere(adapters, "GET", "/stats/queues")
    assert per_queue["queues"]["mail"] == engine_queue.stats_by_queue("mail")
    same_everywhere(adapters, "GET", "/queues")
    same_everywhere(adapters, "GET", "/queues/mail")
    _, tasks = same_everywhere(adapters, "GET", "/tasks?since=3600")
    assert tasks["stats"] and tasks["stats"][0]["failure_rate"] >= tasks["stats"][-1]["failure_rate"]
    _, logs = same_everywhere(adapters, "GET", f"/jobs/{made['complete'][0]}/logs")
    assert logs == {"job_id": made["complete"][0], "lines": []}
    _, found = same_everywhere(adapters, "GET", f"/search?q={made['dead'][0]}")
    assert [job["id"] for job in found["jobs"]] == [made["dead"][0]]
    same_everywhere(adapters, "GET", "/schedules")


@pytest.mark.parametrize(("path", "named"), [
    ("/jobs?status=done", "'done'"),
    ("/jobs?limit=abc", "'abc'"),
    ("/jobs?limit=0", "got 0"),
    ("/jobs?offset=-1", "got -1"),
    ("/dead-letters?limit=501", "got 501"),
    ("/throughput?step=0", "got 0"),
    ("/tasks?since=5", "got 5"),
    ("/task-series?step=abc", "'abc'"),
    ("/jobs/0123456789abcdef0123456789abcdef/logs?after=-2", "got -2"),
    ("/jobs?id=xyz", "'xyz'"),
    ("/jobs?sort=oldest", "'oldest'"),
    ("/jobs?id=01&sort=task", "'task'"),
    ("/dead-letters?text=" + "x" * 201, "200 characters"),
    ("/throughput?window=86400&step=10", "got 10"),
    ("/throughput?window=700000&step=3600", "got 700000"),
])
def test_bad_input_is_the_same_400_naming_the_value_everywhere(adapters: dict[str, Call], path: str,
                                                              named: str) -> None:
    status, body = same_everywhere(adapters, "GET", path)
    assert status == 400 and set(body) == {"error"} and named in body["error"]


def test_unknown_jobs_are_the_same_404_everywhere(adapters: dict[str, Call]) -> None:
    for method, path in [("GET", "/jobs/nope"), ("GET", "/jobs/nope/result"), ("POST", "/jobs/nope/cancel"),
                         ("POST", "/dead-letters/nope/retry"), ("POST", "/dead-letters/nope/delete")]:
        status, body = same_everywhere(adapters, method, path)
        assert status == 404 and set(body) == {"error"} and "'nope'" in body["error"], path


def test_waiting_jobs_are_cancelled_and_held_ones_asked_to_stop_everywhere(adapters: dict[str, Call],
                                                                           engine_queue: Queue) -> None:
    answers: dict[str, list[tuple[int, Any]]] = {}
    for name, call in adapters.items():
        waiting = _claimed(engine_queue, "tasks.flaky", (1,), f"{name}-failed")
        engine_queue.storage.fail(waiting.id, waiting.attempt, "ConnectionError: later", None, 3600)
        running = _claimed(engine_queue, "tasks.slow", (1,), f"{name}-running")
        claimed = engine_queue.enqueue("tasks.slow", queue=f"{name}-claimed")
        engine_queue.storage.claim("w-1", [f"{name}-claimed"], 1, 60)
        answers[name] = [without(waiting.id, call("POST", f"/jobs/{waiting.id}/cancel")),
                         without(running.id, call("POST", f"/jobs/{running.id}/cancel")),
                         without(claimed.id, call("POST", f"/jobs/{claimed.id}/cancel")),
                         without(waiting.id, call("POST", f"/jobs/{waiting.id}/cancel"))]
        assert engine_queue.get_job(waiting.id).status == "cancelled"
        assert engine_queue.get_job(running.id).status == "running"  # until its worker stops it
        assert engine_queue.get_job(claimed.id).status == "pending"
    assert answers["flask"] == answers["dashboard"] and answers["fastapi"] == answers["dashboard"]
    cancelled, running_answer, claimed_answer, refused = answers["dashboard"]
    assert cancelled == (200, {"id": "<id>", "cancelled": True, "status": "cancelled"})
    assert running_answer == (200, {"id": "<id>", "cancelled": True, "status": "running", "cancel_requested": True})
    assert claimed_answer == (200, {"id": "<id>", "cancelled": True, "status": "pending", "cancel_requested": True})
    assert refused == (409, {"error": "job <id> is cancelled already: only a job that has not finished can be "
                                      "cancelled", "id": "<id>", "cancelled": False, "status": "cancelled"})


def test_dead_letters_are_retried_and_deleted_alike_everywhere(adapters: dict[str, Call],
                                                               engine_queue: Queue) -> None:
    answers: dict[str, list[tuple[int, Any]]] = {}
    for name, call in adapters.items():
        dead = [_claimed(engine_queue, "tasks.explode", (n,), f"{name}-dead-{n}").id for n in range(2)]
        for job_id in dead:
            engine_queue.storage.fail(job_id, 1, "ValueError: boom", None, None)
        pending = engine_queue.enqueue("tasks.add", queue=f"{name}-pending").id
        status, retried = call("POST", f"/dead-letters/{dead[0]}/retry")
        assert status == 200 and engine_queue.get_job(retried["new_id"]).status == "pending"
        answers[name] = [without(dead[0], (status, {**retried, "new_id": "<new>"})),
                         without(dead[0], call("POST", f"/dead-letters/{dead[0]}/retry")),  # gone: 404
                         without(pending, call("POST", f"/dead-letters/{pending}/retry")),  # not dead: 409
                         without(dead[1], call("POST", f"/dead-letters/{dead[1]}/delete")),
                         call("POST", "/dead-letters/purge", {"older_than": "soon"})]
        assert engine_queue.get_job(dead[1]) is None
    assert answers["flask"] == answers["dashboard"] and answers["fastapi"] == answers["dashboard"]
    assert answers["dashboard"] == [
        (200, {"retried": "<id>", "new_id": "<new>"}),
        (404, {"error": "no dead letter with id '<id>' (already retried, deleted or purged)"}),
        (409, {"error": "job <id> is pending, not dead: only dead letters can be retried", "status": "pending"}),
        (200, {"deleted": "<id>"}),
        (400, {"error": "older_than must be a number of seconds, got 'soon'"}),
    ]
    assert engine_queue.stats()["dead"] == 0


def test_bulk_actions_follow_the_one_rule_and_answer_alike_everywhere(adapters: dict[str, Call],
                                                                     engine_queue: Queue) -> None:
    """Selected jobs are cancelled, retried or deleted each as the single-job views would; the refused ones
    are listed with the reason those views give."""
    answers: dict[str, list[tuple[int, Any]]] = {}
    for name, call in adapters.items():
        dead = [_claimed(engine_queue, "tasks.explode", (n,), f"{name}-dead").id for n in range(3)]
        for job_id in dead:
            engine_queue.storage.fail(job_id, 1, "ValueError: boom", None, None)
        pending = engine_queue.enqueue("tasks.add", queue=f"{name}-pending").id
        running = _claimed(engine_queue, "tasks.slow", (1,), f"{name}-running").id
        status, retried = call("POST", "/dead-letters/retry", {"ids": [dead[0], pending, dead[0]]})
        assert status == 200 and retried["retried"] == 1
        assert engine_queue.get_job(retried["new_ids"][dead[0]]).status == "pending"
        names = {dead[0]: "<dead0>", dead[1]: "<dead1>", dead[2]: "<dead2>", pending: "<pending>",
                 running: "<running>"}
        answers[name] = [named(names, (status, {**retried, "new_ids": {dead[0]: "<new>"}})),
                         named(names, call("POST", "/dead-letters/delete", {"ids": [dead[1], dead[0]]})),
                         named(names, call("POST", "/jobs/cancel", {"ids": [pending, running, dead[2]]})),
                         call("POST", "/jobs/cancel", {"ids": "all"}),
                         call("POST", "/dead-letters/retry", {"ids": []})]
        assert engine_queue.get_job(dead[1]) is None and engine_queue.get_job(pending).status == "cancelled"
        assert engine_queue.get_job(running).record.cancel_requested
    assert answers["flask"] == answers["dashboard"] and answers["fastapi"] == answers["dashboard"]
    assert answers["dashboard"] == [
        (200, {"retried": 1, "new_ids": {"<dead0>": "<new>"}, "refused": [
            {"id": "<pending>", "error": "job <pending> is pending, not dead: only dead letters can be retried",
             "status": "pending"}]}),
        (200, {"deleted": 1, "refused": [
            {"id": "<dead0>", "error": "no dead letter with id '<dead0>' (already retried, deleted or purged)"}]}),
        (200, {"cancelled": 2, "cancel_requested": ["<running>"], "refused": [
            {"id": "<dead2>", "error": "job <dead2> is dead already: only a job that has not finished can be cancelled",
             "cancelled": False, "status": "dead"}]}),
        (400, {"error": "ids must be a list of 1 to 500 job ids (strings) in the JSON body, got 'all'"}),
        (400, {"error": "ids must be a list of 1 to 500 job ids (strings) in the JSON body, got []"}),
    ]


def test_every_adapter_serves_every_view_of_the_table(adapters: dict[str, Call], engine_queue: Queue) -> None:
    """A view added to taskito.views.VIEWS is served by all three with no other change."""
    job = engine_queue.enqueue("tasks.add")
    workflow_id = stored_workflow(engine_queue)
    for view in views.VIEWS:
        if view.changes:
            continue  # the tests above change things; here only that each path is routed
        path = view.path.replace("{job_id}", job.id).replace("{name:path}", "default").replace(
            "{workflow_id}", workflow_id)
        for name, call in adapters.items():
            status, body = call("GET", path)
            assert status == 200, (name, path, body)


def test_a_workflow_is_the_same_json_everywhere(adapters: dict[str, Call], engine_queue: Queue) -> None:
    from taskito import chord

    @engine_queue.task(name="tasks.add")
    def add(a: int, b: int) -> int:
        return a + b

    workflow = chord([add.s(i, i) for i in range(3)], add.s(1)).delay()
    status, body = same_everywhere(adapters, "GET", f"/workflows/{workflow.id}?per_stage=2")
    assert status == 200 and body["status"] == "pending"
    assert [[job["id"] for job in stage["jobs"]] for stage in body["stages"]] == [
        [job.id for job in workflow.jobs[:2]], [workflow.jobs[3].id]]
    assert [stage["more"] for stage in body["stages"]] == [1, 0]
    _, member = same_everywhere(adapters, "GET", f"/jobs/{workflow.jobs[0].id}")
    assert member["workflow_id"] == workflow.id
    assert same_everywhere(adapters, "GET", "/workflows/" + "0" * 32)[0] == 404
    assert same_everywhere(adapters, "GET", f"/workflows/{workflow.id}?per_stage=none") == (
        400, {"error": "per_stage must be a whole number from 1 to 1000000, got 'none'"})
