"""Counting is O(1): stats(), the dashboard and /metrics read counters kept with every change of a job.

The counters change in the transaction of the change itself (triggers), so they stay exact whoever
changes a row: taskito, the reaper, a raw SQL statement. `taskito check` recounts and compares, and
`--repair` rebuilds them. On both engines.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from taskito import InvalidValueError, Queue
from taskito.dashboard.metrics import render_metrics
from taskito.storage import Completion, Started
from taskito.storage.base import RUNTIME_BOUNDS
from tests.conftest import PG_URL
from tests.support import run_cli

WORKER = "counters-worker"
APPS = Path(__file__).resolve().parents[1] / "apps"
SIX = dict.fromkeys(("pending", "running", "completed", "failed", "dead", "cancelled"), 0)


def raw_sql(settings: dict[str, str]) -> Callable[[str], list[tuple[Any, ...]]]:
    """Run SQL on the queue's database behind taskito's back, as an operator's script would."""
    def run(query: str) -> list[tuple[Any, ...]]:
        if "db_path" in settings:
            with sqlite3.connect(settings["db_path"]) as conn:
                return conn.execute(query).fetchall()
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{settings["schema"]}"')
            cur = conn.execute(query)
            return cur.fetchall() if cur.description else []

    return run


def recount(queue: Queue) -> dict[str, int]:
    """The six counts by counting rows, as stats() did before counters."""
    counts = dict(SIX)
    for job in queue.list_jobs(limit=100_000):
        counts["completed" if job.record.status == "complete" else job.record.status] += 1
    return counts


def test_counters_follow_every_change_of_a_job(engine_settings: dict[str, str]) -> None:
    queue = Queue(**engine_settings, workers=2)
    storage, sql = queue.storage, raw_sql(engine_settings)
    try:
        def exact() -> dict[str, int]:
            assert queue.check_counts() == []
            stats = queue.stats()
            assert stats == recount(queue)
            assert sum(sum(by_queue.values()) for by_queue in queue.stats_all_queues().values()) == sum(stats.values())
            return stats

        queue.enqueue("t", args=(1,))
        queue.enqueue_many("t", [(n,) for n in range(5)], queue="other")
        first = queue.enqueue("t", args=(9,), unique_key="k")
        assert queue.enqueue("t", args=(9,), unique_key="k").id == first.id
        child = queue.enqueue("t", depends_on=[first.id])
        assert exact() == {**SIX, "pending": 8}

        claimed = storage.claim(WORKER, ["default"], 2, 30)
        assert exact()["pending"] == 8  # claimed, not started: still pending
        began = time.time() - 0.3
        storage.start([Started(record.id, record.attempt, began) for record in claimed])
        assert exact() == {**SIX, "pending": 6, "running": 2}
        done, failing = claimed
        assert failing.id == first.id
        storage.complete([Completion(done.id, done.attempt, b"1", started_at=began, finished_at=began + 0.3)])
        storage.fail(failing.id, failing.attempt, "boom", None, retry_delay=0)
        assert exact() == {**SIX, "pending": 6, "completed": 1, "failed": 1}

        [again] = storage.claim(WORKER, ["default"], 5, 30)
        storage.fail(again.id, again.attempt, "boom again", None, retry_delay=None)  # dead, and its child cancelled
        assert queue.get_job(child.id).status == "cancelled"
        assert storage.retry_dead(again.id, "f" * 32) == "f" * 32
        assert queue.cancel_job("f" * 32)
        storage.requeue(WORKER, [r.id for r in storage.claim(WORKER, ["other"], 2, 30)])
        assert exact() == {**SIX, "pending": 5, "completed": 1, "cancelled": 2}

        # The reaper: a claim whose worker died goes back to pending as a failed attempt.
        [lost] = storage.claim(WORKER, ["other"], 1, 0.01)
        time.sleep(0.05)
        [reaped] = storage.reap_expired_leases()
        assert reaped.id == lost.id and storage.fail(lost.id, lost.attempt, "worker lost", None, retry_delay=0)
        assert exact() == {**SIX, "pending": 4, "completed": 1, "failed": 1, "cancelled": 2}

        # Raw SQL behind taskito's back is counted too.
        sql("UPDATE taskito_jobs SET status = 'dead', finished_at = 1 WHERE status = 'failed'")
        sql("DELETE FROM taskito_jobs WHERE status = 'cancelled'")
        sql("UPDATE taskito_jobs SET queue = 'renamed' WHERE queue = 'other'")
        stats = exact()
        assert stats == {**SIX, "pending": 4, "completed": 1, "dead": 1}
        assert queue.stats_by_queue("renamed") == {**SIX, "pending": 4, "dead": 1}
        assert queue.stats_by_queue("other") == SIX

        assert queue.purge_completed(older_than=0) == 1 and queue.purge_dead(older_than=0) == 1
        assert exact() == {**SIX, "pending": 4}
        metrics = storage.task_metrics([1.0])["t"]
        assert metrics["counts"] == {**SIX, "pending": 4} and metrics["runtime"]["count"] == 0
        assert metrics["failures"] == 0  # the errors of the jobs purged went with them
    finally:
        queue.close()


