"""Scale-out: four `taskito worker` processes on one PostgreSQL database, one of them kill -9'd.

20,000 jobs; each records its effect in a table with a UNIQUE job id (what an idempotent task
does) and logs every execution per worker process. Afterwards: every job complete, none lost,
none left running, every effect exactly once, and the only jobs that ran twice are jobs the
killed worker held, each recorded as a "worker lost" failed attempt.

The victim is killed at a moment it is known to hold jobs: frozen (SIGSTOP), its statements in
flight finished, the database shows jobs running under its id; only then SIGKILL. Those very
jobs must come back through their leases.
"""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from taskito import Queue
from tests.conftest import PG_URL
from tests.support import Process, start_worker, wait_until

psycopg = pytest.importorskip("psycopg")
from psycopg.conninfo import make_conninfo  # noqa: E402

APPS = Path(__file__).resolve().parent.parent / "apps"
JOBS = 20_000
WORKERS = 4


def sql(query: str, *params: object) -> list[tuple]:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        return conn.execute(query, params or None).fetchall()


def freeze_holding_jobs(victim: Process, worker_id: str, app_name: str, schema: str) -> list[str]:
    """Stop the victim; if the database shows it holding jobs, leave it stopped and return them.

    Once frozen with none of its statements running at the server, the jobs it holds can no
    longer change (their leases outlast this check). Holding none right now, it runs on.
    """
    victim.signal(signal.SIGSTOP)
    settled = False
    deadline = time.monotonic() + 2
    while not settled and time.monotonic() < deadline:
        settled = sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state = 'active'",
                      app_name) == [(0,)]
    # Claimed (waiting in its buffer) or running: either way the victim holds them under its lease.
    held = [row[0] for row in sql(f'SELECT id FROM "{schema}".taskito_jobs WHERE status IN '
                                  "('claimed', 'running') AND worker_id = %s", worker_id)] if settled else []
    if not held:  # frozen mid-statement (a busy server) or holding nothing: let it run on and try again
        victim.signal(signal.SIGCONT)
        time.sleep(0.01)
    return held


def test_four_workers_one_killed_every_job_exactly_once(pg_schema: str, tmp_path: Path) -> None:
    client = Queue(backend="postgres", db_url=PG_URL, schema=pg_schema).connect()  # creates the schema
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{pg_schema}".effects (job_id text PRIMARY KEY)')
    env = {
        "TASKITO_BACKEND": "postgres", "TASKITO_DB_URL": PG_URL, "TASKITO_SCHEMA": pg_schema,
        "TASKITO_LEASE_SECONDS": "2", "EFFECTS_DIR": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(APPS), os.environ.get("PYTHONPATH")])),
    }
    workers = []
    try:
        ids: list[str] = []
        for start in range(0, JOBS, 5000):
            ids += [job.id for job in client.enqueue_many("pg_app.mark", [(i,) for i in range(start, start + 5000)])]
        victim_app = f"taskito-victim-{uuid.uuid4().hex[:8]}"
        victim_env = {**env, "TASKITO_DB_URL": make_conninfo(PG_URL, application_name=victim_app)}
        workers = [start_worker("pg_app:queue", APPS, env=victim_env if i == 1 else env) for i in range(WORKERS)]
        victim = workers[1]
        victim_id = re.search(r"worker (\S+) started:", victim.output).group(1)
        wait_until(lambda: client.stats()["completed"] >= JOBS // 3, 60, interval=0.05, message="a third done")
        held = wait_until(lambda: freeze_holding_jobs(victim, victim_id, victim_app, pg_schema), 30, interval=0,
                          message="the victim to be frozen holding jobs")
        victim.kill()  # SIGKILL: no drain, no put-back, its claimed jobs hold their leases
        wait_until(lambda: client.stats()["completed"] == JOBS, 80, interval=0.2, message="every job complete")
        assert all(w.proc.poll() is None for w in workers if w is not victim)

        stats = client.stats()
        assert stats == {"pending": 0, "running": 0, "completed": JOBS, "failed": 0, "dead": 0, "cancelled": 0}
        with psycopg.connect(PG_URL) as conn:
            effects = [row[0] for row in conn.execute(f'SELECT job_id FROM "{pg_schema}".effects')]
        assert len(effects) == JOBS and set(effects) == set(ids)

        runs = {path.name: path.read_text().split() for path in tmp_path.glob("runs-*.log")}
        assert len(runs) == WORKERS, "each worker process ran jobs"
        executions = Counter(job_id for lines in runs.values() for job_id in lines)
        assert set(executions) == set(ids)
        victim_ran = set(runs[f"runs-{victim.proc.pid}.log"])
        ran_twice = {job_id for job_id, count in executions.items() if count > 1}
        assert ran_twice <= victim_ran, "only the killed worker's jobs may run again"
        recovered = [job for job in client.list_jobs(status="complete", limit=JOBS) if job.record.retry_count]
        assert set(held) <= {job.id for job in recovered}, "their leases must have brought back the jobs it held"
        for job in recovered:
            assert all("WorkerLost" in error["error"] for error in job.errors)
        assert ran_twice <= {job.id for job in recovered}
    finally:
        for worker in workers:
            worker.stop()
        client.close()
