"""--log-format json: one JSON object per log line, for log shippers, on the worker and every command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from taskito import Queue
from taskito.cli import main
from tests.support import run_cli, start_worker

APPS = Path(__file__).resolve().parent.parent / "apps"


@pytest.mark.parametrize("pool", ["thread", "prefork"])
def test_the_worker_logs_one_json_object_per_line_with_the_job_inside_a_job(app_env_sqlite: dict[str, str],
                                                                             pool: str) -> None:
    worker = start_worker("observe_app:queue", APPS, "--log-format", "json", "--pool", pool, env=app_env_sqlite)
    try:
        client = Queue()
        job = client.enqueue("observe_app.talks", ("hello",))
        assert job.result(timeout=20) == "hello"
        worker.wait_for_line("complete in")
    finally:
        worker.stop()
    lines = [json.loads(line) for line in worker.lines]  # every line parses: nothing else is printed
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    [inside] = [line for line in lines if line["logger"] == "observe_app"]
    assert inside["message"] == "inside the job: hello" and inside["level"] == "WARNING"
    assert inside["job_id"] == job.id and inside["task_name"] == "observe_app.talks"
    [done] = [line for line in lines if "complete in" in line["message"]]
    assert done["job_id"] == job.id and done["logger"] == "taskito.worker"
    assert any("started:" in line["message"] and "job_id" not in line for line in lines)
    client.close()


def test_every_command_takes_log_format_and_refuses_a_bad_one(app_env_sqlite: dict[str, str]) -> None:
    def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
        found: list[tuple[str, ...]] = []
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                found += commands(command, (*prefix, name))
            else:
                found.append((*prefix, name))
        return found

    every = commands(main)
    assert ("worker",) in every and ("dead", "list") in every
    for command in every:
        assert "--log-format" in run_cli(*command, "--help", cwd=APPS, env=app_env_sqlite).stdout, command
    paused = run_cli("pause", "--app", "observe_app:queue", "--log-format", "json", "default", cwd=APPS,
                     env=app_env_sqlite)
    assert paused.returncode == 0 and paused.stdout.strip() == "paused default"
    bad = run_cli("info", "--app", "observe_app:queue", "--log-format", "xml", cwd=APPS, env=app_env_sqlite)
    assert bad.returncode == 2 and "'xml' is not one of 'text', 'json'" in bad.stderr


@pytest.fixture
def app_env_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Worker subprocesses on this test's SQLite file (this process's Queue() reads it too)."""
    env = {"TASKITO_DB_PATH": str(tmp_path / "taskito.db"), "EFFECTS_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(APPS), os.environ.get("PYTHONPATH")]))}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


LOGS_THEN_EXITS = """
import logging, sys
from taskito.logformat import configure_logging
configure_logging("INFO", sys.argv[1])
log = logging.getLogger("app")
for number in range(500):
    log.info("line %d of %s", number, [number])
try:
    1 / 0
except ZeroDivisionError:
    log.exception("the last line")
"""


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_lines_written_by_the_log_thread_are_all_there_in_order_at_exit(log_format: str) -> None:
    """Lines are written by a thread of their own: a process that exits right after logging loses none, and
    an exception's traceback still comes with its line."""
    done = subprocess.run([sys.executable, "-c", LOGS_THEN_EXITS, log_format], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    if log_format == "json":
        lines = [json.loads(line) for line in done.stderr.splitlines()]
        assert [line["message"] for line in lines] == [f"line {n} of [{n}]" for n in range(500)] + ["the last line"]
        assert "ZeroDivisionError: division by zero" in lines[-1]["exception"]
    else:
        lines = done.stderr.splitlines()
        assert [line.split(": ", 1)[1] for line in lines[:500]] == [f"line {n} of [{n}]" for n in range(500)]
        assert lines[500].endswith("app: the last line") and lines[-1] == "ZeroDivisionError: division by zero"
