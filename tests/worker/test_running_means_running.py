"""`running` means the job's function runs: jobs a worker holds in its prefetch buffer are pending.

Real `taskito worker` subprocesses on SQLite and PostgreSQL. A worker claims up to its concurrency
+ 16 jobs at a time; the ones waiting in its buffer are shown as pending (with the worker's id)
everywhere a user looks, and a job's run time is the time its function ran, not the time it waited.
"""

from __future__ import annotations

import os
import re
import signal
from collections import Counter
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from werkzeug.test import Client

from taskito import Queue
from taskito.contrib.fastapi import TaskitoRouter
from taskito.dashboard import create_app
from tests.support import Process, start_worker, wait_until
from tests.worker.conftest import APPS, effects

APP = "worker_app:queue"
TOKEN = "running-test-token"


@pytest.fixture
def worker_env(engine_settings: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The environment of worker subprocesses on this test's engine (SQLite file or PostgreSQL schema)."""
    env = {"EFFECTS_DIR": str(tmp_path), "TASKITO_LEASE_SECONDS": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(APPS), os.environ.get("PYTHONPATH")]))}
    if "db_path" in engine_settings:
        return {**env, "TASKITO_BACKEND": "sqlite", "TASKITO_DB_PATH": engine_settings["db_path"]}
    return {**env, "TASKITO_BACKEND": "postgres", "TASKITO_DB_URL": engine_settings["db_url"],
            "TASKITO_SCHEMA": engine_settings["schema"]}


@pytest.fixture
def client(engine_settings: dict[str, str]) -> Queue:
    """The web app's side: a queue on the same database that enqueues by task name."""
    queue = Queue(**engine_settings)
    yield queue
    queue.close()


def started(tmp_path: Path) -> set[str]:
    """Ids of the jobs whose function has started (worker_app.slow touches started-<id> first)."""
    return {path.name.removeprefix("started-") for path in tmp_path.glob("started-*")}


def metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    [line] = [line for line in text.splitlines() if line.startswith(f"{name}{{{wanted}}} ")]
    return float(line.rsplit(" ", 1)[1])


def test_a_two_thread_worker_shows_two_running_and_holds_the_rest_as_pending(
        client: Queue, worker_env: dict[str, str], tmp_path: Path) -> None:
    jobs = [client.enqueue("worker_app.slow", args=(5.0,)) for _ in range(12)]
    worker = start_worker(APP, APPS, "--concurrency", "2", "--drain-timeout", "0.5", env=worker_env)
    try:
        [alive] = wait_until(client.workers, 10, message="the worker's heartbeat row")
        # Two functions started, and the worker claimed the ten others into its buffer.
        wait_until(lambda: len(started(tmp_path)) == 2 and client.stats()["running"] == 2
                   and all(job.record.worker_id for job in client.list_jobs(limit=20)), 15,
                   message="two jobs running and the others claimed")
        running = started(tmp_path)
        assert client.stats() == {"pending": 10, "running": 2, "completed": 0, "failed": 0, "dead": 0,
                                  "cancelled": 0}
        assert client.stats_all_queues()["default"]["running"] == 2
        assert {job.id for job in client.list_jobs(status="running")} == running
        waiting = client.list_jobs(status="pending")
        assert len(waiting) == 10 and not {job.id for job in waiting} & running
        prefetched = next(job for job in jobs if job.id not in running)
        record = prefetched.refresh().record
        assert (prefetched.status, record.worker_id, record.started_at) == ("pending", alive["id"], None)

        dashboard = Client(create_app(client, token=TOKEN))
        auth = {"Authorization": f"Bearer {TOKEN}"}
        api = dashboard.get("/api/stats", headers=auth).json
        assert (api["stats"]["running"], api["stats"]["pending"]) == (2, 10)
        assert api["queues"]["default"]["running"] == 2
        detail = dashboard.get(f"/api/jobs/{prefetched.id}", headers=auth).json
        assert (detail["status"], detail["worker_id"], detail["started_at"]) == ("pending", alive["id"], None)
        metrics = dashboard.get("/metrics", headers=auth).get_data(as_text=True)
        assert metric(metrics, "taskito_jobs", queue="default", status="running") == 2
        assert metric(metrics, "taskito_jobs", queue="default", status="pending") == 10
        fastapi = FastAPI()
        fastapi.include_router(TaskitoRouter(client), prefix="/tasks")
        health = TestClient(fastapi).get("/tasks/stats").json()
        assert (health["running"], health["pending"]) == (2, 10)
    finally:
        worker.signal(signal.SIGINT)
        assert worker.wait() == 0
    # A gracefully stopping worker puts back what it held, started or not.
    stats = client.stats()
    assert stats["running"] == 0 and stats["pending"] + stats["completed"] == 12
    assert all(job.record.worker_id is None for job in client.list_jobs(status="pending"))


@pytest.mark.parametrize("pool", ["thread", "prefork"])
def test_a_short_job_that_waited_in_the_buffer_records_its_own_run_time(
        client: Queue, worker_env: dict[str, str], tmp_path: Path, pool: str) -> None:
    blocker = client.enqueue("worker_app.slow", args=(2.0,), priority=9)
    quick = [client.enqueue("worker_app.slow", args=(0.05,)) for _ in range(3)]
    worker = start_worker(APP, APPS, "--concurrency", "1", "--pool", pool, env=worker_env)
    try:
        for job in quick:
            job.result(timeout=30)
    finally:
        worker.stop()
    logged = log_durations(worker)
    for job in [blocker, *quick]:
        record = job.refresh().record
        ran = record.finished_at - record.started_at
        assert abs(ran * 1000 - logged[job.id]) < 5, (job.id, ran, logged[job.id])
    for job in quick:
        record = job.record
        assert 0.05 <= record.finished_at - record.started_at < 0.5  # not the 2 s it waited behind the blocker
        assert record.started_at >= blocker.record.finished_at - 0.01
    assert sorted(effects(tmp_path)) == sorted(f"slow {job.id}" for job in [blocker, *quick])


def log_durations(worker: Process) -> dict[str, float]:
    """Each job's duration from the worker's log line "job <id> <task> complete in N ms"."""
    found = (re.search(r"job (\w+) \S+ complete in ([0-9.]+) ms", line) for line in worker.lines)
    return {match.group(1): float(match.group(2)) for match in found if match}


def test_kill_9_with_claimed_jobs_in_the_buffer_loses_none(
        client: Queue, worker_env: dict[str, str], tmp_path: Path) -> None:
    first = client.enqueue("worker_app.slow", args=(2.0,), priority=9)
    claimed = [client.enqueue("worker_app.slow", args=(0.01,)) for _ in range(5)]
    victim = start_worker(APP, APPS, "--concurrency", "1", env=worker_env)
    try:
        wait_until(lambda: first.status == "running", 15, message="the first job to run")
        [alive] = client.workers()
        assert all((job.status, job.record.worker_id) == ("pending", alive["id"]) for job in claimed)
    finally:
        victim.kill()
    rescuer = start_worker(APP, APPS, env=worker_env)
    try:
        for job in [first, *claimed]:
            assert job.result(timeout=30) == "done"
    finally:
        rescuer.stop()
    ran = Counter(line.split()[1] for line in effects(tmp_path))
    assert ran == Counter({job.id: 1 for job in [first, *claimed]})
    assert all(job.record.retry_count == 1 for job in [first, *claimed])  # each lost one attempt
