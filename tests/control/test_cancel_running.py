"""Cancelling running jobs: thread tasks are told, coroutines are cancelled, prefork children are killed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from taskito import Queue, TaskCancelledError
from tests.control.conftest import APP, APPS, lines
from tests.support import start_worker, wait_until


def started(tmp_path: Path, job_id: str) -> int:
    """Wait until the job's function runs; returns the id of the process running it."""
    marker = tmp_path / f"started-{job_id}"
    return wait_until(lambda: marker.exists() and marker.read_text() and int(marker.read_text()), 20,
                      message=f"job {job_id} to start")


def ended(client: Queue, job_id: str, timeout: float = 15) -> str:
    def status() -> str | None:
        job = client.get_job(job_id)
        return job.status if job is not None and job.status in ("complete", "dead", "cancelled") else None

    return wait_until(status, timeout, message=f"job {job_id} to finish")


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_running_thread_task_sees_cancelled_and_the_job_ends_cancelled_with_its_dependents(
        client: Queue, engine_env: dict[str, str], tmp_path: Path) -> None:
    worker = start_worker(APP, APPS, "--concurrency", "2", env=engine_env)
    try:
        job = client.enqueue("control_app.cooperative")
        dependent = client.enqueue("control_app.after", args=("never",), depends_on=job)
        started(tmp_path, job.id)
        wait_until(lambda: client.get_job(job.id).status == "running", 10, message="the job to show as running")
        assert client.cancel_job(job.id) is True
        assert ended(client, job.id) == "cancelled"
        assert f"saw-cancel {job.id}" in lines(tmp_path)  # it returned on its own, yet the job is cancelled
        with pytest.raises(TaskCancelledError):
            job.result(timeout=1)
        assert ended(client, dependent.id) == "cancelled"
        assert "after never" not in lines(tmp_path)
        assert client.cancel_job(job.id) is False  # finished: nothing left to cancel
        # The worker goes on with other jobs.
        assert client.enqueue("control_app.free", args=(1,)).result(timeout=15) == 1
    finally:
        worker.stop()
    assert worker.wait() == 0


def test_check_cancelled_raises_and_the_job_is_cancelled_not_failed(
        client: Queue, engine_env: dict[str, str], tmp_path: Path) -> None:
    worker = start_worker(APP, APPS, env=engine_env)
    try:
        job = client.enqueue("control_app.checking")
        started(tmp_path, job.id)
        assert client.cancel_job(job.id)
        assert ended(client, job.id) == "cancelled"
        record = client.get_job(job.id)
        assert "TaskCancelledError" in (record.error or "")
        assert client.job_errors(job.id) == []  # not a failed attempt: nothing to retry
    finally:
        worker.stop()


def test_an_async_task_has_its_coroutine_cancelled(client: Queue, engine_env: dict[str, str],
                                                   tmp_path: Path) -> None:
    worker = start_worker(APP, APPS, env=engine_env)
    try:
        job = client.enqueue("control_app.sleeping_coroutine")
        started(tmp_path, job.id)
        assert client.cancel_job(job.id)
        assert ended(client, job.id) == "cancelled"
        assert f"coroutine-cancelled {job.id}" in lines(tmp_path)
    finally:
        worker.stop()


def test_a_prefork_child_that_ignores_the_request_is_killed_after_the_grace(
        client: Queue, engine_env: dict[str, str], tmp_path: Path) -> None:
    worker = start_worker(APP, APPS, "--pool", "prefork", "--concurrency", "1", "--cancel-grace", "1", env=engine_env)
    try:
        job = client.enqueue("control_app.stubborn")
        pid = started(tmp_path, job.id)
        assert pid != worker.proc.pid
        assert client.cancel_job(job.id)
        assert ended(client, job.id) == "cancelled"
        wait_until(lambda: gone(pid), 10, message=f"the cancelled job's process {pid} to be killed")
        assert f"stubborn-finished {job.id}" not in lines(tmp_path)
        # A fresh child takes its place.
        assert client.enqueue("control_app.free", args=(7,)).result(timeout=15) == 7
    finally:
        worker.stop()
    assert worker.wait() == 0


def test_a_cooperative_prefork_task_sees_the_request_in_its_child(client: Queue, engine_env: dict[str, str],
                                                                 tmp_path: Path) -> None:
    worker = start_worker(APP, APPS, "--pool", "prefork", "--concurrency", "1", env=engine_env)
    try:
        job = client.enqueue("control_app.cooperative")
        pid = started(tmp_path, job.id)
        assert client.cancel_job(job.id)
        assert ended(client, job.id) == "cancelled"
        assert f"saw-cancel {job.id}" in lines(tmp_path)
        assert not gone(pid)  # it stopped by itself: its process lives on for the next job
    finally:
        worker.stop()


def test_cancel_of_a_waiting_or_unknown_job(client: Queue) -> None:
    job = client.enqueue("control_app.free", args=(1,), delay=3600)
    assert client.cancel_job(job.id) is True
    assert client.get_job(job.id).status == "cancelled"
    assert client.cancel_job("0" * 32) is False
    assert client.cancel_job("not a job id") is False
