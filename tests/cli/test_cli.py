"""The `taskito` command as users type it: real subprocesses, real exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from taskito import Queue
from tests.support import run_cli
from tests.worker.conftest import APPS

APP = "worker_app:queue"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    # The PYTHONPATH kept: the subprocesses must import the taskito under test, not an installed one.
    values = {"TASKITO_DB_PATH": str(tmp_path / "taskito.db"),
              "PYTHONPATH": os.pathsep.join(filter(None, [str(APPS), os.environ.get("PYTHONPATH")]))}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture
def client(env: dict[str, str]) -> Queue:
    return Queue(db_path=env["TASKITO_DB_PATH"])


def make_dead(client: Queue, count: int) -> list[str]:
    """Dead letters made the way a worker makes them: claimed, then failed with no retry left."""
    jobs = client.enqueue_many("worker_app.add", [(i, i) for i in range(count)], max_retries=0)
    for record in client.storage.claim("cli-test", ["default"], count, 30):
        client.storage.fail(record.id, record.attempt, "ValueError: declined", None, None)
    return [job.id for job in jobs]


@pytest.mark.parametrize("spec, message", [
    ("worker_app", "must look like 'module:attribute'"),
    ("no_such_module:queue", "no module named 'no_such_module'"),
    ("worker_app:nothing", "has no attribute 'nothing'"),
    ("worker_app:add", "is a TaskWrapper, not a taskito.Queue"),
])
@pytest.mark.parametrize("command", [["worker"], ["info"], ["pause", "q"], ["purge"], ["dead", "list"]])
def test_bad_app_is_one_line_and_exit_2(env: dict[str, str], command: list[str], spec: str, message: str) -> None:
    result = run_cli(*command, "--app", spec, cwd=APPS)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_module_that_raises_on_import_is_reported_in_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "broken_app.py").write_text("raise RuntimeError('settings missing')\n")
    result = run_cli("info", "--app", "broken_app:queue", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == ("Error: --app 'broken_app:queue': importing 'broken_app' failed: "
                                     "RuntimeError: settings missing")


@pytest.mark.parametrize("call, shown", [("sys.exit()", "sys.exit(None)"), ("sys.exit(0)", "sys.exit(0)"),
                                         ("sys.exit('no settings')", "sys.exit('no settings')")])
@pytest.mark.parametrize("command", [["worker"], ["worker", "--no-wait-for-db"], ["info"]])
def test_a_module_that_exits_on_import_is_reported_in_one_line(tmp_path: Path, env: dict[str, str],
                                                               command: list[str], call: str, shown: str) -> None:
    (tmp_path / "exiting_app.py").write_text(f"import sys\n{call}\n")
    result = run_cli(*command, "--app", "exiting_app:queue", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: --app 'exiting_app:queue': importing 'exiting_app' called {shown}; ")
    assert "__main__" in line


def test_bad_flags_are_usage_errors(env: dict[str, str]) -> None:
    result = run_cli("worker", "--app", APP, "--concurrency", "0", cwd=APPS)
    assert result.returncode == 2 and "--concurrency" in result.stderr
    result = run_cli("purge", "--app", APP, "--dead-older-than", "-1", cwd=APPS)
    assert result.returncode == 2 and "--dead-older-than" in result.stderr


def test_info_table_and_json(client: Queue, env: dict[str, str]) -> None:
    client.enqueue_many("worker_app.add", [(1, 2)] * 3)
    client.enqueue("worker_app.add", args=(1, 2), queue="emails")
    client.pause("emails")
    table = run_cli("info", "--app", APP, cwd=APPS)
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line.split() for line in table.stdout.splitlines() if line.strip()}
    assert rows["all"][1] == "4" and rows["default"][1] == "3"
    assert "emails (paused)" in table.stdout and "workers: 0" in table.stdout
    data = json.loads(run_cli("info", "--app", APP, "--format", "json", cwd=APPS).stdout)
    assert data["stats"] == client.stats()
    assert data["queues"]["emails"]["pending"] == 1 and data["paused"] == ["emails"]


def test_pause_and_resume(client: Queue, env: dict[str, str]) -> None:
    assert run_cli("pause", "--app", APP, "reports", cwd=APPS).stdout.strip() == "paused reports"
    assert client.paused_queues() == ["reports"]
    # paused before any job arrives: info still shows it
    assert "reports (paused)" in run_cli("info", "--app", APP, cwd=APPS).stdout
    assert run_cli("resume", "--app", APP, "reports", cwd=APPS).stdout.strip() == "resumed reports"
    assert client.paused_queues() == []


def test_purge(client: Queue, env: dict[str, str]) -> None:
    make_dead(client, 2)
    result = run_cli("purge", "--app", APP, "--dead-older-than", "0", cwd=APPS)
    assert result.returncode == 0 and "purged 2 dead letter(s)" in result.stdout
    assert client.stats()["dead"] == 0
    cancelled = client.enqueue("worker_app.add", args=(1, 1))
    client.cancel_job(cancelled.id)
    result = run_cli("purge", "--app", APP, cwd=APPS)  # defaults: older than a day, so it stays
    assert result.stdout.splitlines() == ["purged 0 completed job(s)", "purged 0 dead letter(s)",
                                          "purged 0 cancelled job(s)"]
    result = run_cli("purge", "--app", APP, "--cancelled-older-than", "0", cwd=APPS)
    assert result.stdout.splitlines() == ["purged 1 cancelled job(s)"]
    assert client.get_job(cancelled.id) is None


def test_dead_list_retry_and_retry_all(client: Queue, env: dict[str, str]) -> None:
    assert "no dead letters" in run_cli("dead", "list", "--app", APP, cwd=APPS).stdout
    ids = make_dead(client, 3)
    listing = run_cli("dead", "list", "--app", APP, cwd=APPS)
    assert all(job_id in listing.stdout for job_id in ids) and "ValueError: declined" in listing.stdout
    as_json = json.loads(run_cli("dead", "list", "--app", APP, "--format", "json", cwd=APPS).stdout)
    assert {job["id"] for job in as_json} == set(ids)

    retried = run_cli("dead", "retry", "--app", APP, ids[0], cwd=APPS)
    assert retried.returncode == 0
    new_id = retried.stdout.split()[-1]
    assert client.get_job(new_id).status == "pending"
    missing = run_cli("dead", "retry", "--app", APP, ids[0], cwd=APPS)
    assert missing.returncode == 1 and f"no dead letter with id {ids[0]}" in missing.stderr

    assert "replayed 2 dead letter(s)" in run_cli("dead", "retry-all", "--app", APP, cwd=APPS).stdout
    assert client.stats()["dead"] == 0 and client.stats()["pending"] == 3
