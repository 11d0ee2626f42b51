"""What recording the per-task metrics (task minutes) costs the drain, on either engine.

This machine's speed wanders by 10-15 % from one run to the next (a CPU loop alone does), which hides a
cost of a few percent between two drains. So one worker drains one backlog while the recording is
switched off and on in turn every ``PHASE`` seconds, and each phase's machine CPU time (every process:
the worker and, on PostgreSQL, the server) and finished jobs go to its side: both sides see the same
machine. Off means: on SQLite, the worker's recording is a no-op while a file exists
(bench_app_minutes_switch); on PostgreSQL, the statement trigger that counts outcomes other than
completions is disabled and taskito_complete() is replaced by itself without its minutes statement. ``share`` is
what recording adds to the CPU per job, ``drain_share`` what it takes from the drain rate; medians of
``runs`` drains.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources

from throughput import database, load_queue, start_workers, stop_workers

PHASE = 0.25


def machine_cpu_seconds() -> float:
    """Busy time of every CPU since boot (user, nice, system, irq, softirq), from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()[1:8]
    user, nice, system, _idle, _iowait, irq, softirq = map(int, fields)
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


@contextmanager
def recording_switch(env: dict[str, str], pg_url: str) -> Iterator[Callable[[bool], None]]:
    """A function that turns the recording of task minutes on or off for the worker of ``env``."""
    if env["TASKITO_BACKEND"] == "sqlite":
        def switch_sqlite(on: bool) -> None:
            if on:
                if os.path.exists(env["BENCH_MINUTES_OFF"]):
                    os.unlink(env["BENCH_MINUTES_OFF"])
            else:
                open(env["BENCH_MINUTES_OFF"], "w").close()
        yield switch_sqlite
        return
    import psycopg

    functions = {True: complete_function(True), False: complete_function(False)}
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{env["TASKITO_SCHEMA"]}"')

        def switch_postgres(on: bool) -> None:
            conn.execute(f"ALTER TABLE taskito_jobs {'ENABLE' if on else 'DISABLE'} TRIGGER taskito_jobs_task_minutes")
            conn.execute(functions[on])
        yield switch_postgres


def complete_function(record_minutes: bool) -> str:
    """taskito_complete() as the schema has it, or without the statement that records its minutes."""
    sql = (resources.files("taskito.storage") / "sql/postgres/migrations/0015_minutes_in_complete.sql").read_text()
    function = sql[sql.index("CREATE OR REPLACE FUNCTION taskito_complete("):
                   sql.index("CREATE OR REPLACE FUNCTION taskito_record_task_minutes(")]
    if record_minutes:
        return function
    for pattern, replacement in ((r"\), minutes AS \(.*?\n    \)\n    SELECT", ")\n    SELECT"),
                                 (r"(RETURNING j\.id, j\.workflow_id, j\.wf_stage),.*? AS wait\n", "\\1\n")):
        function, found = re.subn(pattern, replacement, function, flags=re.S)
        assert found == 1, "the minutes statement of taskito_complete() changed: update metrics_cost.py"
    return function


def drain_in_phases(backend: str, jobs: int, pg_url: str) -> dict[bool, list[float]]:
    """One drain of ``jobs`` no-op jobs, the recording switched every PHASE seconds: per side (on, off)
    the machine CPU seconds, jobs finished and seconds elapsed."""
    with database(backend, pg_url) as env:
        env = {**env, "BENCH_MARKER": f"{env['LOG_DIR']}/marker", "BENCH_MINUTES_OFF": f"{env['LOG_DIR']}/off"}
        queue, _ = load_queue(env)
        queue.enqueue_many("bench_app.tick", [()] * jobs)
        queue.close()

        def finished() -> int:
            return os.path.getsize(env["BENCH_MARKER"]) if os.path.exists(env["BENCH_MARKER"]) else 0

        sides: dict[bool, list[float]] = {True: [0.0, 0, 0.0], False: [0.0, 0, 0.0]}
        [worker] = start_workers(1, env, env["LOG_DIR"], app="bench_app_minutes_switch:queue")
        try:
            with recording_switch(env, pg_url) as switch:
                on = True
                cpu, done, clock = machine_cpu_seconds(), finished(), time.perf_counter()
                while done < jobs * 0.95:  # the tail, when the worker runs out of work, is nobody's
                    on = not on
                    switch(on)
                    time.sleep(PHASE)
                    now_cpu, now_done, now_clock = machine_cpu_seconds(), finished(), time.perf_counter()
                    side = sides[on]
                    side[0] += now_cpu - cpu
                    side[1] += now_done - done
                    side[2] += now_clock - clock
                    cpu, done, clock = now_cpu, now_done, now_clock
        finally:
            stop_workers([worker])
    return sides


def measure_metrics_cost(backend: str, jobs: int, pg_url: str, runs: int = 5) -> dict[str, object]:
    shares, drain_shares, cpu_on, cpu_off = [], [], [], []
    for _ in range(runs):
        sides = drain_in_phases(backend, max(jobs, 40_000), pg_url)
        (on_cpu, on_jobs, on_time), (off_cpu, off_jobs, off_time) = sides[True], sides[False]
        cpu_on.append(on_cpu / on_jobs * 1e6)
        cpu_off.append(off_cpu / off_jobs * 1e6)
        shares.append(round(cpu_on[-1] / cpu_off[-1] - 1, 3))
        drain_shares.append(round(1 - (on_jobs / on_time) / (off_jobs / off_time), 3))
    return {"cpu_us_per_job_with": round(statistics.median(cpu_on), 1),
            "cpu_us_per_job_without": round(statistics.median(cpu_off), 1),
            "share": statistics.median(shares), "drain_share": statistics.median(drain_shares),
            "shares_of_each_run": shares, "drain_shares_of_each_run": drain_shares}