def test_runtime_histogram_and_failures_are_counters_too(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    for seconds in (0.002, 0.3, 7200.0):
        job = engine_queue.enqueue("work")
        [record] = storage.claim(WORKER, ["default"], 1, 60)
        assert record.id == job.id
        now = time.time()
        storage.complete([Completion(record.id, record.attempt, b"null", started_at=now - seconds, finished_at=now)])
    engine_queue.enqueue("flaky")
    [record] = storage.claim(WORKER, ["default"], 1, 60)
    storage.fail(record.id, record.attempt, "nope", None, retry_delay=0)
    metrics = storage.task_metrics([0.005, 0.5, 3600.0])
    assert metrics["work"]["runtime"]["buckets"] == [1, 2, 2]
    assert metrics["work"]["runtime"]["count"] == 3
    assert metrics["work"]["runtime"]["sum"] == pytest.approx(7200.302, abs=0.01)
    assert metrics["flaky"]["failures"] == 1 and metrics["flaky"]["counts"]["failed"] == 1
    assert engine_queue.check_counts() == []
    with pytest.raises(InvalidValueError, match=r"bound\(s\) 0.7 are not kept"):
        storage.task_metrics([0.5, 0.7])


def test_the_histogram_bounds_are_the_schema_s(engine_settings: dict[str, str]) -> None:
    queue = Queue(**engine_settings).connect()
    queue.close()
    query = ("SELECT le FROM taskito_runtime_bounds ORDER BY le" if "db_path" in engine_settings
             else "SELECT unnest(taskito_runtime_bounds())")
    assert tuple(row[0] for row in raw_sql(engine_settings)(query)) == RUNTIME_BOUNDS


def test_check_finds_and_repairs_counters_that_drifted(engine_settings: dict[str, str], tmp_path: Path) -> None:
    queue = Queue(**engine_settings).connect()
    sql = raw_sql(engine_settings)
    try:
        queue.enqueue_many("worker_app.add", [(1, 2)] * 3)
        queue.enqueue("worker_app.add", args=(3, 4))
        [record] = queue.storage.claim(WORKER, ["default"], 1, 60)
        queue.storage.fail(record.id, record.attempt, "boom", None, retry_delay=None)
        assert queue.check_counts() == []
        # Counters drift only if someone edits them (or a bug does): make them wrong by hand.
        sql("DELETE FROM taskito_counts")
        sql("INSERT INTO taskito_counts (queue, task_name, status, runtime_le, n, runtime_sum) "
            "VALUES ('default', 'worker_app.add', 'running', 0, 7, 0)")
        sql("DELETE FROM taskito_failure_counts")
        assert queue.stats() == {**SIX, "running": 7}
        differences = queue.check_counts()
        assert {(d["counter"], d.get("status"), d["counted"], d["actual"]) for d in differences} == {
            ("jobs", "pending", 0, 3), ("jobs", "running", 7, 0), ("jobs", "dead", 0, 1), ("failures", None, 0, 1)}
        env = {"TASKITO_APP": "worker_app:queue",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(APPS), os.environ.get("PYTHONPATH")])),
               **({"TASKITO_DB_PATH": engine_settings["db_path"]} if "db_path" in engine_settings else
                  {"TASKITO_BACKEND": "postgres", "TASKITO_DB_URL": PG_URL,
                   "TASKITO_SCHEMA": engine_settings["schema"]})}
        checked = run_cli("check", cwd=tmp_path, env=env)
        assert checked.returncode == 1, checked.stderr
        assert "queue 'default', task 'worker_app.add', status 'running': counted 7, found 0" in checked.stdout
        assert "4 counter(s) differ" in checked.stderr and "--repair" in checked.stderr
        repaired = run_cli("check", "--repair", cwd=tmp_path, env=env)
        assert repaired.returncode == 0 and "repaired 4 counter(s)" in repaired.stdout, repaired.stderr
        assert queue.stats() == {**SIX, "pending": 3, "dead": 1}
        assert queue.storage.task_metrics([1.0])["worker_app.add"]["failures"] == 1
        again = run_cli("check", cwd=tmp_path, env=env)
        assert again.returncode == 0 and "counters match the jobs table" in again.stdout
    finally:
        queue.close()


