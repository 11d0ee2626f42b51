"""Per-task and per-queue metrics: kept per minute with each outcome, surviving purges, pruned by age."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from taskito import InvalidValueError, MaxRetriesExceededError, Queue
from taskito.storage import Completion
from taskito.worker.maintenance import Maintenance
from tests.storage.test_counters import raw_sql
from tests.support import start_worker, wait_until

APPS = Path(__file__).resolve().parent.parent / "apps"


def test_a_worker_s_outcomes_become_task_stats_that_survive_purges(engine_env: dict[str, str]) -> None:
    client = Queue()
    worker = start_worker("observe_app:queue", APPS, env=engine_env)
    try:
        added = client.enqueue_many("observe_app.add", [(i, i) for i in range(5)])
        failing = client.enqueue("observe_app.always_fails", ("y",))
        assert [job.result(timeout=20) for job in added] == [0, 2, 4, 6, 8]
        with pytest.raises(MaxRetriesExceededError):
            failing.result(timeout=20)
    finally:
        worker.stop()
    stats = client.task_stats()
    add, fails = stats["observe_app.add"], stats["observe_app.always_fails"]
    assert add["counts"] == {"complete": 5, "failed": 0, "dead": 0, "cancelled": 0}
    assert add["attempts"] == 5 and add["failure_rate"] == 0.0
    assert fails["counts"] == {"complete": 0, "failed": 1, "dead": 1, "cancelled": 0}
    assert fails["failure_rate"] == 1.0
    for figure in ("p50", "p95", "p99"):
        assert 0 < add["runtime"][figure] <= 1  # within the bucket of a sub-second run
    assert add["runtime"]["count"] == 5 and add["wait"]["count"] == 5
    assert 0 <= add["wait"]["p50"] <= add["wait"]["p95"] <= 10
    queues = client.queue_stats()
    assert queues["default"]["completed"] == 5 and queues["default"]["dead"] == 1
    assert queues["default"]["oldest_due_age"] is None  # nothing waits
    series = client.task_series(since=3600, step=60)
    assert sum(entry["observe_app.add"]["complete"] for entry in series.values() if "observe_app.add" in entry) == 5
    # purging the jobs leaves the metrics as they were
    assert client.purge_completed(older_than=0) == 5 and client.purge_dead(older_than=0) == 1
    assert client.task_stats() == stats
    client.close()


def test_cancelled_and_expired_jobs_count_as_cancelled_and_bad_windows_are_refused(engine_queue: Queue) -> None:
    job = engine_queue.enqueue("elsewhere.task", delay=60)
    assert engine_queue.cancel_job(job.id)
    assert engine_queue.task_stats()["elsewhere.task"]["counts"]["cancelled"] == 1
    assert engine_queue.task_stats()["elsewhere.task"]["failure_rate"] == 0.0
    with pytest.raises(InvalidValueError, match="since must be greater than 0"):
        engine_queue.task_stats(since=0)
    with pytest.raises(InvalidValueError, match="step must be greater than 0"):
        engine_queue.task_series(step=-5)


def test_the_oldest_due_job_s_age_per_queue(engine_queue: Queue) -> None:
    assert engine_queue.queue_stats() == {}
    engine_queue.pause("slowlane")
    first = time.time()
    engine_queue.enqueue("some.task", queue="slowlane", priority=1)
    engine_queue.enqueue("some.task", queue="slowlane", priority=5)
    engine_queue.enqueue("some.task", queue="later", delay=3600)  # not due: does not count
    time.sleep(0.05)  # the age must grow beyond the enqueue time
    stats = engine_queue.queue_stats()
    assert stats["slowlane"]["paused"] is True and stats["slowlane"]["pending"] == 2
    assert 0.05 <= stats["slowlane"]["oldest_due_age"] <= time.time() - first + 0.01
    assert stats["later"]["oldest_due_age"] is None and stats["later"]["pending"] == 1


def test_maintenance_merges_old_minutes_into_hours_and_prunes_past_the_retention(
        engine_settings: dict[str, str]) -> None:
    queue = Queue(**engine_settings, eager=False, metrics_retention=3 * 86400).connect()
    sql = raw_sql(engine_settings)
    for _ in range(6):
        job = queue.enqueue("old.task")
        assert queue.cancel_job(job.id)
    # Move them back in time: into the minutes of an hour four hours ago; and copies three days before.
    hour = (time.time() - 4 * 3600) // 3600 * 3600
    rows = sql("SELECT minute FROM taskito_task_minutes")
    assert rows
    sql(f"UPDATE taskito_task_minutes SET minute = {int(hour)} + 60 * (minute % 7)")
    sql(f"INSERT INTO taskito_task_minutes SELECT {int(hour) - 3 * 86400}, queue, task_name, outcome, runtime_le, "
        "wait_le, n, runtime_sum, wait_sum FROM taskito_task_minutes")
    assert queue.task_stats(since=8 * 86400)["old.task"]["counts"]["cancelled"] == 12
    before = queue.task_stats(since=3 * 86400)
    assert before["old.task"]["counts"]["cancelled"] == 6
    Maintenance(queue, "test-worker", lambda: []).tend_metrics()
    assert queue.task_stats(since=3 * 86400) == before
    assert sql(f"SELECT count(*) FROM taskito_task_minutes WHERE minute = {int(hour)}") == [(1,)]  # one row per key
    assert sql(f"SELECT count(*) FROM taskito_task_minutes WHERE minute < {int(hour)}") == [(0,)]  # pruned
    assert queue.task_stats(since=8 * 86400) == before
    queue.close()


def test_recording_metrics_keeps_the_worker_s_completions_in_one_statement(engine_env: dict[str, str]) -> None:
    """Many jobs finishing at once: the counts stay exact, whichever worker records them."""
    client = Queue()
    workers = [start_worker("observe_app:queue", APPS, "--concurrency", "4", env=engine_env) for _ in range(2)]
    try:
        jobs = client.enqueue_many("observe_app.add", [(i, 1) for i in range(300)])
        wait_until(lambda: client.stats()["completed"] == 300, 60, message="300 completions")
    finally:
        for worker in workers:
            worker.stop()
    assert client.task_stats()["observe_app.add"]["counts"]["complete"] == 300
    assert len(jobs) == 300
    client.close()


def test_completions_count_once_each_even_with_stale_ones_in_the_batch(engine_queue: Queue) -> None:
    """A batch may hold a stale completion (its job went back to the queue and finished elsewhere): only
    the jobs a batch completes count, with or without what the worker knows of them."""
    storage = engine_queue.connect().storage
    for _ in range(4):
        engine_queue.enqueue("batch.task")
    held = storage.claim("w", ["default"], 4, 60)
    now = time.time()

    def done(record, stale: bool = False, known: bool = True) -> Completion:
        return Completion(record.id, record.attempt + (1 if stale else 0), b"null", started_at=now - 0.2,
                          finished_at=now, **({"task_name": record.task_name, "queue": record.queue,
                                               "scheduled_at": record.scheduled_at} if known else {}))

    storage.complete([done(held[0]), done(held[1], known=False)])
    storage.complete([done(held[2]), done(held[0], stale=True)])  # an attempt that no longer holds its job
    storage.complete([done(held[3], stale=True, known=False)])  # the same, without what the worker knew
    counts = engine_queue.task_stats()["batch.task"]
    assert counts["counts"]["complete"] == 3 and counts["runtime"]["count"] == 3
    storage.complete([done(held[3])])
    assert engine_queue.task_stats()["batch.task"]["counts"]["complete"] == 4
    assert 0.1 <= counts["runtime"]["p50"] <= 0.25
