"""Workers as users run them: `taskito worker` subprocesses, real signals, real kill -9."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest

from taskito import Queue, TaskFailedError
from tests.support import TASKITO, Process, jobs_in_database_file, start_worker, wait_until
from tests.worker.conftest import APPS, effects

APP = "worker_app:queue"


@pytest.fixture
def client(app_env: dict[str, str]) -> Queue:
    """The web app's side: a Queue on the same database that enqueues by task name."""
    return Queue(db_path=app_env["TASKITO_DB_PATH"])


def started(tmp_path: Path, job_id: str) -> bool:
    return (tmp_path / f"started-{job_id}").exists()


def test_round_trip_and_clean_sigint_exit(client: Queue, app_env: dict[str, str]) -> None:
    worker = start_worker(APP, APPS, env=app_env)
    try:
        job = client.enqueue("worker_app.add", args=(2, 3))
        assert job.result(timeout=15) == 5
        [alive] = client.workers()
        assert alive["queues"] == ["default", "other"]
    finally:
        worker.signal(signal.SIGINT)
    assert worker.wait() == 0
    assert "complete in" in worker.output and job.id in worker.output
    assert client.workers() == []


def test_sigint_while_a_job_runs_lets_it_finish(client: Queue, app_env: dict[str, str], tmp_path: Path) -> None:
    worker = start_worker(APP, APPS, env=app_env)
    job = client.enqueue("worker_app.slow", args=(1.0,))
    wait_until(lambda: started(tmp_path, job.id), 15, message="the job to start")
    worker.signal(signal.SIGINT)
    assert worker.wait() == 0
    assert job.status == "complete"
    assert effects(tmp_path) == [f"slow {job.id}"]


def test_sigterm_past_drain_timeout_puts_the_job_back(client: Queue, app_env: dict[str, str],
                                                      tmp_path: Path) -> None:
    first = start_worker(APP, APPS, "--drain-timeout", "0.5", env=app_env)
    job = client.enqueue("worker_app.slow", args=(4.0,))
    wait_until(lambda: started(tmp_path, job.id), 15, message="the job to start")
    first.signal(signal.SIGTERM)
    assert first.wait() == 0
    assert "putting 1 unfinished job(s) back" in first.output
    record = client.get_job(job.id).record
    assert (record.status, record.retry_count) == ("pending", 0)
    second = start_worker(APP, APPS, env=app_env)
    try:
        assert job.result(timeout=20) == "done"
    finally:
        second.stop()
    assert effects(tmp_path) == [f"slow {job.id}"]


def test_second_signal_stops_at_once_and_still_puts_jobs_back(client: Queue, app_env: dict[str, str],
                                                              tmp_path: Path) -> None:
    worker = start_worker(APP, APPS, env=app_env)
    job = client.enqueue("worker_app.slow", args=(30.0,))
    wait_until(lambda: started(tmp_path, job.id), 15, message="the job to start")
    worker.signal(signal.SIGINT)
    worker.wait_for_line("SIGINT received")
    worker.signal(signal.SIGINT)
    assert worker.wait(timeout=10) == 0
    assert client.get_job(job.id).status == "pending"


def test_kill_9_mid_job_is_recovered_and_completes_once(client: Queue, app_env: dict[str, str],
                                                        tmp_path: Path) -> None:
    victim = start_worker(APP, APPS, env=app_env)
    job = client.enqueue("worker_app.slow", args=(1.5,))
    wait_until(lambda: started(tmp_path, job.id), 15, message="the job to start")
    wait_until(lambda: client.get_job(job.id).status == "running", 5, message="the job to show as running")
    victim.kill()
    assert client.get_job(job.id).status == "running"
    rescuer = start_worker(APP, APPS, env=app_env)
    try:
        assert job.result(timeout=30) == "done"
    finally:
        rescuer.stop()
    assert effects(tmp_path) == [f"slow {job.id}"]
    [lost] = client.job_errors(job.id)
    assert "WorkerLost" in lost["error"]
    assert "was lost" in rescuer.output


