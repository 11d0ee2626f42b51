"""What only the SQLite engine promises: its file, and a file that goes away."""

from __future__ import annotations

from pathlib import Path

from taskito import Queue


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
