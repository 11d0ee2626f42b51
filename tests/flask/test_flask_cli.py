"""``flask taskito ...``: the worker as a real subprocess, the other commands through Flask's CLI runner."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import sys
from pathlib import Path

import pytest
from flask import Flask

from taskito import Queue
from tests.flask import sample_app
from tests.flask.conftest import HERE, make_complete, make_dead, teardowns
from tests.support import Process, wait_until

FLASK = str(Path(sys.executable).with_name("flask"))


def flask_command(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Process:
    env = {"TASKITO_DB_PATH": str(tmp_path / "taskito.db"), "SAMPLE_TEARDOWN_LOG": str(tmp_path / "teardown.log"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])), **(env or {})}
    return Process([FLASK, "--app", "sample_app:create_app", "taskito", *args], cwd=HERE, env=env)


def test_worker_subprocess_runs_tasks_inside_the_app_context(app: Flask, tmp_path: Path) -> None:
    worker = flask_command(tmp_path, "worker", "--concurrency", "2")
    try:
        worker.wait_for_line("started:")
        with app.app_context():
            added = sample_app.add.delay(2, 3)
            probes = [sample_app.probe.delay(label) for label in ("one", "two", "three")]
            failed = sample_app.fail.delay()
        assert added.result(timeout=20) == 5
        assert [job.result(timeout=20) for job in probes] == [
            {"app": "sample_app", "greeting": "hello from config", "g_before": None, "label": label}
            for label in ("one", "two", "three")]
        wait_until(lambda: failed.status == "dead", 20, message="the failing job to be dead")
        assert failed.errors[0]["error"] == "RuntimeError: boom"
        # each task's app context was torn down after the task, in the worker process
        wait_until(lambda: sorted(teardowns(tmp_path)) == ["one", "three", "two"], 10, message="teardowns")
        [alive] = sample_app.taskito.queue_for(app).workers()
        assert alive["concurrency"] == 2
    finally:
        worker.signal(signal.SIGINT)
    assert worker.wait() == 0, worker.output
    assert "stopped" in worker.output and added.id in worker.output


def test_worker_logs_json_lines_with_log_format_json(app: Flask, tmp_path: Path) -> None:
    worker = flask_command(tmp_path, "worker", "--concurrency", "1", "--log-format", "json")
    try:
        worker.wait_for_line("started:")
        with app.app_context():
            added = sample_app.add.delay(2, 3)
        assert added.result(timeout=20) == 5
        worker.wait_for_line("complete in")
    finally:
        worker.signal(signal.SIGINT)
    assert worker.wait() == 0, worker.output
    lines = [json.loads(line) for line in worker.lines]
    assert any(line.get("job_id") == added.id and line["logger"] == "taskito.worker" for line in lines)


def test_worker_flags_and_bad_flags(tmp_path: Path) -> None:
    help_text = flask_command(tmp_path, "worker", "--help")
    assert help_text.wait() == 0
    for flag in ("--queues", "--concurrency", "--pool", "--drain-timeout", "--loglevel", "--log-format"):
        assert flag in help_text.output
    bad = flask_command(tmp_path, "worker", "--concurrency", "0")
    assert bad.wait() == 2 and "--concurrency" in bad.output and "Traceback" not in bad.output


def test_info_watch_refreshes_until_interrupted(app: Flask, tmp_path: Path) -> None:
    sample_app.taskito.queue_for(app).enqueue("sample.add", args=(1, 2))
    watch = flask_command(tmp_path, "info", "--watch", "--interval", "0.2", "--format", "json")
    try:
        wait_until(lambda: sum(line.startswith("{") for line in watch.lines) >= 2, 20, message="two refreshes")
    finally:
        watch.signal(signal.SIGINT)
    assert watch.wait() in (0, 1) and "Traceback" not in watch.output
    assert json.loads(next(line for line in watch.lines if line.startswith("{")))["stats"]["pending"] == 1


def run(app: Flask, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["taskito", *args])
    return result.exit_code, result.output


def test_info_table_and_json(app: Flask, app_queue: Queue) -> None:
    app_queue.enqueue("sample.add", args=(1, 2), queue="emails")
    app_queue.pause("emails")
    code, output = run(app, "info")
    assert code == 0 and "emails (paused)" in output and "workers: 0" in output
    code, output = run(app, "info", "--format", "json")
    data = json.loads(output)
    assert code == 0 and data["stats"]["pending"] == 1 and data["paused"] == ["emails"]
    assert data["queues"]["emails"]["pending"] == 1


def test_pause_and_resume(app: Flask, app_queue: Queue) -> None:
    assert run(app, "pause", "emails") == (0, "paused emails\n")
    assert app_queue.paused_queues() == ["emails"]
    assert run(app, "resume", "emails") == (0, "resumed emails\n")
    assert app_queue.paused_queues() == []


def test_purge(app: Flask, app_queue: Queue) -> None:
    make_complete(app_queue)
    make_dead(app_queue)
    code, output = run(app, "purge")  # defaults: older than a day, so these recent jobs stay
    assert code == 0 and "purged 0 completed job(s)" in output and "purged 0 dead letter(s)" in output
    code, output = run(app, "purge", "--completed-older-than", "0")
    assert code == 0 and output == "purged 1 completed job(s)\n"
    code, output = run(app, "purge", "--dead-older-than", "0")
    assert code == 0 and output == "purged 1 dead letter(s)\n"
    assert app_queue.stats()["completed"] == app_queue.stats()["dead"] == 0
    code, output = run(app, "purge", "--dead-older-than", "-1")
    assert code == 2 and "--dead-older-than" in output


def test_dead_list_retry_and_retry_all(app: Flask, app_queue: Queue) -> None:
    assert run(app, "dead", "list") == (0, "no dead letters\n")
    first, second, third = (make_dead(app_queue, error=f"RuntimeError: boom {n}") for n in range(3))
    code, output = run(app, "dead", "list")
    assert code == 0 and f"{first}  sample.fail  attempts=1  RuntimeError: boom 0" in output
    code, output = run(app, "dead", "list", "--format", "json", "--limit", "2")
    assert code == 0 and len(json.loads(output)) == 2

    code, output = run(app, "dead", "retry", first)
    assert code == 0 and output.startswith(f"{first} replayed as ")
    assert app_queue.get_job(output.split()[-1]).status == "pending"
    code, output = run(app, "dead", "retry", "no-such-job")
    assert code == 1 and "no dead letter with id no-such-job" in output

    assert run(app, "dead", "retry-all") == (0, "replayed 2 dead letter(s)\n")
    assert app_queue.stats()["dead"] == 0 and app_queue.stats()["pending"] == 3


def test_check_and_repair(app: Flask, app_queue: Queue) -> None:
    app_queue.enqueue("sample.add", args=(1, 2))
    assert run(app, "check") == (0, "counters match the jobs table\n")
    with sqlite3.connect(app_queue.db_path) as conn:  # counters broken behind taskito's back
        conn.execute("DELETE FROM taskito_counts")
    code, output = run(app, "check")
    assert code == 1 and "counted 0, found 1" in output and "1 counter(s) differ" in output
    assert run(app, "check", "--repair")[0] == 0 and app_queue.stats()["pending"] == 1


@pytest.mark.parametrize("command", ["worker", "info", "purge", "pause", "resume", "dead", "check"])
def test_every_command_is_in_the_group(app: Flask, command: str) -> None:
    code, output = run(app, command, "--help")
    assert code == 0 and "Usage:" in output


def closed_port() -> int:
    """A local port nothing listens on (bound once by the OS, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unreachable_postgres() -> dict[str, str]:
    pytest.importorskip("psycopg", reason="the PostgreSQL engine needs psycopg")
    return {"TASKITO_BACKEND": "postgres", "TASKITO_DB_URL": f"postgresql://postgres@127.0.0.1:{closed_port()}/test"}


def test_worker_waits_for_the_database_until_interrupted(tmp_path: Path) -> None:
    env = unreachable_postgres()
    worker = flask_command(tmp_path, "worker", env=env)
    try:
        worker.wait_for_line("waiting for the database (attempt 1)")
        worker.wait_for_line("waiting for the database (attempt 2)")  # still running, still retrying
        assert worker.proc.poll() is None
    finally:
        worker.signal(signal.SIGINT)
    assert worker.wait() == 0, worker.output
    assert "Traceback" not in worker.output and "started:" not in worker.output


def test_worker_without_wait_for_db_exits_with_one_line(tmp_path: Path) -> None:
    env = unreachable_postgres()
    port = env["TASKITO_DB_URL"].split(":")[-1].split("/")[0]
    help_text = flask_command(tmp_path, "worker", "--help")
    assert help_text.wait() == 0 and "--wait-for-db / --no-wait-for-db" in help_text.output
    worker = flask_command(tmp_path, "worker", "--no-wait-for-db", env=env)
    assert worker.wait() == 2, worker.output
    [line] = [line for line in worker.lines if line.strip()]
    assert f"cannot connect to PostgreSQL at 127.0.0.1:{port}" in line and "Traceback" not in worker.output


@pytest.mark.parametrize("command", [["info"], ["worker"], ["pause", "emails"], ["dead", "list"], ["purge"]])
def test_bad_setting_is_one_line_and_status_2(tmp_path: Path, command: list[str]) -> None:
    process = flask_command(tmp_path, *command, env={"TASKITO_WORKERS": "abc"})
    assert process.wait() == 2, process.output
    [line] = [line for line in process.lines if line.strip()]
    assert "TASKITO_WORKERS='abc'" in line and "Traceback" not in process.output


def test_periodic_commands(app: Flask, app_queue: Queue) -> None:
    assert run(app, "periodic", "list") == (0, "no periodic schedules\n")
    assert run(app, "periodic", "list", "--format", "json") == (0, "[]\n")
    code, output = run(app, "periodic", "run", "nope")
    assert code == 1 and "no periodic schedule named 'nope'" in output and "Traceback" not in output
