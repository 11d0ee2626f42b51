"""Where taskito stands against the machine's own limits (issue "Speed"), as ratios measured in one run.

- single enqueue from 1, 4 and 16 threads at once;
- on PostgreSQL, the durable limit: a bare one-row INSERT and COMMIT from Python on the same kind of
  connection (psycopg, autocommit), against which single enqueue is compared;
- a producer's single enqueue while a worker drains, against its rate alone;
- the drain of no-op jobs at --concurrency 1, the default and 16, and of 10 ms I/O-bound jobs at 16
  threads against the ideal (16 at once);
- what recording the per-task metrics (task minutes) costs the drain (metrics_cost.py).
"""

from __future__ import annotations

import os
import threading
import time
import uuid

from metrics_cost import measure_metrics_cost
from throughput import database, load_queue, start_workers, stop_workers, wait_drained


def enqueue_rate(noop, jobs: int, threads: int) -> int:
    """Single enqueues per second, ``jobs`` in all, from ``threads`` threads at once."""
    per_thread = jobs // threads
    workers = [threading.Thread(target=lambda: [noop.delay() for _ in range(per_thread)]) for _ in range(threads)]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return round(per_thread * threads / (time.perf_counter() - started))


def enqueue_by_threads(backend: str, jobs: int, pg_url: str) -> dict[str, int]:
    rates = {}
    for threads in (1, 4, 16):
        with database(backend, pg_url) as env:
            queue, noop = load_queue(env)
            noop.delay()  # the schema exists: its creation is not part of the figure
            rates[str(threads)] = enqueue_rate(noop, jobs, threads)
            queue.close()
    return rates


def durable_insert_limit(pg_url: str, rows: int) -> int:
    """One-row INSERT + COMMIT per second on one psycopg connection: what a durable enqueue costs at least."""
    import psycopg

    table = f"taskito_bench_limit_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id text PRIMARY KEY)")
        try:
            started = time.perf_counter()
            for _ in range(rows):
                conn.execute(f"INSERT INTO {table} (id) VALUES (%s)", (uuid.uuid4().hex,))
            return round(rows / (time.perf_counter() - started))
        finally:
            conn.execute(f"DROP TABLE {table}")


def enqueue_while_draining(backend: str, jobs: int, pg_url: str) -> dict[str, float]:
    """A producer's single-enqueue rate alone, then while one worker drains a backlog of ``jobs``."""
    with database(backend, pg_url) as env:
        queue, noop = load_queue(env)
        noop.delay()
        alone = enqueue_rate(noop, jobs // 2, 1)
        before = queue.stats()["pending"]
        noop.map([()] * jobs)
        [worker] = start_workers(1, env, env["LOG_DIR"])
        try:
            beside = enqueue_rate(noop, jobs // 2, 1)
            wait_drained(queue, before + jobs + jobs // 2)
        finally:
            stop_workers([worker])
        queue.close()
    return {"alone_jobs_per_s": alone, "while_draining_jobs_per_s": beside, "ratio": round(beside / alone, 2)}


def drain_rate(backend: str, jobs: int, pg_url: str, task: str, concurrency: int | None) -> int:
    with database(backend, pg_url) as env:
        queue, _ = load_queue(env)
        queue.enqueue_many(f"bench_app.{task}", [()] * jobs)
        args = ["--concurrency", str(concurrency)] if concurrency else []
        [worker] = start_workers(1, env, env["LOG_DIR"], args=args)
        try:
            started = time.perf_counter()
            wait_drained(queue, jobs)
            rate = round(jobs / (time.perf_counter() - started))
        finally:
            stop_workers([worker])
        queue.close()
    return rate


def drain_by_concurrency(backend: str, jobs: int, pg_url: str) -> dict[str, object]:
    no_op = {"1": drain_rate(backend, jobs, pg_url, "noop", 1),
             f"default ({os.cpu_count()})": drain_rate(backend, jobs, pg_url, "noop", None),
             "16": drain_rate(backend, jobs, pg_url, "noop", 16)}
    io_jobs = min(jobs, 3200)  # 10 ms each: 2 s at the ideal 16 at once
    io_rate = drain_rate(backend, io_jobs, pg_url, "io_wait", 16)
    return {"no_op_jobs_per_s_by_concurrency": no_op,
            "io_bound_10ms_at_16_threads_share_of_ideal": round(io_rate / (16 / 0.01), 2)}


def measure_speed(backend: str, jobs: int, pg_url: str) -> dict[str, object]:
    report: dict[str, object] = {"single_enqueue_jobs_per_s_by_threads": enqueue_by_threads(backend, jobs, pg_url)}
    if backend == "postgres":
        limit = durable_insert_limit(pg_url, min(jobs, 5000))
        single = report["single_enqueue_jobs_per_s_by_threads"]["1"]  # type: ignore[index]
        report["durable_insert_limit_per_s"] = limit
        report["single_enqueue_share_of_durable_limit"] = round(single / limit, 2)
    report["enqueue_while_draining"] = enqueue_while_draining(backend, jobs, pg_url)
    report.update(drain_by_concurrency(backend, jobs, pg_url))
    report["task_metrics_drain_cost"] = measure_metrics_cost(backend, jobs, pg_url)
    return report
