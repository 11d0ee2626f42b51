"""current_job.log(): lines stored on the job, read back oldest first, live while it runs, purged with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskito import Queue, TaskFailedError, current_job
from tests.support import start_worker, wait_until

APPS = Path(__file__).resolve().parent.parent / "apps"


@pytest.fixture
def client(engine_env: dict[str, str]) -> Queue:
    queue = Queue()
    yield queue
    queue.close()


def test_a_worker_stores_each_line_with_level_and_extra_and_the_limit_holds(
        engine_env: dict[str, str], client: Queue) -> None:
    worker = start_worker("observe_app:queue", APPS, env={**engine_env, "TASKITO_MAX_LOG_LINES": "4"})
    try:
        short = client.enqueue("observe_app.chatty", (3,))
        long = client.enqueue("observe_app.chatty", (10,))
        coroutine = client.enqueue("observe_app.async_chatty", (2,))
        silent = client.enqueue("observe_app.add", (1, 2))
        assert [job.result(timeout=20) for job in (short, long, coroutine, silent)] == [3, 10, 2, 3]
        wait_until(lambda: len(client.job_logs(coroutine.id)) == 2, message="the async task's lines")
    finally:
        worker.stop()
    lines = client.job_logs(short.id)
    assert [(line["level"], line["message"], line["extra"]) for line in lines] == [
        ("info", "line 0", {"number": 0}), ("warning", "line 1", {"number": 1}), ("info", "line 2", {"number": 2})]
    assert lines[0]["time"] <= lines[1]["time"] <= lines[2]["time"]
    assert [line["message"] for line in client.job_logs(long.id)] == ["line 0", "line 1", "line 2", "line 3"]
    assert [line["message"] for line in client.job_logs(coroutine.id)] == ["async line 0", "async line 1"]
    assert client.job_logs(silent.id) == []
    assert [line["message"] for line in client.job_logs(short.id, after=lines[0]["id"])] == ["line 1", "line 2"]
    # the lines go with their job
    assert client.purge_completed(older_than=0) == 4
    assert client.job_logs(short.id) == [] and client.job_logs(long.id) == []


def test_lines_show_while_the_job_runs(engine_env: dict[str, str], client: Queue, tmp_path: Path) -> None:
    worker = start_worker("observe_app:queue", APPS, env=engine_env)
    try:
        job = client.enqueue("observe_app.steps")
        wait_until(lambda: [line["message"] for line in client.job_logs(job.id)] == ["waiting for release"],
                   message="the first line while the job runs")
        wait_until(lambda: job.refresh().status == "running", message="the job marked running")
        (tmp_path / "release").touch()
        assert job.result(timeout=20) == "done"
        assert [(line["level"], line["message"], line["extra"]) for line in client.job_logs(job.id)] == [
            ("info", "waiting for release", {}), ("error", "released", {"ok": True})]
    finally:
        worker.stop()


def test_a_bad_level_fails_clearly_and_odd_values_are_kept_as_text(tmp_path: Path) -> None:
    queue = Queue(db_path=str(tmp_path / "q.db"), eager=True)

    @queue.task(max_retries=0)
    def loud() -> None:
        current_job.log("hello", level="loud")

    @queue.task()
    def odd() -> str:
        current_job.log(42, when=Path("/tmp"))  # eager: nothing stored, the line goes to the taskito.job logger
        return "ok"

    with pytest.raises(TaskFailedError, match="log level must be one of debug, info, warning, error, critical, "
                                              "got 'loud'"):
        loud.delay().result()
    assert odd.delay().result() == "ok"
    with pytest.raises(Exception, match="only available inside a running task"):
        current_job.log("outside")


def test_job_logs_checks_its_arguments(engine_queue: Queue) -> None:
    with pytest.raises(Exception, match="after must be a whole number"):
        engine_queue.job_logs("x", after=-1)
    assert engine_queue.job_logs("no-such-job") == []
