"""The dashboard's observability views: job logs, task metrics, queue wait, /ready and /metrics."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from taskito import Queue, current_job
from taskito.dashboard import create_app
from taskito.storage import Started
from tests.dashboard.conftest import DashClient


def run_all(queue: Queue) -> None:
    queue.run_worker(burst=True, concurrency=2)


def test_job_logs_view_follows_a_job_line_by_line(client: DashClient, queue: Queue) -> None:
    @queue.task()
    def chatty() -> None:
        current_job.log("first", step=1)
        current_job.log("second", level="error")

    job = chatty.delay()
    run_all(queue)
    body = client.get(f"/api/jobs/{job.id}/logs").json
    assert body["job_id"] == job.id
    assert [(line["level"], line["message"], line["extra"]) for line in body["lines"]] == [
        ("info", "first", {"step": 1}), ("error", "second", {})]
    newer = client.get(f"/api/jobs/{job.id}/logs?after={body['lines'][0]['id']}").json
    assert [line["message"] for line in newer["lines"]] == ["second"]
    missing = client.get("/api/jobs/0123456789abcdef0123456789abcdef/logs")
    assert missing.status_code == 404 and "no job with id" in missing.json["error"]
    bad = client.get(f"/api/jobs/{job.id}/logs?after=-1")
    assert bad.status_code == 400 and "after must be from 0" in bad.json["error"]


def test_tasks_view_ranks_failing_then_slow_tasks_first(client: DashClient, queue: Queue) -> None:
    @queue.task(name="fine")
    def fine() -> None: ...

    @queue.task(name="slow")
    def slow() -> None:
        time.sleep(0.3)

    @queue.task(name="broken", max_retries=0)
    def broken() -> None:
        raise ValueError("nope")

    for task in (fine, fine, slow, broken):
        task.delay()
    run_all(queue)
    body = client.get("/api/tasks?since=3600").json
    assert [entry["task_name"] for entry in body["stats"]] == ["broken", "slow", "fine"]
    assert body["tasks"] == ["broken", "fine", "slow"]
    by_name = {entry["task_name"]: entry for entry in body["stats"]}
    assert by_name["broken"]["failure_rate"] == 1.0 and by_name["broken"]["counts"]["dead"] == 1
    assert by_name["fine"]["counts"]["complete"] == 2
    assert by_name["slow"]["runtime"]["p95"] >= 0.25
    series = client.get("/api/task-series?since=3600&step=600").json
    assert series["step"] == 600 and 6 <= len(series["points"]) <= 7
    assert sum(point["tasks"].get("fine", {}).get("complete", 0) for point in series["points"]) == 2
    assert client.get("/api/tasks?since=10").status_code == 400
    assert "at most 1440" in client.get("/api/task-series?since=2678400&step=60").json["error"]


def test_queues_view_shows_how_long_the_oldest_due_job_waits(client: DashClient, queue: Queue) -> None:
    before = time.time()
    queue.enqueue("anything", queue="backlog")
    body = client.get("/api/queues").json
    backlog = next(entry for entry in body["queues"] if entry["name"] == "backlog")
    assert before <= backlog["oldest_due_at"] <= time.time() and backlog["stats"]["pending"] == 1
    assert client.get("/api/queues").json == body  # the same answer while it waits: its age is the caller's


def test_workers_view_shows_what_each_worker_runs_now(client: DashClient, queue: Queue) -> None:
    queue.storage.register_worker("w-1", {"hostname": "box", "pid": 42, "queues": ["default"], "concurrency": 1})
    job = queue.enqueue("long.task")
    [record] = queue.storage.claim("w-1", ["default"], 1, 60)
    queue.storage.start([Started(record.id, record.attempt, time.time())])
    [worker] = client.get("/api/workers").json["workers"]
    assert [(entry["id"], entry["task_name"]) for entry in worker["jobs"]] == [(job.id, "long.task")]


def test_ready_needs_the_database_and_a_live_worker(client: DashClient, queue: Queue, monkeypatch) -> None:
    response = client.get("/ready")
    assert response.status_code == 503 and response.json["status"] == "no live worker"
    queue.storage.register_worker("w-1", {"hostname": "box", "pid": 42, "queues": ["default"], "concurrency": 1})
    response = client.get("/ready")
    assert response.status_code == 200 and response.json == {"status": "ok", "database": True, "workers": 1}

    def broken() -> list[dict]:
        raise OSError("disk gone")

    monkeypatch.setattr(queue, "workers", broken)
    response = client.get("/ready")
    assert response.status_code == 503 and response.json["database"] is False


def test_ready_stays_open_when_a_token_guards_the_rest(queue: Queue) -> None:
    client = DashClient(create_app(queue, token="s3cret"))
    assert client.get("/ready").status_code == 503  # answered, not a login redirect
    assert client.get("/api/tasks").status_code == 401


def test_metrics_carry_the_oldest_job_age_and_the_wait_histogram(client: DashClient, queue: Queue) -> None:
    @queue.task(name="measured")
    def measured() -> None: ...

    measured.delay()
    measured.delay()
    run_all(queue)
    queue.enqueue("measured", queue="stuck")
    time.sleep(0.05)
    families = {family.name: family for family in
                text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))}
    [oldest] = [s for s in families["taskito_queue_oldest_due_age_seconds"].samples if s.labels["queue"] == "stuck"]
    assert oldest.value >= 0.05
    wait = families["taskito_task_wait_seconds"]
    assert wait.type == "histogram"
    counts = {s.labels.get("le"): s.value for s in wait.samples if s.name.endswith("_bucket")}
    assert counts["+Inf"] == 2 and list(counts.values()) == sorted(counts.values())
    attempts = {s.labels["outcome"]: s.value for s in families["taskito_task_attempts"].samples
                if s.labels["task"] == "measured"}
    assert attempts["complete"] == 2


def test_search_finds_a_job_by_id_and_says_when_none_has_it(client: DashClient, queue: Queue) -> None:
    job = queue.enqueue("some.task", (1,))
    assert [found["id"] for found in client.get(f"/api/search?q={job.id}").json["jobs"]] == [job.id]
    assert client.get("/api/search?q=nothing-here").json == {"q": "nothing-here", "jobs": []}
    assert client.get("/api/search").json["jobs"] == []
