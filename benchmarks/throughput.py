"""Throughput and latency of taskito, printed as one JSON line.

    python benchmarks/throughput.py [--jobs 10000] [--backend sqlite|postgres] [--scaling 1,2,4] [--count-rows N]
                                    [--chain-steps 1000] [--chord-members 10000]
    python benchmarks/throughput.py --table-size 1000000 [--backend ...]   (scale mode: see scale.py)

Measures single enqueue, batch (`map`) enqueue, drain by worker processes started
from the CLI with default settings, round-trip latency against an idle worker in
another process, the worker's peak RSS, the figures of speed.py (single enqueue from 1, 4 and 16
threads, PostgreSQL's durable insert limit, enqueue while draining, drain by concurrency),
what the machine's own scheduling does to a round trip with no taskito in it (machine.py),
the time one worker takes to drain as many `async def` tasks that each await asyncio.sleep(0.1),
and workflows (see workflows.py: a chain of 1,000 steps, a chord of 10,000 members); with
--count-rows, also how long
stats(), stats_all_queues() and /metrics take over a table of that many finished jobs, and task_stats(),
queue_stats() and task_series() over a week of task metrics (10 tasks: two hours of minutes, then hours).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
TASKITO = str(Path(sys.executable).with_name("taskito"))
DEFAULT_PG_URL = os.environ.get("TASKITO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def database(backend: str, pg_url: str) -> Iterator[dict[str, str]]:
    """A fresh database (SQLite file or PostgreSQL schema), removed afterwards."""
    folder = tempfile.mkdtemp(prefix="taskito-bench-")
    try:
        if backend == "sqlite":
            yield {"TASKITO_BACKEND": "sqlite", "TASKITO_DB_PATH": f"{folder}/taskito.db", "LOG_DIR": folder}
            return
        import psycopg

        schema = f"taskito_bench_{uuid.uuid4().hex[:8]}"
        try:
            yield {"TASKITO_BACKEND": "postgres", "TASKITO_DB_URL": pg_url, "TASKITO_SCHEMA": schema,
                   "LOG_DIR": folder}
        finally:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def load_queue(env: dict[str, str]):
    os.environ.update(env)
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import bench_app

    # Reloaded for every database: its task must enqueue into this database, not the first one's.
    bench_app = importlib.reload(bench_app)
    return bench_app.queue, bench_app.noop


def start_workers(count: int, env: dict[str, str], log_dir: str,
                  app: str = "bench_app:queue", args: list[str] | None = None) -> list[subprocess.Popen[bytes]]:
    """Start worker processes from the CLI; their logs go to files (a full pipe would stall them)."""
    procs = []
    for index in range(count):
        log = open(f"{log_dir}/worker-{index}.log", "wb")  # noqa: SIM115 - closed with the process
        procs.append(subprocess.Popen([TASKITO, "worker", "--app", app, *(args or [])], cwd=HERE,
                                      env={**os.environ, **env}, stdout=log, stderr=log))
    deadline = time.monotonic() + 60
    for index, proc in enumerate(procs):
        while "started:" not in Path(f"{log_dir}/worker-{index}.log").read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {index} did not start: see {log_dir}/worker-{index}.log")
            time.sleep(0.01)
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGINT)
    for proc in procs:
        proc.wait(60)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_drained(queue, total: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while queue.stats()["completed"] < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"drain did not finish: {queue.stats()}")
        time.sleep(0.01)


def round_trip_ms(noop, rounds: int) -> list[float]:
    """Milliseconds from ``delay()`` to its result, ``rounds`` times one after the other, after one round trip
    not counted: a process's first ``result()`` sets up its waiting (on PostgreSQL, a LISTEN connection),
    which took 10-17 ms here, once per process, and was always the slowest round trip."""
    noop.delay().result(timeout=30)
    latencies = []
    for _ in range(rounds):
        started = time.perf_counter()
        noop.delay().result(timeout=30)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def measure(backend: str, jobs: int, rounds: int, pg_url: str) -> dict[str, float]:
    with database(backend, pg_url) as env:
        queue, noop = load_queue(env)
        started = time.perf_counter()
        for _ in range(jobs):
            noop.delay()
        single = jobs / (time.perf_counter() - started)

        started = time.perf_counter()
        noop.map([()] * jobs)
        batch = jobs / (time.perf_counter() - started)

        [worker] = start_workers(1, env, env["LOG_DIR"])
        try:
            # The worker drains from the moment it starts; its start-up is part of the figure.
            started = time.perf_counter()
            wait_drained(queue, 2 * jobs)
            drain = 2 * jobs / (time.perf_counter() - started)

            latencies = round_trip_ms(noop, rounds)
            rss = peak_rss_mb(worker.pid)
        finally:
            stop_workers([worker])
        queue.close()
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "single_enqueue_jobs_per_s": round(single),
        "batch_enqueue_jobs_per_s": round(batch),
        "drain_jobs_per_s": round(drain),
        "latency_p50_ms": round(cuts[49], 2),
        "latency_p95_ms": round(cuts[94], 2),
        "latency_p99_ms": round(cuts[98], 2),
        "worker_peak_rss_mb": round(rss, 1),
    }


def measure_scaling(backend: str, jobs: int, counts: list[int], pg_url: str) -> dict[str, int]:
    """Drain rate of `jobs` pre-enqueued jobs with 1, 2, 4... worker processes."""
    result = {}
    for count in counts:
        with database(backend, pg_url) as env:
            queue, noop = load_queue(env)
            noop.map([()] * jobs)
            procs = start_workers(count, env, env["LOG_DIR"])
            try:
                started = time.perf_counter()
                wait_drained(queue, jobs)
                result[str(count)] = round(jobs / (time.perf_counter() - started))
            finally:
                stop_workers(procs)
            queue.close()
    return result


def measure_async_drain(backend: str, jobs: int, pg_url: str) -> float:
    """Seconds one worker process (default async concurrency) takes to drain `jobs` coroutines that each
    await asyncio.sleep(0.1); at 100 at once the floor is jobs / 1000 s."""
    with database(backend, pg_url) as env:
        queue, _ = load_queue(env)
        queue.enqueue_many("bench_async_app.nap", [()] * jobs)
        [worker] = start_workers(1, env, env["LOG_DIR"], app="bench_async_app:queue")
        try:
            started = time.perf_counter()
            wait_drained(queue, jobs)
            seconds = time.perf_counter() - started
        finally:
            stop_workers([worker])
        queue.close()
    return round(seconds, 2)


def measure_counting(backend: str, rows: int, pg_url: str) -> dict[str, float]:
    """Milliseconds (median of 5) of stats(), stats_all_queues() and /metrics over `rows` finished jobs; of
    task_stats(), queue_stats() and task_series() over a busy week of task minutes."""
    with database(backend, pg_url) as env:
        queue, _ = load_queue(env)
        queue.connect()  # the tables exist before the rows are written into them
        from taskito.dashboard.metrics import render_metrics

        columns = "id, task_name, queue, status, payload, created_at, scheduled_at, started_at, finished_at"
        if backend == "sqlite":
            import sqlite3

            with sqlite3.connect(env["TASKITO_DB_PATH"]) as conn:
                conn.execute(f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "
                             f"INSERT INTO taskito_jobs ({columns}) SELECT printf('%032x', i), 'task' || (i % 10), "
                             "'q' || (i % 5), 'complete', x'7b7d', 1, 1, 1, 1 + (i % 100) / 50.0 FROM n")
        else:
            import psycopg

            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute(f'SET search_path TO "{env["TASKITO_SCHEMA"]}"')
                conn.execute(f"INSERT INTO taskito_jobs ({columns}) SELECT lpad(to_hex(i), 32, '0'), "
                             "'task' || (i % 10), 'q' || (i % 5), 'complete', '\\x7b7d', 1, 1, 1, 1 + (i % 100) / 50.0 "
                             f"FROM generate_series(1, {rows}) AS i")
        fill_task_minutes(queue)
        timings = {}
        for name, call in (("stats", queue.stats), ("stats_all_queues", queue.stats_all_queues),
                           ("metrics", lambda: render_metrics(queue)),
                           ("task_stats_7d", lambda: queue.task_stats(since=7 * 86400)),
                           ("queue_stats", queue.queue_stats),
                           ("task_series_7d", lambda: queue.task_series(since=7 * 86400, step=10800))):
            times = []
            for _ in range(5):
                started = time.perf_counter()
                call()
                times.append(time.perf_counter() - started)
            timings[f"{name}_ms"] = round(statistics.median(times) * 1000, 2)
        queue.close()
    return timings


def fill_task_minutes(queue) -> None:
    """A busy week as the workers' upkeep leaves it: per task, outcome and a few run and wait buckets, a row
    per minute for the last two hours and per hour before that."""
    now = time.time()
    hours_ago = (now - 7200) // 3600 * 3600
    starts = [int(now // 60 * 60) - 60 * i for i in range(120)] + [int(hours_ago) - 3600 * i for i in range(166)]
    rows = [{"minute": minute, "queue": f"q{task % 5}", "task_name": f"task{task}", "outcome": outcome,
             "runtime_le": runtime_le, "wait_le": wait_le, "n": 3, "runtime_sum": 0.1, "wait_sum": 0.05}
            for minute in starts for task in range(10) for outcome in ("complete", "failed")
            for runtime_le in (0.01, 0.1, 1.0) for wait_le in (0.05, 0.5)]
    storage = queue.storage
    for start in range(0, len(rows), 5000):
        with storage._transaction() as cur:
            cur.executemany(storage.sql["insert_task_minutes"] if "insert_task_minutes" in storage.sql else
                            "INSERT INTO taskito_task_minutes VALUES (%(minute)s, %(queue)s, %(task_name)s, "
                            "%(outcome)s, %(runtime_le)s, %(wait_le)s, %(n)s, %(runtime_sum)s, %(wait_sum)s)",
                            rows[start:start + 5000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--db-url", default=DEFAULT_PG_URL, help="PostgreSQL URL for --backend postgres")
    parser.add_argument("--rounds", type=int, help="latency round trips (default 200; 300 in scale mode)")
    parser.add_argument("--scaling", help="also drain with these worker-process counts, e.g. 1,2,4")
    parser.add_argument("--table-size", type=int,
                        help="scale mode: the same figures with tables of this many jobs (see scale.py)")
    parser.add_argument("--count-rows", type=int, help="also time stats() and /metrics over this many jobs")
    parser.add_argument("--chain-steps", type=int, default=1000, help="steps of the workflow benchmark's chain")
    parser.add_argument("--chord-members", type=int, default=10_000, help="members of its chord")
    args = parser.parse_args()
    from machine import measure_machine
    from speed import measure_speed

    if args.table_size:
        from scale import run_scale

        print(json.dumps({"backend": args.backend, "jobs": args.jobs, "cpus": os.cpu_count(),
                          "python": platform.python_version(), "machine": measure_machine(),
                          **run_scale(args.backend, args.table_size, args.jobs, args.rounds or 300, args.db_url)}))
        return
    report = {
        "backend": args.backend,
        "jobs": args.jobs,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": measure_machine(),
        **measure(args.backend, args.jobs, args.rounds or 200, args.db_url),
        **measure_speed(args.backend, args.jobs, args.db_url),
        "async_drain_sleep_0_1_s_seconds": measure_async_drain(args.backend, args.jobs, args.db_url),
    }
    from workflows import measure_workflows

    report["workflows"] = measure_workflows(args.backend, args.chain_steps, args.chord_members, args.db_url)
    if args.scaling:
        counts = [int(part) for part in args.scaling.split(",")]
        report["drain_jobs_per_s_by_worker_processes"] = measure_scaling(args.backend, args.jobs, counts, args.db_url)
    if args.count_rows:
        report[f"counting_at_{args.count_rows}_jobs"] = measure_counting(args.backend, args.count_rows, args.db_url)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
