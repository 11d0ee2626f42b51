"""Every /api route through the WSGI app (no token here; see test_dashboard_security.py for the token)."""

from __future__ import annotations

import os
import time

import pytest

from taskito import Queue
from taskito.dashboard import create_app
from taskito.storage import Completion
from tests.dashboard.conftest import SCRIPT_ARG, DashClient, Populated

STATS = {"pending", "running", "completed", "failed", "dead", "cancelled"}


def test_stats_overall_and_per_queue_match_the_queue(client: DashClient, queue: Queue, populated: Populated) -> None:
    response = client.get("/api/stats")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.json
    assert body["stats"] == queue.stats() == {"pending": 3, "running": 1, "completed": 2, "failed": 1,
                                               "dead": 2, "cancelled": 1}
    assert body["queues"] == queue.stats_all_queues()
    assert body["queues"]["mail"]["running"] == 1
    assert body["paused"] == []


def test_queues_list_every_known_queue_with_its_counts(client: DashClient, queue: Queue,
                                                        populated: Populated) -> None:
    queue.pause("reports")  # paused but without jobs: still listed, so it can be resumed
    body = client.get("/api/queues").json
    by_name = {q["name"]: q for q in body["queues"]}
    assert set(by_name) == {"default", "mail", "reports"}
    reports = by_name["reports"]
    assert (reports["name"], reports["paused"], reports["stats"]) == ("reports", True, dict.fromkeys(STATS, 0))
    assert reports["oldest_due_at"] is None and reports["completed_recently"] == 0
    assert by_name["mail"]["stats"] == queue.stats_by_queue("mail")
    assert by_name["default"]["paused"] is False

    one = client.get("/api/queues/mail").json
    assert one == {"name": "mail", "paused": False, "stats": queue.stats_by_queue("mail")}


def test_pause_and_resume_a_queue(client: DashClient, queue: Queue) -> None:
    response = client.post("/api/queues/mail/pause")
    assert response.status_code == 200, response.json
    assert response.json == {"name": "mail", "paused": True}
    assert queue.paused_queues() == ["mail"]
    assert client.get("/api/queues/mail").json["paused"] is True
    assert client.post("/api/queues/mail/resume").json == {"name": "mail", "paused": False}
    assert queue.paused_queues() == []


def test_queue_names_with_slashes_and_unicode_round_trip(client: DashClient, queue: Queue) -> None:
    assert client.post("/api/queues/reports%2Fdaily-é/pause").status_code == 200
    assert queue.paused_queues() == ["reports/daily-é"]


def test_jobs_are_listed_newest_first_with_decoded_arguments(client: DashClient, populated: Populated) -> None:
    body = client.get("/api/jobs").json
    assert body["limit"] == 50 and body["offset"] == 0 and body["has_more"] is False
    assert len(body["jobs"]) == 10
    assert body["jobs"][0]["id"] == populated["cancelled"][0]
    echo = next(job for job in body["jobs"] if job["task_name"] == "tasks.echo")
    assert echo["preview"] == f'"{SCRIPT_ARG}", note="{SCRIPT_ARG}"'
    done = next(job for job in body["jobs"] if job["id"] == populated["complete"][1])
    assert done["status"] == "complete" and "result" not in done and "args" not in done


def test_lists_stay_small_when_jobs_carry_megabytes(client: DashClient, queue: Queue) -> None:
    """The page polls the job list every few seconds: only the job's own page sends everything."""
    big = "x" * 1_000_000
    job = queue.enqueue("tasks.echo", args=(big,))
    [record] = queue.storage.claim("w", ["default"], 1, 60)
    queue.storage.complete([Completion(record.id, record.attempt, queue.serializer.dumps(big))])
    listing = client.get("/api/jobs")
    assert len(listing.get_data()) < 5_000
    [summary] = listing.json["jobs"]
    assert summary["preview"].startswith('"xxx') and summary["preview"].endswith("…")
    detail = client.get(f"/api/jobs/{job.id}").json
    assert detail["args"] == [big] and detail["result"] == big


