"""`taskito worker --pool prefork`: jobs in child processes, hard timeouts that really stop them."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from taskito import Queue, TaskFailedError
from tests.support import start_worker, wait_until
from tests.worker.conftest import APPS, effects

APP = "worker_app:queue"
PREFORK = ("--pool", "prefork", "--concurrency", "2")


@pytest.fixture
def client(app_env: dict[str, str]) -> Queue:
    return Queue(db_path=app_env["TASKITO_DB_PATH"])


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def started_pid(tmp_path: Path, job_id: str) -> int:
    marker = tmp_path / f"started-{job_id}"
    return wait_until(lambda: marker.exists() and marker.read_text() and int(marker.read_text()), 15,
                      message="the job to start")


def test_jobs_run_in_child_processes_of_the_worker(client: Queue, app_env: dict[str, str]) -> None:
    worker = start_worker(APP, APPS, *PREFORK, env=app_env)
    try:
        job = client.enqueue("worker_app.whoami")
        pid, parent = job.result(timeout=15)
        assert parent == worker.proc.pid and pid != worker.proc.pid
        assert job.progress == 100  # the child writes through its own connection
        assert client.enqueue("worker_app.add", args=(2, 3)).result(timeout=15) == 5
    finally:
        worker.signal(signal.SIGINT)
    assert worker.wait() == 0
    assert "2 child processes" in worker.output


def test_hard_timeout_kills_the_child_and_a_fresh_one_takes_its_place(client: Queue, app_env: dict[str, str],
                                                                       tmp_path: Path) -> None:
    worker = start_worker(APP, APPS, *PREFORK, env=app_env)
    try:
        job = client.enqueue("worker_app.pid_then_sleep", args=(30,), timeout=0.5, max_retries=0)
        pid = started_pid(tmp_path, job.id)
        with pytest.raises(TaskFailedError, match="timed out after 0.5s"):
            job.result(timeout=15)
        wait_until(lambda: gone(pid), 10, message=f"the timed-out child {pid} to be gone")
        assert client.enqueue("worker_app.add", args=(1, 1)).result(timeout=15) == 2
    finally:
        worker.stop()
    assert f"killing its process {pid}" in worker.output
    assert effects(tmp_path) == []


def test_a_child_that_dies_is_a_lost_attempt_and_the_retry_runs(client: Queue, app_env: dict[str, str]) -> None:
    worker = start_worker(APP, APPS, *PREFORK, env=app_env)
    try:
        job = client.enqueue("worker_app.crash_once")
        assert job.result(timeout=15) == "survived"
        [lost] = job.errors
        assert "died (exit code 7)" in lost["error"]
    finally:
        worker.stop()


def test_children_ignore_sigint_and_the_worker_drains_them(client: Queue, app_env: dict[str, str],
                                                           tmp_path: Path) -> None:
    worker = start_worker(APP, APPS, *PREFORK, env=app_env)
    job = client.enqueue("worker_app.pid_then_sleep", args=(1.0,))
    child = started_pid(tmp_path, job.id)
    os.kill(child, signal.SIGINT)  # what Ctrl-C or systemd's KillMode=control-group sends to every process
    worker.signal(signal.SIGINT)
    assert worker.wait() == 0
    assert job.status == "complete"
    assert effects(tmp_path) == [f"slept {job.id}"]


def test_a_task_may_start_processes_of_its_own(client: Queue, app_env: dict[str, str]) -> None:
    worker = start_worker(APP, APPS, *PREFORK, env=app_env)
    try:
        assert client.enqueue("worker_app.squares_in_processes", args=(5,)).result(timeout=30) == [0, 1, 4, 9, 16]
    finally:
        worker.signal(signal.SIGINT)
    assert worker.wait() == 0, worker.output


def test_children_of_a_killed_worker_exit_too(client: Queue, app_env: dict[str, str]) -> None:
    """kill -9 of the worker must not leave its children (and their connections) behind."""
    worker = start_worker(APP, APPS, *PREFORK, env=app_env)
    try:
        child, parent = client.enqueue("worker_app.whoami").result(timeout=15)
        assert parent == worker.proc.pid
    finally:
        worker.kill()
    wait_until(lambda: gone(child), 15, message=f"child {child} of the killed worker to exit")
