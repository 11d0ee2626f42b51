"""The app that PostgreSQL worker tests run: ``taskito worker --app pg_app:queue``.

The queue comes from the environment (TASKITO_BACKEND=postgres, TASKITO_DB_URL, TASKITO_SCHEMA).
``mark`` has two side effects a test can count:

- ``<schema>.effects``: one row per job id (UNIQUE, the insert is idempotent), the effect a
  user's idempotent task would have: it must hold every job exactly once;
- ``runs-<pid>.log`` under EFFECTS_DIR: one line per execution, so re-runs can be attributed to
  the worker that did them.

The effect rows go through a connection of their own (application_name ``pg_app-effects``),
so that tests that terminate taskito's connections do not touch it.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import psycopg

from taskito import Queue, current_job

queue = Queue()
EFFECTS = Path(os.environ.get("EFFECTS_DIR", "."))
_local = threading.local()


def _effects_connection() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = psycopg.connect(queue.db_url, autocommit=True, application_name="pg_app-effects")
        conn.execute("SET synchronous_commit TO off")
        _local.conn = conn
    return conn


def _ran(job_id: str) -> None:
    fd = os.open(EFFECTS / f"runs-{os.getpid()}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, f"{job_id}\n".encode())
    finally:
        os.close(fd)


@queue.task(retry_backoff=0.2)
def mark(n: int, pause: float = 0.0) -> int:
    if pause:
        time.sleep(pause)
    _ran(current_job.id)
    for attempt in range(50):
        try:
            _effects_connection().execute(
                f'INSERT INTO "{queue.schema}".effects (job_id) VALUES (%s) ON CONFLICT DO NOTHING',
                (current_job.id,))
            break
        except psycopg.OperationalError:  # the server restarts under some tests: wait for it
            _local.conn = None
            if attempt == 49:
                raise
            time.sleep(0.2)
    return n