@pytest.mark.parametrize("path", ["/api/jobs/a%00b", "/api/jobs?queue=a%00b", "/api/queues/a%00b"])
def test_a_nul_character_in_an_id_or_name_is_a_bad_request(client: DashClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 400 and "NUL" in response.json["error"]


@pytest.mark.parametrize(("query", "expected"), [
    ("status=dead", {"dead"}),
    ("status=complete", {"complete"}),
    ("status=completed", {"complete"}),  # the name stats() uses works as well
    ("queue=mail", {"mail"}),
    ("task=tasks.add", {"tasks.add"}),
])
def test_jobs_filter_by_status_queue_and_task(client: DashClient, populated: Populated, query: str,
                                              expected: set[str]) -> None:
    jobs = client.get(f"/api/jobs?{query}").json["jobs"]
    key = query.split("=")[0]
    field = {"status": "status", "queue": "queue", "task": "task_name"}[key]
    assert jobs and {job[field] for job in jobs} == expected
    if key == "status":
        assert {job["id"] for job in jobs} == set(populated[next(iter(expected))])


def test_jobs_filters_combine(client: DashClient, populated: Populated) -> None:
    jobs = client.get("/api/jobs?status=dead&queue=mail&task=tasks.explode").json["jobs"]
    assert [job["id"] for job in jobs] == [populated["dead"][1]]
    assert client.get("/api/jobs?status=dead&queue=nope").json["jobs"] == []


def test_jobs_paginate_with_limit_offset_and_has_more(client: DashClient, populated: Populated) -> None:
    everything = [job["id"] for job in client.get("/api/jobs").json["jobs"]]
    first = client.get("/api/jobs?limit=4").json
    second = client.get("/api/jobs?limit=4&offset=4").json
    last = client.get("/api/jobs?limit=4&offset=8").json
    assert first["has_more"] and second["has_more"] and not last["has_more"]
    pages = [job["id"] for page in (first, second, last) for job in page["jobs"]]
    assert pages == everything


@pytest.mark.parametrize(("query", "message"), [
    ("status=finished", "unknown status 'finished'"),
    ("limit=abc", "limit must be a whole number"),
    ("limit=0", "limit must be from 1 to 500"),
    ("limit=501", "limit must be from 1 to 500"),
    ("offset=-1", "offset must be from 0"),
])
def test_bad_job_filters_are_a_400_that_names_the_value(client: DashClient, query: str, message: str) -> None:
    response = client.get(f"/api/jobs?{query}")
    assert response.status_code == 400
    assert message in response.json["error"]


def test_one_job_with_its_error_history(client: DashClient, queue: Queue, populated: Populated) -> None:
    dead_id = populated["dead"][0]
    body = client.get(f"/api/jobs/{dead_id}").json
    assert body["id"] == dead_id and body["status"] == "dead" and body["error"] == "ValueError: <b>boom 0</b>"
    assert body["errors"] == queue.job_errors(dead_id)
    assert [e["attempt"] for e in body["errors"]] == [1]
    assert body["errors"][0]["traceback"].startswith("Traceback")
    missing = client.get("/api/jobs/does-not-exist")
    assert missing.status_code == 404
    assert "no job with id 'does-not-exist'" in missing.json["error"]


def test_cancel_a_pending_job(client: DashClient, queue: Queue, populated: Populated) -> None:
    job_id = populated["pending"][0]
    response = client.post(f"/api/jobs/{job_id}/cancel")
    assert response.status_code == 200
    assert response.json == {"id": job_id, "cancelled": True, "status": "cancelled"}
    assert queue.get_job(job_id).status == "cancelled"


def test_cancel_asks_a_running_job_to_stop_and_refuses_finished_and_unknown_ids(
        client: DashClient, queue: Queue, populated: Populated) -> None:
    running = populated["running"][0]
    response = client.post(f"/api/jobs/{running}/cancel")
    assert response.status_code == 200 and response.json["cancel_requested"] is True
    assert queue.get_job(running).status == "running"  # until its worker stops it
    finished = client.post(f"/api/jobs/{populated['complete'][0]}/cancel")
    assert finished.status_code == 409 and "is complete already" in finished.json["error"]
    assert client.post("/api/jobs/nope/cancel").status_code == 404


def test_dead_letters_list_retry_and_delete(client: DashClient, queue: Queue, populated: Populated) -> None:
    listed = client.get("/api/dead-letters").json
    assert {job["id"] for job in listed["jobs"]} == set(populated["dead"])
    assert listed["has_more"] is False
    assert client.get("/api/dead-letters?limit=1").json["has_more"] is True

    first, second = populated["dead"]
    response = client.post(f"/api/dead-letters/{first}/retry")
    assert response.status_code == 200
    new_id = response.json["new_id"]
    assert response.json["retried"] == first
    assert queue.get_job(new_id).status == "pending"
    assert queue.get_job(first) is None
    again = client.post(f"/api/dead-letters/{first}/retry")
    assert again.status_code == 404 and "no dead letter" in again.json["error"]

    assert client.post(f"/api/dead-letters/{second}/delete").json == {"deleted": second}
    assert queue.get_job(second) is None
    assert client.post(f"/api/dead-letters/{second}/delete").status_code == 404
    assert queue.stats()["dead"] == 0


def test_purge_dead_letters(client: DashClient, queue: Queue, populated: Populated) -> None:
    assert client.post("/api/dead-letters/purge", json={"older_than": 3600}).json == {"purged": 0}
    assert queue.stats()["dead"] == 2
    assert client.post("/api/dead-letters/purge").json == {"purged": 2}
    assert queue.stats()["dead"] == 0
    bad = client.post("/api/dead-letters/purge", json={"older_than": "soon"})
    assert bad.status_code == 400 and "older_than must be a number of seconds, got 'soon'" in bad.json["error"]
    assert client.post("/api/dead-letters/purge", json={"older_than": -5}).status_code == 400
    not_object = client.post("/api/dead-letters/purge", json=[1])
    assert not_object.status_code == 400 and "must be a JSON object" in not_object.json["error"]


def test_workers_come_from_heartbeats(client: DashClient, queue: Queue) -> None:
    assert client.get("/api/workers").json["workers"] == []
    queue.storage.register_worker("w-1", {"hostname": "box", "pid": 42, "queues": ["default", "mail"],
                                          "concurrency": 4})
    body = client.get("/api/workers").json
    assert [(w["id"], w["hostname"], w["pid"], w["queues"], w["concurrency"]) for w in body["workers"]] == [
        ("w-1", "box", 42, ["default", "mail"], 4)]
    assert abs(body["now"] - time.time()) < 60


def test_tasks_lists_the_registered_task_names(client: DashClient, queue: Queue) -> None:
    @queue.task(name="reports.build")
    def build() -> None: ...

    body = client.get("/api/tasks").json
    assert body["tasks"] == ["reports.build"] and body["stats"] == [] and body["since"] == 3600


def test_throughput_counts_recent_completions_and_failures(client: DashClient, populated: Populated) -> None:
    body = client.get("/api/throughput?window=120&step=10").json
    assert body["step"] == 10 and body["window"] == 120 and len(body["points"]) == 12
    times = [point["t"] for point in body["points"]]
    assert times == sorted(times) and times[1] - times[0] == 10
    assert times[-1] <= body["now"] < times[-1] + 10  # the last bucket is the one filling now
    assert sum(p["completed"] for p in body["points"]) == 2
    assert sum(p["dead"] for p in body["points"]) == 2
    assert sum(p["failed"] for p in body["points"]) == 3  # one retrying attempt + two final ones


@pytest.mark.parametrize("query", ["step=0", "step=abc", "window=5&step=10", "window=999999"])
def test_throughput_rejects_bad_windows(client: DashClient, query: str) -> None:
    response = client.get(f"/api/throughput?{query}")
    assert response.status_code == 400 and response.json["error"]


def test_session_tells_the_page_its_mode(make_client, queue: Queue) -> None:
    body = make_client().get("/api/session").json
    assert body["auth"] is False and body["read_only"] is False and body["csrf_token"]
    assert make_client(read_only=True).get("/api/session").json["read_only"] is True


def test_session_names_the_queue_without_a_path_on_the_server(engine_queue: Queue) -> None:
    body = DashClient(create_app(engine_queue)).get("/api/session").json
    if engine_queue.backend == "sqlite":
        assert body["queue"] == "taskito.db" and os.path.dirname(engine_queue.db_path) not in str(body)
    else:
        assert body["queue"] == f"postgres schema {engine_queue.schema}" and "127.0.0.1" not in str(body)


def test_health(client: DashClient, queue: Queue) -> None:
    response = client.get("/health")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_health_is_503_when_the_database_does_not_answer(client: DashClient, queue: Queue, monkeypatch) -> None:
    def broken() -> list[str]:
        raise OSError("disk gone")

    monkeypatch.setattr(queue, "paused_queues", broken)
    response = client.get("/health")
    assert response.status_code == 503 and response.json == {"status": "unavailable"}


def test_unknown_routes_and_wrong_methods(client: DashClient) -> None:
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404 and missing.json["error"] == "no such page: /api/nothing-here"
    wrong = client.get("/api/dead-letters/purge")
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "POST"
    get_only = client.post("/api/stats")
    assert get_only.status_code == 405 and get_only.headers["Allow"] == "GET, HEAD"


def test_head_requests_send_headers_only(client: DashClient) -> None:
    response = client.http.head("/api/stats")
    assert response.status_code == 200 and response.get_data() == b""
    assert int(response.headers["Content-Length"]) > 0


def test_non_finite_results_still_give_valid_json(client: DashClient, queue: Queue) -> None:
    job = queue.enqueue("tasks.nan")
    [record] = queue.storage.claim("w", ["default"], 1, 60)
    queue.storage.complete([Completion(record.id, record.attempt, b"NaN")])
    response = client.get(f"/api/jobs/{job.id}")
    assert response.status_code == 200
    assert response.json["result"] == "nan"


def test_an_unexpected_error_is_a_500_without_details(client: DashClient, queue: Queue, monkeypatch,
                                                      caplog) -> None:
    def broken() -> dict[str, int]:
        raise RuntimeError("secret connection string")

    monkeypatch.setattr(queue, "stats", broken)
    response = client.get("/api/stats")
    assert response.status_code == 500
    assert "secret" not in response.get_data(as_text=True)
    assert "secret connection string" in caplog.text  # but the operator finds it in the log


def test_a_workflow_shows_its_steps_in_order_and_each_job_links_to_it(client: DashClient, queue: Queue) -> None:
    from taskito import chord

    @queue.task(name="tasks.add")
    def add(a: int, b: int) -> int:
        return a + b

    workflow = chord([add.s(i, i) for i in range(5)], add.s(1)).delay()
    member = client.get(f"/api/jobs/{workflow.jobs[2].id}").json
    assert member["workflow_id"] == workflow.id
    body = client.get(f"/api/workflows/{workflow.id}?per_stage=3").json
    assert (body["id"], body["kind"], body["status"]) == (workflow.id, "chord", "pending")
    assert [(stage["size"], stage["group"], stage["more"]) for stage in body["stages"]] == [(5, True, 2), (1, False, 0)]
    assert [job["id"] for job in body["stages"][0]["jobs"]] == [job.id for job in workflow.jobs[:3]]
    assert {job["status"] for stage in body["stages"] for job in stage["jobs"]} == {"pending"}
    assert client.get(f"/api/workflows/{workflow.id}").json["stages"][0]["more"] == 0
    assert client.get("/api/workflows/" + "0" * 32).status_code == 404
    assert client.get(f"/api/workflows/{workflow.id}?per_stage=0").status_code == 400
    assert client.get(f"/api/jobs/{queue.enqueue('tasks.add', args=(1, 2)).id}").json["workflow_id"] is None