def test_three_workers_run_3000_jobs_exactly_once(client: Queue, app_env: dict[str, str], tmp_path: Path) -> None:
    workers = [start_worker(APP, APPS, env=app_env) for _ in range(3)]
    try:
        jobs = [job for _ in range(30) for job in client.enqueue_many("worker_app.strict_record", [("r",)] * 100)]
        wait_until(lambda: client.stats()["completed"] == 3000, 120, interval=0.2, message="3000 completions")
    finally:
        for worker in workers:
            worker.signal(signal.SIGINT)
        codes = [worker.wait() for worker in workers]
    assert codes == [0, 0, 0]
    counts = Counter(line.split()[1] for line in effects(tmp_path))
    assert set(counts) == {job.id for job in jobs}
    assert set(counts.values()) == {1}
    assert client.stats() == {"pending": 0, "running": 0, "completed": 3000, "failed": 0, "dead": 0,
                              "cancelled": 0}
    served = [worker.output.count("complete in") for worker in workers]
    assert sum(served) == 3000 and sorted(served)[1] > 0, f"the work was not shared: {served}"


def test_priority_order_with_one_thread(client: Queue, app_env: dict[str, str], tmp_path: Path) -> None:
    for priority in (1, 5, 3, 5, 0, 9):
        client.enqueue("worker_app.record", args=(f"p{priority}",), priority=priority)
    worker = start_worker(APP, APPS, "--concurrency", "1", env=app_env)
    try:
        wait_until(lambda: client.stats()["completed"] == 6, 20, message="six completions")
    finally:
        worker.stop()
    assert [line.split()[0] for line in effects(tmp_path)] == ["p9", "p5", "p5", "p3", "p1", "p0"]


def test_pause_and_resume(client: Queue, app_env: dict[str, str]) -> None:
    worker = start_worker(APP, APPS, env=app_env)
    try:
        client.pause("default")
        held = client.enqueue("worker_app.add", args=(1, 1))
        other = client.enqueue("worker_app.on_other_queue", queue="other")
        assert other.result(timeout=15) == "other"
        assert held.status == "pending"
        client.resume("default")
        assert held.result(timeout=15) == 2
    finally:
        worker.stop()


def test_unknown_task_and_corrupt_payload_go_dead_and_the_worker_goes_on(client: Queue,
                                                                          app_env: dict[str, str]) -> None:
    unknown = client.enqueue("worker_app.no_such_task", args=(1,))
    corrupt = client.enqueue("worker_app.add", args=(1, 2))
    with client.storage._transaction() as cur:
        cur.execute("UPDATE taskito_jobs SET payload = ? WHERE id = ?", (b"\x80not json", corrupt.id))
    worker = start_worker(APP, APPS, env=app_env)
    try:
        with pytest.raises(TaskFailedError, match="unknown task 'worker_app.no_such_task'"):
            unknown.result(timeout=15)
        with pytest.raises(TaskFailedError, match="corrupt payload"):
            corrupt.result(timeout=15)
        assert client.enqueue("worker_app.add", args=(4, 4)).result(timeout=15) == 8
    finally:
        worker.stop()


def test_hard_timeout_fails_and_retries_the_job(client: Queue, app_env: dict[str, str], tmp_path: Path) -> None:
    worker = start_worker(APP, APPS, "--concurrency", "1", env=app_env)
    try:
        job = client.enqueue("worker_app.hangs")
        with pytest.raises(TaskFailedError, match="timed out after 0.5s"):
            job.result(timeout=20)
        assert [e["error"] for e in job.errors] == ["TimeoutError: timed out after 0.5s"] * 2
        # the thread stuck in the abandoned job does not cost the worker its capacity
        assert client.enqueue("worker_app.add", args=(1, 2)).result(timeout=15) == 3
    finally:
        worker.stop()
    assert len(effects(tmp_path)) == 2


def test_periodic_task_fires_once_per_tick_with_two_workers(app_env: dict[str, str]) -> None:
    client = Queue(db_path=app_env["TASKITO_DB_PATH"])
    workers = [start_worker("periodic_app:queue", APPS, env=app_env) for _ in range(2)]
    try:
        wait_until(lambda: client.stats()["completed"] >= 3, 20, message="three periodic runs")
    finally:
        for worker in workers:
            worker.stop()
    done = client.list_jobs(status="complete", limit=100)
    ticks = sorted(round(job.record.scheduled_at) for job in done)
    assert len(ticks) == len(set(ticks)), f"a tick fired twice: {ticks}"
    assert all(job.record.task_name == "periodic_app.tick" for job in done)


