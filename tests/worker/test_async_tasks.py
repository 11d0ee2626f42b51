"""``async def`` tasks on real ``taskito worker`` processes, on both engines: the event loop beside the
thread pool, retries, timeouts that really cancel, a blocked loop reported, kill -9 and SIGTERM."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskito import MaxRetriesExceededError, Queue, TaskFailedError
from tests.support import database_locked, start_worker, wait_until
from tests.worker.conftest import APPS, effects

APP = "async_app:queue"


@pytest.fixture
def client(engine_env: dict[str, str]) -> Iterator[Queue]:
    """The web app's side: enqueues by task name, as a process that does not import the tasks would."""
    queue = Queue()
    yield queue
    queue.close()


def test_coroutines_run_at_once_on_the_event_loop_each_with_its_own_job(engine_env: dict[str, str],
                                                                          client: Queue) -> None:
    worker = start_worker(APP, APPS, env={**engine_env, "TASKITO_ASYNC_CONCURRENCY": "150"})
    try:
        assert "event loop for 150 coroutines" in worker.output
        started = time.monotonic()
        naps = client.enqueue_many("async_app.nap", [(0.5,)] * 300)
        assert [job.result(timeout=30) for job in naps] == [job.id for job in naps]  # current_job per coroutine
        assert time.monotonic() - started < 15  # two rounds of 150 at once; on the 2 threads it would take 75 s
        assert client.enqueue("async_app.plain", args=(21,)).result(timeout=10) == 42  # threads, beside
    finally:
        worker.stop()
    worker = start_worker(APP, APPS, "--async-concurrency", "7", env=engine_env)  # the flag wins over the setting
    try:
        crowd = client.enqueue_many("async_app.crowd", [(0.1,)] * 40)
        assert max(job.result(timeout=30) for job in crowd) == 7
    finally:
        worker.stop()


def test_retries_soft_timeout_rate_limit_progress_and_a_hard_timeout_that_cancels(
        engine_env: dict[str, str], client: Queue, tmp_path: Path) -> None:
    worker = start_worker(APP, APPS, env=engine_env)
    try:
        flaky = client.enqueue("async_app.flaky")
        polite = client.enqueue("async_app.polite")
        progress = client.enqueue("async_app.progress")
        limited = client.enqueue_many("async_app.limited", [()] * 8)
        started = time.monotonic()
        hangs = client.enqueue("async_app.hangs")
        assert flaky.result(timeout=20) == 2
        assert [error["error"] for error in flaky.errors] == ["ConnectionError: attempt 1 failed",
                                                              "ConnectionError: attempt 2 failed"]
        with pytest.raises(TaskFailedError, match="SoftTimeLimitExceeded"):
            polite.result(timeout=20)
        assert progress.result(timeout=20) == "done"
        times = sorted(job.result(timeout=20) for job in limited)
        assert times[-1] - times[0] >= 0.6  # 10/s: spaced 0.1 s apart, not all at once
        assert progress.progress == 60
        with pytest.raises(MaxRetriesExceededError, match=r"failed 2 times: TimeoutError: timed out after 0.5s"):
            hangs.result(timeout=20)
        assert time.monotonic() - started < 10
        # Each attempt's coroutine was cancelled at its timeout, not left running (as a thread would be).
        wait_until(lambda: sorted(line for line in effects(tmp_path) if line.startswith("cancelled")) ==
                   [f"cancelled {hangs.id} 0", f"cancelled {hangs.id} 1"], 10, message="both attempts cancelled")
    finally:
        worker.stop()


def test_a_coroutine_blocking_the_loop_is_reported_and_the_worker_never_blocks_it(engine_env: dict[str, str],
                                                                                  client: Queue,
                                                                                  tmp_path: Path) -> None:
    worker = start_worker(APP, APPS, env=engine_env)
    try:
        # A heartbeat coroutine updates its progress at every beat while the database makes writes wait
        # for 1.5 s: the writes wait on the worker's I/O thread, never on its event loop.
        beat = client.enqueue("async_app.steady", args=(300, 0.01))
        wait_until(lambda: (tmp_path / f"started-{beat.id}").exists(), 15, message="the heartbeat to start")
        with database_locked(engine_env):
            time.sleep(1.5)
        assert beat.result(timeout=30) < 0.75  # a write on the loop would have held it for the whole 1.5 s
        assert beat.progress is not None and beat.progress > 90
        assert not any("blocked" in line for line in worker.lines)

        blocker = client.enqueue("async_app.blocks", args=(0.6,))
        assert blocker.result(timeout=20) == "blocked"
        line = worker.wait_for_line(f"async task async_app.blocks (job {blocker.id}) has blocked the worker's "
                                    "event loop")
        assert "async_app.py" in line and "in blocks" in line  # where it is stuck
        total = worker.wait_for_line(f"async task async_app.blocks (job {blocker.id}) blocked the event loop for")
        assert 0.5 <= float(re.search(r"for ([\d.]+)s in all", total).group(1)) < 1.5
    finally:
        worker.stop()


