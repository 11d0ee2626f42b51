"""The management commands as users run them: ``manage.py taskito_*`` subprocesses on the test databases."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import sys
import urllib.error
import urllib.request
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from taskito_django import queue
from tests.django.conftest import HERE, MANAGE, effects, finish_all, manage, start_django_worker, subprocess_env
from tests.support import Process, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_info_prints_the_cli_table_with_paused_queues() -> None:
    queue.enqueue("djapp.tasks.add", args=(1, 2))
    queue.enqueue("djapp.tasks.report", args=("q3",))
    queue.pause("reports")
    result = manage("taskito_info")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["queue", "pending", "running", "completed", "failed", "dead", "cancelled"]
    assert lines[1].split() == ["all", "2", "0", "0", "0", "0", "0"]
    assert "reports (paused)" in result.stdout
    assert "workers: 0" in result.stdout


def test_info_json_and_call_command_capture() -> None:
    queue.enqueue("djapp.tasks.add", args=(1, 2))
    data = json.loads(manage("taskito_info", "--format", "json").stdout)
    assert data["stats"]["pending"] == 1 and data["queues"]["default"]["pending"] == 1
    assert data["paused"] == [] and data["workers"] == []
    out = StringIO()
    call_command("taskito_info", "--format", "json", stdout=out)  # output goes to the command's stdout
    assert json.loads(out.getvalue())["stats"]["pending"] == 1


def test_info_watch_refreshes_until_interrupted() -> None:
    process = Process([sys.executable, MANAGE, "taskito_info", "--watch", "--interval", "0.2", "--format", "json"],
                      cwd=HERE, env=subprocess_env())
    try:
        wait_until(lambda: sum(line.startswith("{") for line in process.lines) >= 2, 30, message="two refreshes")
        queue.enqueue("djapp.tasks.add", args=(1, 2))
        wait_until(lambda: any('"pending": 1' in line for line in process.lines), 30, message="a refresh with the job")
        process.signal(signal.SIGINT)
        assert process.wait(15) == 0
    finally:
        process.stop()


def test_purge_deletes_old_finished_jobs() -> None:
    for n in range(2):
        queue.enqueue("djapp.tasks.add", args=(n, n))
    finish_all()
    queue.enqueue("djapp.tasks.add", args=(9, 9))
    finish_all(error="ValueError: boom")
    result = manage("taskito_purge")  # defaults: older than a day, so nothing yet
    assert result.stdout.splitlines() == ["purged 0 completed job(s)", "purged 0 dead letter(s)",
                                          "purged 0 cancelled job(s)"]
    result = manage("taskito_purge", "--completed-older-than", "0")
    assert result.stdout.splitlines() == ["purged 2 completed job(s)"]
    assert manage("taskito_purge", "--dead-older-than", "0").stdout.splitlines() == ["purged 1 dead letter(s)"]
    assert queue.stats()["completed"] == queue.stats()["dead"] == 0


def test_dead_list_retry_and_retry_all() -> None:
    assert manage("taskito_dead", "list").stdout.strip() == "no dead letters"
    for n in range(3):
        queue.enqueue("djapp.tasks.explode", args=(f"boom {n}",))
    dead_ids = finish_all(error="ValueError: boom")
    listed = manage("taskito_dead", "list").stdout
    assert all(job_id in listed for job_id in dead_ids) and "ValueError: boom" in listed
    as_json = json.loads(manage("taskito_dead", "list", "--format", "json", "--limit", "2").stdout)
    assert len(as_json) == 2 and as_json[0]["status"] == "dead"

    retried = manage("taskito_dead", "retry", dead_ids[0])
    assert re.fullmatch(rf"{dead_ids[0]} replayed as [0-9a-f]{{32}}", retried.stdout.strip()), retried.stdout
    assert manage("taskito_dead", "retry-all").stdout.strip() == "replayed 2 dead letter(s)"
    assert queue.stats()["dead"] == 0 and queue.stats()["pending"] == 3


def test_dead_retry_of_an_unknown_id_is_a_clear_error() -> None:
    result = manage("taskito_dead", "retry", "nope")
    assert result.returncode == 1
    assert "no dead letter with id nope" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(CommandError, match="no dead letter with id nope"):
        call_command("taskito_dead", "retry", "nope")


def test_periodic_lists_and_names_an_unknown_schedule_clearly() -> None:
    assert manage("taskito_periodic", "list").stdout.strip() == "no periodic schedules"
    assert manage("taskito_periodic", "list", "--format", "json").stdout.strip() == "[]"
    result = manage("taskito_periodic", "pause", "nope")
    assert result.returncode == 1
    assert "no periodic schedule named 'nope'" in result.stderr and "Traceback" not in result.stderr


def test_check_compares_the_counters_with_a_recount_and_repairs_them() -> None:
    queue.enqueue("djapp.tasks.add", args=(1, 2))
    assert manage("taskito_check").stdout.strip() == "counters match the jobs table"
    with sqlite3.connect(queue.db_path) as conn:  # counters broken behind taskito's back
        conn.execute("UPDATE taskito_counts SET n = n + 5 WHERE status = 'pending'")
    assert queue.stats()["pending"] == 6
    result = manage("taskito_check")
    assert result.returncode == 1 and "counted 6, found 1" in result.stdout
    assert "1 counter(s) differ" in result.stderr and "Traceback" not in result.stderr
    result = manage("taskito_check", "--repair")
    assert result.returncode == 0 and "repaired 1 counter(s)" in result.stdout
    assert queue.stats()["pending"] == 1


def test_bad_flags_are_usage_errors() -> None:
    result = manage("taskito_worker", "--concurrency", "0")
    assert result.returncode == 2
    assert "argument --concurrency" in result.stderr and "0" in result.stderr
    result = manage("taskito_info", "--format", "yaml")
    assert result.returncode == 2 and "--format" in result.stderr


def test_worker_runs_jobs_and_stops_cleanly_on_sigint(effects_file: Path) -> None:
    worker = start_django_worker("--concurrency", "2")
    try:
        assert queue.enqueue("djapp.tasks.add", args=(2, 3)).result(timeout=30) == 5
        assert queue.workers()[0]["concurrency"] == 2
        worker.signal(signal.SIGINT)
        assert worker.wait(30) == 0
        assert "stopped" in worker.output
    finally:
        worker.stop()


def test_worker_logs_json_lines_with_log_format_json() -> None:
    worker = start_django_worker("--concurrency", "1", "--log-format", "json")
    try:
        job = queue.enqueue("djapp.tasks.add", args=(2, 3))
        assert job.result(timeout=30) == 5
        worker.wait_for_line("complete in")
    finally:
        worker.stop()
    lines = [json.loads(line) for line in worker.lines]
    assert any(line.get("job_id") == job.id and "complete in" in line["message"] for line in lines)
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)


def test_worker_serves_only_the_queues_it_is_given() -> None:
    worker = start_django_worker("--queues", "reports", "--concurrency", "1")
    try:
        report = queue.enqueue("djapp.tasks.report", args=("weekly",))
        add = queue.enqueue("djapp.tasks.add", args=(1, 1))
        assert report.result(timeout=30) == "report weekly"
        assert add.status == "pending"
    finally:
        worker.stop()


def test_worker_serves_the_queues_of_its_tasks_and_of_the_tasks_backend() -> None:
    worker = start_django_worker("--concurrency", "1")
    try:
        line = worker.wait_for_line("started:")
        assert "queues default,emails,reports" in line, line
    finally:
        worker.stop()


def test_worker_closes_django_connections_around_every_task() -> None:
    worker = start_django_worker("--concurrency", "1")  # one thread: both tasks share its connection
    try:
        assert queue.enqueue("djapp.tasks.use_database").result(timeout=30) == 0
        assert queue.enqueue("djapp.tasks.connection_was_closed").result(timeout=30) is True
        assert queue.enqueue("djapp.tasks.use_database").result(timeout=30) == 0  # and reopens on demand
    finally:
        worker.stop()


def test_worker_runs_system_checks_before_starting() -> None:
    bad = {"DJTEST_SETTINGS": json.dumps({"TASKITO_DB_PATH": "relative.db"})}
    result = manage("taskito_worker", env=bad, timeout=60)
    assert result.returncode == 1
    assert "taskito.E001" in result.stderr and "started:" not in result.stderr


def test_the_view_enqueues_on_commit_and_the_worker_runs_it(client: Any, effects_file: Path) -> None:
    from djapp.models import Order

    worker = start_django_worker("--concurrency", "2")
    try:
        order_id = client.post("/order/", {"item": "lamp"}).json()["order"]
        # The task updates the order, then records its effect: wait for the later of the two.
        wait_until(lambda: any(line.startswith(f"paid {order_id} ") for line in effects(effects_file)), 30,
                   message="the task to record the payment")
        assert Order.objects.get(pk=order_id).status == "paid"
    finally:
        worker.stop()


def test_dashboard_command_serves_the_dashboard_until_sigint() -> None:
    process = Process([sys.executable, MANAGE, "taskito_dashboard", "--port", "0", "--read-only"], cwd=HERE,
                      env=subprocess_env())
    try:
        line = process.wait_for_line("serving on http://", timeout=30)
        assert "read-only" in line
        url = re.search(r"http://[\d.]+:\d+/", line).group(0)  # type: ignore[union-attr]
        with urllib.request.urlopen(url + "health", timeout=10) as response:
            assert json.load(response) == {"status": "ok"}
        with urllib.request.urlopen(url + "api/stats", timeout=10) as response:
            assert "pending" in json.dumps(json.load(response))
        process.signal(signal.SIGINT)
        assert process.wait(15) == 0
    finally:
        process.stop()


def _status_with_token(url: str, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url + "api/stats", headers=headers), timeout=10) as reply:
            return reply.status
    except urllib.error.HTTPError as refused:
        return refused.code


@pytest.mark.parametrize("environment", [{}, {"TASKITO_DASHBOARD_TOKEN": "from-env"}])
def test_dashboard_command_takes_its_token_from_the_settings_before_the_environment(environment: dict) -> None:
    env = {"DJTEST_SETTINGS": json.dumps({"TASKITO_DASHBOARD_TOKEN": "from-settings"}), **environment}
    process = Process([sys.executable, MANAGE, "taskito_dashboard", "--port", "0"], cwd=HERE,
                      env={**subprocess_env(), **env})
    try:
        url = re.search(r"http://[\d.]+:\d+/", process.wait_for_line("serving on http://", timeout=30)).group(0)
        assert _status_with_token(url, None) == 401
        assert _status_with_token(url, "from-env") == 401
        assert _status_with_token(url, "from-settings") == 200
    finally:
        process.stop()


def test_worker_with_an_unusable_database_is_one_clean_error() -> None:
    bad = {"DJTEST_SETTINGS": json.dumps({"TASKITO_DB_PATH": "/proc/taskito/queue.db"})}
    result = manage("taskito_worker", "--no-wait-for-db", env=bad, timeout=60)
    assert result.returncode == 1
    assert "CommandError: cannot create the directory of the taskito database '/proc/taskito/queue.db'" \
        in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_waits_for_an_unreachable_postgres_until_stopped() -> None:
    settings = {"TASKITO_BACKEND": "postgres", "TASKITO_DB_URL": "postgresql://postgres@127.0.0.1:9/test"}
    env = {"DJTEST_SETTINGS": json.dumps(settings)}
    refused = manage("taskito_worker", "--no-wait-for-db", env=env, timeout=60)
    assert refused.returncode == 1 and "127.0.0.1:9" in refused.stderr and "Traceback" not in refused.stderr
    waiting = Process([sys.executable, MANAGE, "taskito_worker"], cwd=HERE, env={**subprocess_env(), **env})
    try:
        waiting.wait_for_line("waiting for the database (attempt 2)", timeout=30)
    finally:
        waiting.signal(signal.SIGINT)
    assert waiting.wait(timeout=30) == 0
    assert "stopped before the database became reachable" in waiting.output
