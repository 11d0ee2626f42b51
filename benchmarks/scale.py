"""Scale mode of the benchmark: the same figures with large tables, and what large batches do to others.

    python benchmarks/throughput.py --table-size 1000000 [--backend postgres] [--jobs 10000]

One database is filled in stages, each measured with a fresh worker process started from the CLI:
``empty``, then ``completed`` (+N completed jobs), ``unserved`` (+N pending jobs in a queue no
worker serves), ``delayed`` (+N/10 jobs of the worker's own queue due in a day). Each stage reports
the worker's idle CPU, round-trip latency (p50/p99/max), single enqueues per second beside the idle
worker, the drain rate of ``--jobs`` jobs, jobs reaped as "worker lost", and how long the reads of
the API, the dashboard and ``/metrics`` take. Then ``beside_a_new_table``: the full database's
worker and one on a brand-new database drain at the same time, round after round, and the ratio of
their rates is taken (the stages, measured minutes apart, move with the machine by more than 10 %).
Then: a ``map`` of N jobs and a purge of the N
completed jobs, each with another process enqueueing meanwhile (its slowest enqueue is the longest
any writer waited), and ``flood``: a worker started on an empty database, then given N/10 jobs
(on PostgreSQL, the case where a claim plan cached while the table was empty could go bad).

The tables are filled with SQL (seconds for a million rows), not through the API. Finished jobs
are counted by a marker file the ``tick`` task appends to, so the harness never counts the table.

On PostgreSQL each fill ends as an operator's routine maintenance would leave the table, so that every
stage starts from the state the empty one starts from, only bigger: ``VACUUM ANALYZE`` (which cleans the
jobs table's indexes: without that, the claim index kept the previous stages' claimed entries and the
next stage's claims read three times as many of its pages) and a ``CHECKPOINT``: the fill's WAL (half a
gigabyte per million rows) starts a checkpoint that would otherwise write the table out during the
stage's round trips.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from throughput import HERE, TASKITO, database, load_queue, round_trip_ms, stop_workers

IDLE_WINDOW = 12.0  # seconds of idle CPU measured: two safety-net claims (every 5 s), an upkeep round (10 s by default)
DRAIN_PATIENCE = 120.0  # seconds a drain may take before its rate is taken from what finished
PAYLOAD = b'{"args":[],"kwargs":{}}'


# -- filling tables with SQL ---------------------------------------------------------------
_KINDS = {
    # kind: (prefix of the ids, queue, status, seconds from now of scheduled_at)
    "completed": (1, "default", "complete", -2 * 86400.0),
    "unserved": (2, "elsewhere", "pending", -3600.0),
    "delayed": (3, "default", "pending", 86400.0),
}


def fill(env: dict[str, str], kind: str, count: int) -> float:
    """Insert ``count`` rows of one kind straight into the jobs table; returns the seconds it took."""
    prefix, queue_name, status, offset = _KINDS[kind]
    now = time.time()
    scheduled = now + offset
    finished = scheduled + 0.001 if status == "complete" else None
    # Schemas that keep jobs due later out of the claim index flag them as taskito's enqueue does.
    delayed = None if finished else offset > 0
    started = time.perf_counter()
    if env["TASKITO_BACKEND"] == "sqlite":
        import sqlite3

        with sqlite3.connect(env["TASKITO_DB_PATH"]) as conn:
            flagged = any(row[1] == "delayed" for row in conn.execute("PRAGMA table_info(taskito_jobs)"))
            conn.execute(
                "INSERT INTO taskito_jobs (id, task_name, queue, status, priority, payload, result, attempt, "
                f"created_at, scheduled_at, started_at, finished_at{', delayed' if flagged else ''}) "
                "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < ?) "
                f"SELECT printf('ff%02x%028x', ?, n), 'bench_app.noop', ?, ?, 0, ?, ?, ?, ?, ?, ?, ?"
                f"{', ?' if flagged else ''} FROM c",
                (count, prefix, queue_name, status, PAYLOAD, b"null" if finished else None, 1 if finished else 0,
                 scheduled, scheduled, scheduled if finished else None, finished, *([delayed] if flagged else [])))
    else:
        import psycopg

        with psycopg.connect(env["TASKITO_DB_URL"], autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{env["TASKITO_SCHEMA"]}"')
            flagged = conn.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = %s AND "
                                   "table_name = 'taskito_jobs' AND column_name = 'delayed'",
                                   (env["TASKITO_SCHEMA"],)).fetchone()[0] == 1
            conn.execute(
                "INSERT INTO taskito_jobs (id, task_name, queue, status, priority, payload, result, attempt, "
                f"created_at, scheduled_at, started_at, finished_at{', delayed' if flagged else ''}) "
                "SELECT 'ff' || lpad(to_hex(%s::integer), 2, '0') || lpad(to_hex(n), 28, '0'), 'bench_app.noop', "
                f"%s, %s, 0, %s, %s, %s, %s, %s, %s, %s{', %s' if flagged else ''} "
                "FROM generate_series(1, %s::integer) AS n",
                (prefix, queue_name, status, PAYLOAD, b"null" if finished else None, 1 if finished else 0,
                 scheduled, scheduled, scheduled if finished else None, finished, *([delayed] if flagged else []),
                 count))
            conn.execute("VACUUM ANALYZE taskito_jobs")
            conn.execute("CHECKPOINT")  # see the module's docstring for both
    return time.perf_counter() - started


def remove_unfinished_ticks(env: dict[str, str]) -> None:
    """Drop the tick jobs a drain that ran out of patience left behind (the next stage drains its own)."""
    statement = "DELETE FROM taskito_jobs WHERE task_name = 'bench_app.tick' AND status <> 'complete'"
    if env["TASKITO_BACKEND"] == "sqlite":
        import sqlite3

        with sqlite3.connect(env["TASKITO_DB_PATH"]) as conn:
            conn.execute(statement)
    else:
        import psycopg

        with psycopg.connect(env["TASKITO_DB_URL"], autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{env["TASKITO_SCHEMA"]}"')
            conn.execute(statement)


# -- one worker process ------------------------------------------------------------------
def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        proc = subprocess.Popen([TASKITO, "worker", "--app", "bench_app:queue"], cwd=HERE,
                                env={**os.environ, **env}, stdout=out, stderr=out)
    deadline = time.monotonic() + 60
    while "started:" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start: see {log}")
        time.sleep(0.01)
    return proc


def cpu_seconds(pid: int) -> float:
    """CPU time of the process's threads, in nanoseconds from the scheduler: an idle worker uses a few
    clock ticks in the window, and /proc/<pid>/stat counts whole ticks."""
    tasks = Path(f"/proc/{pid}/task")
    return sum(int((tasks / tid / "schedstat").read_text().split()[0]) for tid in os.listdir(tasks)) / 1e9


def idle_cpu_percent(pid: int) -> float:
    time.sleep(0.5)  # settle after start-up
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(IDLE_WINDOW)
    return 100 * (cpu_seconds(pid) - before) / (time.monotonic() - started)


def marker_count(marker: Path) -> int:
    try:
        return marker.stat().st_size
    except FileNotFoundError:
        return 0


def finished_since(markers: list[Path], base: list[int]) -> list[int]:
    """Jobs finished per marker file since its count was ``base``."""
    return [marker_count(marker) - first for marker, first in zip(markers, base, strict=True)]


def drain(tick: Any, marker: Path, jobs: int) -> dict[str, Any]:
    """Enqueue ``jobs`` tick jobs with ``map`` and time the running worker through them."""
    base = marker_count(marker)
    tick.map([()] * jobs)
    started = time.perf_counter()
    deadline = time.monotonic() + DRAIN_PATIENCE
    while marker_count(marker) - base < jobs and time.monotonic() < deadline:
        time.sleep(0.01)
    done = marker_count(marker) - base
    figures: dict[str, Any] = {"drain_jobs_per_s": round(done / (time.perf_counter() - started))}
    if done < jobs:
        figures["drain_unfinished"] = jobs - done
    return figures


def round_trips(noop: Any, rounds: int) -> dict[str, float]:
    latencies = round_trip_ms(noop, rounds)
    cuts = statistics.quantiles(latencies, n=100)
    return {"latency_p50_ms": round(cuts[49], 2), "latency_p99_ms": round(cuts[98], 2),
            "latency_max_ms": round(max(latencies), 2)}


def single_enqueue_rate(noop: Any, count: int) -> int:
    """Single enqueues into a queue nobody serves, beside the idle worker (whose claims may hold locks)."""
    started = time.perf_counter()
    for _ in range(count):
        noop.apply_async(queue="probe")
    return round(count / (time.perf_counter() - started))


def read_times(queue: Any) -> dict[str, float]:
    """Milliseconds (median of 3) of the reads users and scrapers make."""
    from werkzeug.test import Client

    from taskito.dashboard import create_app

    client = Client(create_app(queue, token=None))
    reads = {
        "stats": queue.stats,
        "stats_all_queues": queue.stats_all_queues,
        "list_jobs": lambda: queue.list_jobs(limit=50),
        "list_jobs_status_without_rows": lambda: queue.list_jobs(status="dead", limit=50),
        "list_jobs_queue_page_20": lambda: queue.list_jobs(queue="default", limit=50, offset=1000),
        "api_stats": lambda: client.get("/api/stats"),
        "api_queues": lambda: client.get("/api/queues"),
        "api_jobs": lambda: client.get("/api/jobs"),
        "metrics": lambda: client.get("/metrics"),
    }
    times = {}
    for name, read in reads.items():
        samples = []
        for _ in range(3):
            started = time.perf_counter()
            read()
            samples.append((time.perf_counter() - started) * 1000)
        times[name] = round(statistics.median(samples), 1)
    return times


def page_reads(queue: Any) -> dict[str, str]:
    """The JSON reads of every dashboard page, as its script makes them (a page makes several at once)."""
    newest = queue.list_jobs(limit=1)
    job_id = newest[0].id if newest else "0" * 32
    return {
        "overview": ["/api/stats", "/api/throughput?window=600&step=10"],
        "overview_24h": ["/api/stats", "/api/throughput?window=86400&step=3600"],
        "overview_7d": ["/api/stats", "/api/throughput?window=604800&step=10800"],
        "jobs": ["/api/jobs?limit=25"],
        "jobs_page_40": ["/api/jobs?limit=25&offset=1000"],
        "jobs_status_complete": ["/api/jobs?status=complete&limit=25"],
        "jobs_status_dead": ["/api/jobs?status=dead&limit=25"],
        "jobs_queue": ["/api/jobs?queue=default&limit=25"],
        "jobs_task": ["/api/jobs?task=bench_app.noop&limit=25"],
        "jobs_sort_task": ["/api/jobs?sort=task&limit=25"],
        "jobs_sort_status": ["/api/jobs?sort=-status&limit=25"],
        "jobs_sort_finished": ["/api/jobs?status=complete&sort=-finished&limit=25"],
        "jobs_sort_finished_oldest": ["/api/jobs?status=complete&sort=finished&limit=25"],
        "jobs_id_prefix": [f"/api/jobs?id={job_id[:6]}&limit=25"],
        "jobs_id_prefix_no_match": ["/api/jobs?id=0000&limit=25"],
        "jobs_text_no_match": ["/api/jobs?text=no-such-text&limit=25"],
        "jobs_text_status": ["/api/jobs?status=complete&text=no-such-text&limit=25"],
        "job": [f"/api/jobs/{job_id}", f"/api/jobs/{job_id}/logs"],
        "dead": ["/api/dead-letters?limit=25"],
        "queues": ["/api/queues"],
        "workers": ["/api/workers"],
        "schedules": ["/api/schedules"],
        "tasks": ["/api/tasks?since=3600", "/api/task-series?since=3600&step=60"],
        "tasks_7d": ["/api/tasks?since=604800", "/api/task-series?since=604800&step=10800"],
        "workflows": ["/api/workflows?limit=25"],
        "metrics": ["/metrics"],
    }


def page_times(queue: Any) -> dict[str, float]:
    """Milliseconds (median of 3) each dashboard page's reads take, one after the other, through the WSGI
    app (routing, views, queries, JSON): the time a page waits for its data at this table size."""
    from werkzeug.test import Client

    from taskito.dashboard import create_app

    client = Client(create_app(queue, token=None))
    times = {}
    for name, paths in page_reads(queue).items():
        samples = []
        for _ in range(3):
            started = time.perf_counter()
            for path in paths:
                response = client.get(path)
                if response.status_code != 200:
                    raise RuntimeError(f"{path} answered {response.status_code}: {response.get_data(as_text=True)}")
            samples.append((time.perf_counter() - started) * 1000)
        times[name] = round(statistics.median(samples), 1)
    return times


def admin_page_times(env: dict[str, str]) -> dict[str, float]:
    """The Django admin's pages (admin_pages.py, a process of its own: Django's settings are global)."""
    found = subprocess.run([sys.executable, str(HERE / "admin_pages.py")], cwd=HERE, env={**os.environ, **env},
                           capture_output=True, text=True, timeout=300)
    if found.returncode:
        raise RuntimeError(f"admin_pages.py failed: {found.stderr}")
    return dict(json.loads(found.stdout))


def stage(env: dict[str, str], queue: Any, tasks: dict[str, Any], name: str, jobs: int,
          rounds: int) -> dict[str, Any]:
    folder = Path(env["LOG_DIR"])
    marker = folder / "ticks"
    log = folder / f"worker-{name}.log"
    worker = start_worker({**env, "BENCH_MARKER": str(marker)}, log)
    try:
        figures: dict[str, Any] = {"idle_cpu_percent": round(idle_cpu_percent(worker.pid), 2)}
        figures.update(round_trips(tasks["noop"], rounds))
        figures["single_enqueue_beside_idle_worker_jobs_per_s"] = single_enqueue_rate(tasks["noop"], 1000)
        figures.update(drain(tasks["tick"], marker, jobs))
    finally:
        stop_workers([worker])
    figures["jobs_reaped_as_worker_lost"] = log.read_text().count("was lost")
    if figures.get("drain_unfinished"):
        remove_unfinished_ticks(env)
    figures["read_ms"] = read_times(queue)
    figures["page_ms"] = {**page_times(queue), **admin_page_times(env)}
    return figures


# -- another process enqueueing during big batches -------------------------------------------
class Probe:
    """A process that enqueues single jobs until told to stop, then reports how long they waited."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "probe"], cwd=HERE, env={**os.environ, **env},
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        self.proc.stdout.readline()  # "ready": its queue is open and has enqueued once

    def finish(self) -> dict[str, Any]:
        out, _ = self.proc.communicate(timeout=120)
        return json.loads(out)


