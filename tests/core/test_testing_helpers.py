"""taskito.testing: what users call from their own test suites, and the --burst worker behind it."""

from __future__ import annotations

import os

from taskito import Queue
from taskito.testing import eager, run_jobs
from tests.support import run_cli
from tests.worker.conftest import APPS


def test_eager_context_manager_restores_the_mode(queue: Queue) -> None:
    @queue.task()
    def double(x: int) -> int:
        return 2 * x

    with eager(queue):
        assert double.delay(21).result() == 42
    assert queue.eager is False
    assert double.delay(1).status == "pending"


def test_run_jobs_runs_everything_due_including_released_dependents(queue: Queue) -> None:
    seen: list[str] = []

    @queue.task()
    def step(name: str) -> str:
        seen.append(name)
        return name

    first = step.delay("first")
    second = step.apply_async(args=("second",), depends_on=first)
    later = step.apply_async(args=("later",), delay=3600)
    assert run_jobs(queue) == 2
    assert seen == ["first", "second"]
    assert second.result(timeout=0) == "second"
    assert later.status == "pending"
    assert run_jobs(queue) == 0


def test_burst_worker_from_the_cli_exits_when_nothing_is_due(tmp_path, monkeypatch) -> None:
    db = str(tmp_path / "taskito.db")
    monkeypatch.setenv("TASKITO_DB_PATH", db)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(APPS), os.environ.get("PYTHONPATH")])))
    client = Queue(db_path=db)
    jobs = client.enqueue_many("worker_app.add", [(i, i) for i in range(50)])
    result = run_cli("worker", "--app", "worker_app:queue", "--burst", cwd=APPS)
    assert result.returncode == 0, result.stderr
    assert "burst worker stopping" in result.stderr
    assert [job.result(timeout=0) for job in jobs] == [2 * i for i in range(50)]
