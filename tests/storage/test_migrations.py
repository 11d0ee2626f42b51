"""Schemas are versioned and migrated in place: a database made by an older release keeps its jobs."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from taskito import Queue
from taskito.storage.sqlfiles import migrations
from tests.conftest import PG_URL

# Job ids were always 32 hex digits (uuid4().hex in the first release).
OLD_ID = "5f0c6a1e9b7d4c2a8e3f1b0d9c8a7e6f"
OLD_RUNNING_ID = "6a1e9b7d4c2a8e3f1b0d9c8a7e6f5f0c"


def _first_release_rows(execute) -> None:
    execute("INSERT INTO taskito_jobs (id, task_name, queue, status, priority, payload, created_at, scheduled_at, "
            "unique_key) VALUES ('" + OLD_ID + "', 'old.task', 'default', 'pending', 0, "
            "'{\"args\":[1],\"kwargs\":{}}', 1, 1, 'report')")
    # Claimed by a worker of that release, which has gone since: its lease ran out long ago.
    execute("INSERT INTO taskito_jobs (id, task_name, queue, status, priority, payload, created_at, scheduled_at, "
            "attempt, started_at, lease_until, worker_id) VALUES ('" + OLD_RUNNING_ID + "', 'old.task', 'busy', "
            "'running', 0, "
            "'{\"args\":[2],\"kwargs\":{}}', 1, 1, 1, 2, 3, 'old-worker')")
    execute("INSERT INTO taskito_job_errors (job_id, attempt, error, failed_at) VALUES ('" + OLD_RUNNING_ID + "', 0, "
            "'an earlier attempt failed', 1)")


def _works_after_the_upgrade(queue: Queue) -> None:
    """The old jobs are kept, and counted; a job claimed now is pending until it starts; unique keys still hold."""
    assert queue.stats() == {"pending": 1, "running": 1, "completed": 0, "failed": 0, "dead": 0, "cancelled": 0}
    assert queue.storage.task_metrics([1.0])["old.task"]["failures"] == 1
    assert queue.get_job(OLD_ID).status == "pending"
    assert [r.id for r in queue.storage.reap_expired_leases()] == [OLD_RUNNING_ID]
    [claimed] = queue.storage.claim("new-worker", ["default"], 10, 30)
    assert (claimed.id, claimed.worker_id) == (OLD_ID, "new-worker")
    assert (queue.get_job(OLD_ID).status, queue.stats()["running"]) == ("pending", 1)
    assert queue.enqueue("old.task", args=(1,), unique_key="report").id == OLD_ID
    assert queue.check_counts() == []


def test_sqlite_database_of_schema_v1_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    [(_, first)] = [m for m in migrations("sqlite") if m[0] == 1]
    with sqlite3.connect(path) as conn:
        conn.executescript(first)
        conn.execute("CREATE TABLE taskito_schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO taskito_schema_version VALUES (1)")
        _first_release_rows(conn.execute)
    queue = Queue(db_path=str(path))
    _works_after_the_upgrade(queue)
    queue.close()
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT max(version) FROM taskito_schema_version").fetchone()[0]
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert version == migrations("sqlite")[-1][0] and "taskito_job_errors_failed_at" in indexes


def test_postgres_schema_v1_is_migrated_in_place(pg_schema: str) -> None:
    import psycopg

    [(_, first)] = [m for m in migrations("postgres") if m[0] == 1]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{pg_schema}"')
        conn.execute(f'SET search_path TO "{pg_schema}"')
        conn.execute(first)
        conn.execute("CREATE TABLE taskito_schema_version (version integer PRIMARY KEY, "
                     "applied_at double precision NOT NULL)")
        conn.execute("INSERT INTO taskito_schema_version VALUES (1, %s)", (time.time(),))
        _first_release_rows(conn.execute)
    queue = Queue(backend="postgres", db_url=PG_URL, schema=pg_schema)
    _works_after_the_upgrade(queue)
    queue.close()
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        version = conn.execute(f'SELECT max(version) FROM "{pg_schema}".taskito_schema_version').fetchone()[0]
        index = conn.execute("SELECT to_regclass(%s)", (f"{pg_schema}.taskito_job_errors_failed_at",)).fetchone()[0]
    assert version == migrations("postgres")[-1][0] and index is not None
