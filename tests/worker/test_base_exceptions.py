"""No task can take a worker thread (or child process) with it: tasks and hooks that raise a
BaseException which is not an Exception (CancelledError, GeneratorExit, a library's own)."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskito import MaxRetriesExceededError, Queue
from tests.support import start_worker
from tests.worker.conftest import APPS, effects

APP = "wedge_app:queue"
RAISED = {"cancelled": "CancelledError", "generator_exit": "GeneratorExit", "abort": "Abort"}


@pytest.fixture
def client(app_env: dict[str, str]) -> Queue:
    return Queue(db_path=app_env["TASKITO_DB_PATH"])


@pytest.mark.parametrize("pool", ["thread", "prefork"])
def test_base_exceptions_fail_their_attempt_and_the_worker_keeps_every_slot(
        pool: str, client: Queue, app_env: dict[str, str], tmp_path: Path) -> None:
    slots = len(RAISED)  # one job of each kind per slot: a slot lost to any of them shows
    worker = start_worker(APP, APPS, "--pool", pool, "--concurrency", str(slots), env=app_env)
    try:
        failing = {kind: client.enqueue("wedge_app.raises", args=(kind,)) for kind in RAISED}
        hooked = {kind: client.enqueue("wedge_app.hooked", args=(kind,)) for kind in RAISED}
        for kind, job in failing.items():
            with pytest.raises(MaxRetriesExceededError, match=f"failed 2 times: {RAISED[kind]}: {kind} from the task"):
                job.result(timeout=20)
            assert [e["error"] for e in job.errors] == [f"{RAISED[kind]}: {kind} from the task"] * 2
            assert "raise RAISED[kind]" in job.errors[0]["traceback"]
        for kind, job in hooked.items():
            assert job.result(timeout=20) == kind  # a hook's error does not fail the job
        # Every slot is still there: `slots` jobs that only finish when all of them run at once.
        meets = client.enqueue_many("wedge_app.meet", [(slots,)] * slots)
        assert [job.result(timeout=20) for job in meets] == [slots] * slots
    finally:
        worker.stop()
    assert worker.proc.returncode == 0
    lines = effects(tmp_path)
    for kind, error in RAISED.items():
        job_id = failing[kind].id
        assert lines.count(f"ran {kind} {job_id}") == 2
        assert lines.count(f"after_task {kind} {error}") == lines.count(f"on_failure {kind} {error}") == 2
        for hook in ("before_task", "after_task", "on_success"):
            assert f"{hook} hooked {kind}" in lines
    assert "Exception in thread" not in worker.output and "unexpected worker error" not in worker.output