def test_result_ttl_purges_finished_jobs(client: Queue, app_env: dict[str, str]) -> None:
    worker = start_worker(APP, APPS, env={**app_env, "TASKITO_RESULT_TTL": "1"})
    try:
        job = client.enqueue("worker_app.add", args=(1, 2))
        expired = client.enqueue("worker_app.add", args=(1, 2), delay=0.2, expires=0.1)  # cancelled, never run
        assert job.result(timeout=15) == 3
        wait_until(lambda: client.get_job(job.id) is None, 15, message="the finished job to be purged")
        wait_until(lambda: client.get_job(expired.id) is None, 15, message="the expired job to be purged")
    finally:
        worker.stop()
    assert client.stats()["completed"] == client.stats()["cancelled"] == 0


def test_a_database_file_deleted_under_a_running_worker_is_reported_and_followed(app_env: dict[str, str]) -> None:
    db = Path(app_env["TASKITO_DB_PATH"])
    worker = start_worker(APP, APPS, env=app_env)
    try:
        web = Queue(db_path=str(db))  # a web app: it only enqueues, and it stays up
        assert web.enqueue("worker_app.add", args=(1, 1)).result(timeout=15) == 2
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        # Both move to a new, empty file at the path: the web app's next job reaches the worker.
        assert web.enqueue("worker_app.add", args=(2, 2)).result(timeout=20) == 4
        assert Queue(db_path=str(db)).enqueue("worker_app.add", args=(3, 3)).result(timeout=20) == 6
        web.close()
    finally:
        worker.stop()
    assert "was deleted or replaced while in use" in worker.output


def test_a_running_worker_checkpoints_the_wal_so_that_commits_never_wait_for_it(
        client: Queue, app_env: dict[str, str]) -> None:
    """Finished jobs reach the database file itself soon after, while the worker runs: it checkpoints the WAL
    beside the work. No commit here comes near the connections' own threshold of thousands of pages, at which
    an enqueue or a claim would stop for the checkpoint instead."""
    worker = start_worker(APP, APPS, env=app_env)
    try:
        jobs = [client.enqueue("worker_app.add", args=(number, 1)) for number in range(20)]
        assert [job.result(timeout=15) for job in jobs] == [number + 1 for number in range(20)]
        wait_until(lambda: jobs_in_database_file(app_env["TASKITO_DB_PATH"], "complete") == 20, 10,
                   message="the worker to checkpoint the finished jobs into the database file")
        assert worker.proc.poll() is None
    finally:
        worker.signal(signal.SIGINT)
    assert worker.wait() == 0


# An --app module that takes its time: it says so, then waits (at most a minute) for a file that never comes.
SLOW_IMPORT = """
import os, time
from taskito import Queue
print("slow_app: importing", flush=True)
deadline = time.monotonic() + 60
{wait}
queue = Queue()
"""
WAIT = "while time.monotonic() < deadline: time.sleep(0.05)"
# The same, but its code swallows whatever interrupts the wait: the worker must still not start.
WAIT_SWALLOWING = f"try:\n    {WAIT}\nexcept BaseException:\n    print('slow_app: carried on', flush=True)"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("flags", [(), ("--no-wait-for-db",)])
def test_a_signal_during_start_up_stops_the_worker_cleanly(app_env: dict[str, str], tmp_path: Path,
                                                            signum: int, flags: tuple[str, ...]) -> None:
    (tmp_path / "slow_app.py").write_text(SLOW_IMPORT.format(wait=WAIT))
    worker = Process([TASKITO, "worker", "--app", "slow_app:queue", *flags], cwd=tmp_path, env=app_env)
    worker.wait_for_line("slow_app: importing")
    worker.signal(signum)
    assert worker.wait(timeout=10) == 0, worker.output
    assert f"{signal.Signals(signum).name} received while starting: stopped before claiming any job" in worker.output
    assert "Traceback" not in worker.output and "started:" not in worker.output
    assert Queue(db_path=app_env["TASKITO_DB_PATH"]).workers() == []


def test_a_worker_whose_start_up_swallowed_the_signal_still_never_starts(app_env: dict[str, str],
                                                                        tmp_path: Path) -> None:
    (tmp_path / "slow_app.py").write_text(SLOW_IMPORT.format(wait=WAIT_SWALLOWING))
    client = Queue(db_path=app_env["TASKITO_DB_PATH"])
    job = client.enqueue("slow_app.anything")
    worker = Process([TASKITO, "worker", "--app", "slow_app:queue"], cwd=tmp_path, env=app_env)
    worker.wait_for_line("slow_app: importing")
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0, worker.output
    assert "slow_app: carried on" in worker.output and "stopped before it started" in worker.output
    assert "Traceback" not in worker.output and "started:" not in worker.output
    assert client.workers() == [] and job.status == "pending"