def probe_main() -> None:
    queue, noop = load_queue({})
    stop = threading.Event()
    noop.apply_async(queue="probe")
    print("ready", flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    waits = []
    failed = 0
    while not stop.is_set():
        started = time.perf_counter()
        try:
            noop.apply_async(queue="probe")
        except Exception:  # e.g. the busy timeout passed: the batch held the write lock longer than that
            failed += 1
        waits.append((time.perf_counter() - started) * 1000)
    queue.close()
    waits.sort()
    print(json.dumps({"enqueues": len(waits), "failed": failed, "max_wait_ms": round(waits[-1], 1) if waits else None,
                      "p99_wait_ms": round(waits[int(len(waits) * 0.99)], 1) if waits else None}))


def batches_beside_an_enqueuer(env: dict[str, str], queue: Any, noop: Any, size: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    probe = Probe(env)
    started = time.perf_counter()
    noop.map([()] * size, queue="mapped")
    took = time.perf_counter() - started
    result["map"] = {"jobs": size, "seconds": round(took, 2), "other_process": probe.finish()}
    probe = Probe(env)
    started = time.perf_counter()
    removed = queue.purge_completed(older_than=86400)
    took = time.perf_counter() - started
    result["purge"] = {"jobs": removed, "seconds": round(took, 2), "other_process": probe.finish()}
    return result


# -- the big table against a brand-new one, at the same time -------------------------------------
def drain_beside_a_new_table(env: dict[str, str], queue: Any, jobs: int, pg_url: str,
                             rounds: int = 6) -> dict[str, Any]:
    """A worker on the big database and one on a brand-new database drain ``jobs`` each at the same time,
    ``rounds`` times (new workers and a new database each round): the ratio of their rates while both run.
    Drains of the stages, minutes apart, move by 20-30 % with the machine; side by side, both see the same one."""
    big_marker = Path(env["LOG_DIR"]) / "ticks-beside"
    ratios = []
    for _ in range(rounds):
        with database(env["TASKITO_BACKEND"], pg_url) as new_env:
            new_marker = Path(new_env["LOG_DIR"]) / "ticks"
            new_queue, _ = load_queue(new_env)
            new_queue.connect()
            workers = [
                start_worker({**env, "BENCH_MARKER": str(big_marker)}, Path(env["LOG_DIR"]) / "worker-beside.log"),
                start_worker({**new_env, "BENCH_MARKER": str(new_marker)}, Path(new_env["LOG_DIR"]) / "worker.log")]
            try:
                markers = [big_marker, new_marker]
                base = [marker_count(marker) for marker in markers]
                for side_queue in (queue, new_queue):
                    side_queue.enqueue_many("bench_app.tick", [()] * jobs)
                while min(finished_since(markers, base)) < jobs // 20:  # both drain: they share the machine now
                    time.sleep(0.005)
                start = finished_since(markers, base)
                while max(end := finished_since(markers, base)) < jobs * 0.95:  # until one side is nearly through
                    time.sleep(0.005)
                ratios.append(round((end[0] - start[0]) / (end[1] - start[1]), 3))
                deadline = time.monotonic() + DRAIN_PATIENCE
                while min(finished_since(markers, base)) < jobs and time.monotonic() < deadline:
                    time.sleep(0.01)
            finally:
                stop_workers(workers)
                new_queue.close()
    return {"drain_ratio_median": round(statistics.median(ratios), 3), "drain_ratio_by_round": ratios}


def flood(backend: str, pg_url: str, jobs: int) -> dict[str, Any]:
    """A worker starts on an empty database and idles (its claims run on an empty table), then gets ``jobs``."""
    with database(backend, pg_url) as env:
        queue, _noop = load_queue(env)
        marker = Path(env["LOG_DIR"]) / "ticks"
        worker = start_worker({**env, "BENCH_MARKER": str(marker)}, Path(env["LOG_DIR"]) / "worker-flood.log")
        try:
            time.sleep(1.0)
            figures = drain(queue.tasks["bench_app.tick"], marker, jobs)
        finally:
            stop_workers([worker])
        queue.close()
    return {"jobs": jobs, **figures}


def run_scale(backend: str, table_size: int, jobs: int, rounds: int, pg_url: str) -> dict[str, Any]:
    report: dict[str, Any] = {"table_size": table_size, "stages": {}}
    with database(backend, pg_url) as env:
        queue, noop = load_queue(env)
        tasks = {"noop": noop, "tick": queue.tasks["bench_app.tick"]}
        report["stages"]["empty"] = stage(env, queue, tasks, "empty", jobs, rounds)
        for kind, count in (("completed", table_size), ("unserved", table_size), ("delayed", table_size // 10)):
            fill_seconds = fill(env, kind, count)
            report["stages"][kind] = {"rows_added": count, "fill_seconds": round(fill_seconds, 1),
                                      **stage(env, queue, tasks, kind, jobs, rounds)}
        report["beside_a_new_table"] = drain_beside_a_new_table(env, queue, jobs, pg_url)
        report.update(batches_beside_an_enqueuer(env, queue, noop, table_size))
        queue.close()
    report["flood"] = flood(backend, pg_url, max(jobs, table_size // 10))
    return report


if __name__ == "__main__" and sys.argv[1:] == ["probe"]:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    probe_main()
