"""What only the SQLite engine promises: its file, and a file that goes away."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import taskito.storage.sqlite as sqlite_engine
from taskito import DatabaseUnavailableError, Queue


def test_an_enqueue_only_process_follows_a_replaced_database_file(tmp_path: Path) -> None:
    """A web server that only enqueues must not go on writing into a deleted file no worker reads."""
    db = tmp_path / "taskito.db"
    web = Queue(db_path=str(db))
    try:
        web.enqueue("t")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink()
        worker = Queue(db_path=str(db))  # a worker (re)started on the path: a new, empty file
        try:
            ids = [web.enqueue("t", args=(n,)).id for n in range(5)]
            assert worker.stats()["pending"] == 5
            assert {job.id for job in worker.list_jobs(status="pending")} == set(ids)
        finally:
            worker.close()
    finally:
        web.close()


def test_a_write_lock_held_elsewhere_neither_stops_start_up_nor_reads(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """WAL lets readers through a writer's lock: a web app, `taskito info` or a dashboard starting
    while a long transaction runs must come up; an enqueue that cannot get the lock says why."""
    monkeypatch.setattr(sqlite_engine, "BUSY_TIMEOUT", 0.2)
    db = tmp_path / "taskito.db"
    first = Queue(db_path=str(db))  # the file exists, with its schema and a job
    first.enqueue("t")
    first.close()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        q = Queue(db_path=str(db))
        assert q.stats()["pending"] == 1
        with pytest.raises(DatabaseUnavailableError, match="taskito.db.*locked.*another connection"):
            q.enqueue("t")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert q.enqueue("t").status == "pending"  # and it recovers once the lock is gone
    assert q.stats()["pending"] == 2
    q.close()
