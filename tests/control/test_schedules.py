"""Schedules you can manage: listed, paused across worker restarts, resumed, run now; from code and the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from taskito import JobNotFoundError, Queue
from tests.control.conftest import APP, APPS, lines
from tests.support import run_cli, start_worker, wait_until

SCHEDULE = "control_app.tick"


def ticks(tmp_path: Path) -> int:
    return len(lines(tmp_path, "ticks.log"))


def test_periodic_schedules_lists_declared_schedules_before_any_worker_ran(client: Queue) -> None:
    [schedule] = client.periodic_schedules()
    assert schedule["name"] == SCHEDULE and schedule["task"] == SCHEDULE
    assert schedule["cron"] == "* * * * * *" and schedule["timezone"] is None and schedule["queue"] == "default"
    assert schedule["last_run"] is None and schedule["paused"] is False and schedule["declared"] is True
    assert schedule["next_run"] <= time.time() + 1


def test_a_paused_schedule_stays_paused_across_worker_restarts_until_resumed(
        client: Queue, engine_env: dict[str, str], tmp_path: Path) -> None:
    client.pause_periodic(SCHEDULE)
    [schedule] = client.periodic_schedules()
    assert schedule["paused"] is True and schedule["next_run"] is None
    for _ in range(2):  # a first worker, then a restart (a deploy): the schedule stays paused
        worker = start_worker(APP, APPS, env=engine_env)
        try:
            # Several ticks pass (each second) with the worker up: none fires.
            job = client.enqueue("control_app.free", args=(1,))
            assert job.result(timeout=15) == 1
            time.sleep(2.5)  # an absence: nothing can announce that a paused tick did not fire
            assert ticks(tmp_path) == 0
        finally:
            worker.stop()
        assert worker.wait() == 0
    assert client.periodic_schedules()[0]["paused"] is True
    client.resume_periodic(SCHEDULE)
    worker = start_worker(APP, APPS, env=engine_env)
    try:
        wait_until(lambda: ticks(tmp_path) >= 2, 15, message="the resumed schedule to fire")
        [schedule] = client.periodic_schedules()
        assert schedule["paused"] is False and schedule["last_run"] is not None
        assert schedule["next_run"] > schedule["last_run"]
    finally:
        worker.stop()


def test_run_periodic_now_enqueues_one_job_even_while_paused(client: Queue, engine_env: dict[str, str],
                                                             tmp_path: Path) -> None:
    client.pause_periodic(SCHEDULE)
    job = client.run_periodic_now(SCHEDULE)
    assert job.status == "pending" and client.get_job(job.id).record.task_name == "control_app.tick"
    worker = start_worker(APP, APPS, env=engine_env)
    try:
        job.result(timeout=15)
        assert ticks(tmp_path) == 1
    finally:
        worker.stop()
    [schedule] = client.periodic_schedules()
    assert schedule["paused"] is True and schedule["last_run"] is not None


def test_unknown_schedule_names_are_refused_with_the_known_ones(client: Queue) -> None:
    for action in (client.pause_periodic, client.resume_periodic, client.run_periodic_now):
        with pytest.raises(JobNotFoundError, match=f"no periodic schedule named 'nope'.*{SCHEDULE}"):
            action("nope")
    assert client.stats()["pending"] == 0


def test_the_periodic_cli(client: Queue, engine_env: dict[str, str]) -> None:
    listed = run_cli("periodic", "list", "--app", APP, "--format", "json", cwd=APPS, env=engine_env)
    assert listed.returncode == 0, listed.stderr
    assert [item["name"] for item in json.loads(listed.stdout)] == [SCHEDULE]
    paused = run_cli("periodic", "pause", "--app", APP, SCHEDULE, cwd=APPS, env=engine_env)
    assert paused.returncode == 0 and f"paused schedule {SCHEDULE}" in paused.stdout
    table = run_cli("periodic", "list", "--app", APP, cwd=APPS, env=engine_env).stdout
    assert SCHEDULE in table and "paused" in table
    assert client.periodic_schedules()[0]["paused"] is True
    ran = run_cli("periodic", "run", "--app", APP, SCHEDULE, cwd=APPS, env=engine_env)
    assert ran.returncode == 0 and "enqueued job" in ran.stdout
    assert client.stats()["pending"] == 1
    resumed = run_cli("periodic", "resume", "--app", APP, SCHEDULE, cwd=APPS, env=engine_env)
    assert resumed.returncode == 0 and client.periodic_schedules()[0]["paused"] is False
    unknown = run_cli("periodic", "pause", "--app", APP, "nope", cwd=APPS, env=engine_env)
    assert unknown.returncode == 1 and "no periodic schedule named 'nope'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