@pytest.mark.serial  # times its reads: alone
def test_counts_and_metrics_do_not_grow_with_the_table(engine_settings: dict[str, str]) -> None:
    """100,000 retained jobs: counting them row by row took hundreds of milliseconds (seconds for
    /metrics at a million); the counters answer in a few, whatever the table holds."""
    queue = Queue(**engine_settings).connect()
    sql = raw_sql(engine_settings)
    rows = 100_000
    try:
        if "db_path" in engine_settings:
            sql(f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "
                "INSERT INTO taskito_jobs (id, task_name, queue, status, payload, created_at, scheduled_at, "
                "started_at, finished_at) SELECT printf('%032x', i), 'task' || (i % 7), 'q' || (i % 5), "
                "CASE WHEN i % 10 = 0 THEN 'pending' ELSE 'complete' END, x'7b7d', 1, 1, 1, 1 + (i % 100) / 50.0 "
                "FROM n")
        else:
            sql("INSERT INTO taskito_jobs (id, task_name, queue, status, payload, created_at, scheduled_at, "
                "started_at, finished_at) SELECT lpad(to_hex(i), 32, '0'), 'task' || (i % 7), 'q' || (i % 5), "
                "CASE WHEN i % 10 = 0 THEN 'pending' ELSE 'complete' END, '\\x7b7d', 1, 1, 1, 1 + (i % 100) / 50.0 "
                f"FROM generate_series(1, {rows}) AS i")

        def fastest(call: Callable[[], Any]) -> float:
            times = []
            for _ in range(5):
                started = time.perf_counter()
                call()
                times.append(time.perf_counter() - started)
            return statistics.median(times)

        assert queue.stats() == {**SIX, "pending": rows // 10, "completed": rows - rows // 10}
        for name, call in (("stats()", queue.stats), ("stats_all_queues()", queue.stats_all_queues),
                           ("stats_by_queue()", lambda: queue.stats_by_queue("q1")),
                           ("/metrics", lambda: render_metrics(queue))):
            seconds = fastest(call)
            assert seconds < 0.05, f"{name} took {seconds * 1000:.0f} ms over {rows} jobs"
        histogram = queue.storage.task_metrics([1.0, 2.5])["task3"]["runtime"]
        assert histogram["count"] == histogram["buckets"][1] > histogram["buckets"][0] > 0
    finally:
        queue.close()