def test_kill_9_mid_coroutine_runs_it_again(engine_env: dict[str, str], client: Queue, tmp_path: Path) -> None:
    first = start_worker(APP, APPS, env=engine_env)
    job = client.enqueue("async_app.long_nap", args=(30,))
    # Its effect line, written after the started- file: a kill between the two would leave no line to count.
    wait_until(lambda: f"start {job.id} 0" in effects(tmp_path), 15, message="the coroutine to start")
    first.kill()  # SIGKILL: no drain, no put-back
    second = start_worker(APP, APPS, env=engine_env)
    try:
        assert job.result(timeout=30) == "rested"  # after the dead worker's lease (2 s) ran out
    finally:
        second.stop()
    assert effects(tmp_path) == [f"start {job.id} 0", f"start {job.id} 1", f"done {job.id}"]
    assert job.errors[0]["error"].startswith("WorkerLostError") and "stopped heart-beating" in job.errors[0]["error"]


def test_sigterm_drains_coroutines_then_puts_back_what_cannot_finish(engine_env: dict[str, str], client: Queue,
                                                                     tmp_path: Path) -> None:
    worker = start_worker(APP, APPS, env=engine_env)
    short = client.enqueue_many("async_app.long_nap", [(1.0,)] * 5)
    wait_until(lambda: all((tmp_path / f"started-{job.id}").exists() for job in short), 15,
               message="the coroutines to start")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert [job.status for job in short] == ["complete"] * 5  # drained: all five finished their await

    worker = start_worker(APP, APPS, "--drain-timeout", "0.5", env=engine_env)
    stuck = client.enqueue("async_app.long_nap", args=(30,))
    wait_until(lambda: (tmp_path / f"started-{stuck.id}").exists(), 15, message="the coroutine to start")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert "putting 1 unfinished job(s) back" in worker.output
    record = client.get_job(stuck.id).record
    assert (record.status, record.retry_count) == ("pending", 0)  # back for another worker, no attempt counted
    assert f"cancelled {stuck.id}" in effects(tmp_path)  # the coroutine was stopped, not left running


def test_a_coroutine_is_running_from_its_start_and_records_its_own_run_time(engine_env: dict[str, str],
                                                                           client: Queue, tmp_path: Path) -> None:
    blockers = client.enqueue_many("async_app.long_nap", [(1.5,)] * 2, priority=9)
    quick = client.enqueue_many("async_app.long_nap", [(0.05,)] * 3)
    worker = start_worker(APP, APPS, "--async-concurrency", "2", env=engine_env)
    try:
        # Two coroutines started; the three others wait in the worker's buffer, claimed but not running.
        wait_until(lambda: len(list(tmp_path.glob("started-*"))) == 2 and client.stats()["running"] == 2
                   and all(job.record.worker_id for job in client.list_jobs(limit=10)), 15,
                   message="two coroutines running and the others claimed")
        assert {job.id for job in client.list_jobs(status="running")} == {job.id for job in blockers}
        assert all((job.status, job.refresh().record.started_at) == ("pending", None) for job in quick)
        assert [job.result(timeout=30) for job in [*blockers, *quick]] == ["rested"] * 5
    finally:
        worker.stop()
    first_done = min(job.refresh().record.finished_at for job in blockers)
    for job in blockers:
        assert 1.5 <= job.record.finished_at - job.record.started_at < 3
    for job in quick:
        record = job.refresh().record
        assert 0.05 <= record.finished_at - record.started_at < 0.5  # not the 1.5 s it waited behind the blockers
        assert record.started_at >= first_done - 0.01
