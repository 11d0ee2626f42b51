"""What only the SQLite engine promises: its file, and a file that goes away."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import taskito.storage.sqlite as sqlite_engine
from taskito import DatabaseUnavailableError, Queue
from taskito.storage import Completion
from tests.support import jobs_in_database_file, run_cli


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


@pytest.mark.serial  # it counts the milliseconds an enqueue waits: alone, so that nothing else delays it
def test_an_enqueue_gets_in_at_the_first_pause_of_a_writer_that_commits_in_chunks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bulk operation (a map of a million jobs, a purge) holds the write lock a chunk at a time, with a
    short pause between chunks. An enqueue that meets it must get in at the next pause, however long it
    has waited already: SQLite's own busy wait spaces its tries 100 ms apart after 0.2 s, and missed
    every 50 ms pause of this writer."""
    monkeypatch.setattr(sqlite_engine, "BUSY_TIMEOUT", 3.0)
    db = tmp_path / "taskito.db"
    q = Queue(db_path=str(db))
    q.enqueue("t")
    writer = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holding, stop = threading.Event(), threading.Event()

    def chunks() -> None:
        while not stop.is_set():
            writer.execute("BEGIN IMMEDIATE")
            holding.set()
            time.sleep(0.25)
            holding.clear()
            writer.execute("COMMIT")
            time.sleep(0.05)

    thread = threading.Thread(target=chunks)
    thread.start()
    waits = []
    try:
        for _ in range(4):
            assert holding.wait(5)
            started = time.monotonic()
            q.enqueue("t")  # DatabaseUnavailableError after BUSY_TIMEOUT if it never gets in
            waits.append(time.monotonic() - started)
            while holding.is_set():  # the next try starts at the start of a chunk
                time.sleep(0.001)
    finally:
        stop.set()
        thread.join()
        writer.close()
    assert max(waits) < 0.4, f"waited {[round(wait, 3) for wait in waits]} s for chunks of 0.25 s"
    assert q.stats()["pending"] == 5
    q.close()


@pytest.mark.serial  # it counts the milliseconds an enqueue waits: alone, so that nothing else delays it
def test_an_enqueue_gets_the_write_lock_soon_after_its_release_and_before_a_waiting_worker(tmp_path: Path) -> None:
    """A worker's claims and completions hold the write lock about a millisecond each. An enqueue (a web
    request) that meets it must get in within a millisecond or so of its release, not at SQLite's next
    try 1 to 10 ms later; and when a worker's process waits for the lock too, the enqueue goes first."""
    db = tmp_path / "taskito.db"
    producer, worker = Queue(db_path=str(db)), Queue(db_path=str(db))
    producer.enqueue("t")
    worker.storage.register_worker("w", {"hostname": "h", "pid": 1, "queues": ["default"], "concurrency": 1})
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    lags, first, claimed = [], [], []

    def claim(done: dict[str, float]) -> None:
        claimed.extend(worker.storage.claim("w", ["default"], 1, 30))
        done["claim"] = time.monotonic()

    def enqueue(done: dict[str, float]) -> None:
        producer.enqueue("t")
        done["enqueue"] = time.monotonic()

    try:
        for _ in range(10):
            worker.enqueue("t")  # a job for the worker's claim to take
            done: dict[str, float] = {}
            holder.execute("BEGIN IMMEDIATE")
            claiming = threading.Thread(target=claim, args=(done,))
            enqueuing = threading.Thread(target=enqueue, args=(done,))
            claiming.start()  # the worker waits first
            time.sleep(0.005)
            enqueuing.start()
            time.sleep(0.03)
            released = time.monotonic()
            holder.execute("COMMIT")
            claiming.join()
            enqueuing.join()
            lags.append(done["enqueue"] - released)
            first.append(min(done, key=done.__getitem__))
    finally:
        holder.close()
        worker.storage.unregister_worker("w")
    assert first.count("enqueue") >= 8, first
    assert sorted(lags)[len(lags) // 2] < 0.003, f"enqueues got in {[round(lag * 1000, 1) for lag in lags]} ms late"
    assert len(claimed) == 10 and producer.stats()["pending"] == 21  # claimed jobs count as pending until they start
    producer.close()
    worker.close()


def test_a_claim_with_nothing_to_take_does_not_wait_for_the_write_lock(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every commit wakes every idle SQLite worker, and most bring it nothing (a completion, another queue's
    job, a paused queue's): such a claim must not queue up for the one write lock producers need."""
    monkeypatch.setattr(sqlite_engine, "BUSY_TIMEOUT", 0.3)
    db = tmp_path / "taskito.db"
    q = Queue(db_path=str(db))
    q.enqueue("t", queue="other")
    q.pause("paused")
    q.enqueue("t", queue="paused")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        assert q.storage.claim("w", ["default", "paused"], 5, 30) == []  # no DatabaseUnavailableError
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    q.enqueue("t")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DatabaseUnavailableError, match="locked"):  # a job to take: it waits for the lock
            q.storage.claim("w", ["default"], 5, 30)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert len(q.storage.claim("w", ["default"], 5, 30)) == 1
    q.close()


def test_an_idle_worker_wakes_on_a_commit_not_at_its_next_poll(tmp_path: Path) -> None:
    """An idle SQLite worker's polls grow 20 ms apart; the write of a commit wakes it at once (inotify on
    the database's folder), so the first job after a pause does not wait for the next poll."""
    db = tmp_path / "taskito.db"
    worker, producer = Queue(db_path=str(db)).connect(), Queue(db_path=str(db))
    storage = worker.storage
    assert isinstance(storage, sqlite_engine.SQLiteStorage)
    storage.claim("w", ["default"], 1, 30)
    assert storage.wait_for_work(0.05) is False  # nothing happened: it waits out its timeout
    storage._watch_interval = 10.0  # a poll this far off would be its timeout's, not the commit's
    storage.claim("w", ["default"], 1, 30)
    timer = threading.Timer(0.2, lambda: producer.enqueue("t"))
    timer.start()
    started = time.monotonic()
    try:
        assert storage.wait_for_work(5.0) is True
        assert time.monotonic() - started < 2.5, "woken by its timeout, not by the commit"
    finally:
        timer.join()
        worker.close()
        producer.close()


def _complete_later(db: Path, job_id: str, delay: float) -> threading.Timer:
    """Another process's worker, as far as the waiter can tell: claims and completes ``job_id`` after ``delay``."""
    def finish() -> None:
        worker = Queue(db_path=str(db))
        try:
            [record] = worker.storage.claim("w", ["default"], 1, 30)
            assert record.id == job_id
            worker.storage.complete([Completion(record.id, record.attempt, b"7")])
        finally:
            worker.close()
    timer = threading.Timer(delay, finish)
    timer.start()
    return timer


def test_a_result_waiter_wakes_on_the_completion_not_at_its_next_poll(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """result() on SQLite wakes when the completion is written (inotify, a wake per waiting call), so a job's
    result is seen as soon as it is committed, however far off the next poll is."""
    db = tmp_path / "taskito.db"
    client = Queue(db_path=str(db))
    job = client.enqueue("t")
    monkeypatch.setattr(sqlite_engine, "WATCH_STEP_MIN", 10.0)  # a poll this far off would be the timeout's
    timer = _complete_later(db, job.id, 0.2)
    started = time.monotonic()
    try:
        record = client.storage.wait_for_result(job.id, 5.0)
        assert record is not None and record.status == "complete" and record.result == b"7"
        assert time.monotonic() - started < 2.5, "woken by its timeout, not by the completion"
    finally:
        timer.join()
        client.close()


def test_a_result_waiter_without_inotify_polls_and_leaves_no_descriptor_open(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "taskito.db"
    client = Queue(db_path=str(db))
    job = client.enqueue("t")
    client.storage.wait_for_result(job.id, 0.01)  # the pool's connections and the watcher are open from here
    descriptors = len(os.listdir("/proc/self/fd"))
    for _ in range(50):  # each wait opens a wake of its own while the job is unfinished, and closes it
        assert client.storage.wait_for_result(job.id, 0.005).status == "pending"
    assert len(os.listdir("/proc/self/fd")) == descriptors

    monkeypatch.setattr(sqlite_engine, "open_wake", lambda database: None)  # no inotify (not Linux, or none left)
    timer = _complete_later(db, job.id, 0.1)
    try:
        assert client.storage.wait_for_result(job.id, 10.0).status == "complete"
    finally:
        timer.join()
        client.close()


EXHAUST_FDS = r"""
import json, os, resource, sys
from taskito import DatabaseUnavailableError, Queue

resource.setrlimit(resource.RLIMIT_NOFILE, (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
q = Queue(db_path=sys.argv[1]).connect()        # schema made; connections open lazily: the pool is empty
held = []
try:
    while True:                                 # every descriptor the limit allows
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
refused = []
for _ in range(12):                             # more than the pool's 8 slots
    try:
        q.enqueue("t")
        refused.append("enqueued")
    except DatabaseUnavailableError as exc:
        refused.append(str(exc))
try:
    q.storage.wait_for_work(0.05)               # an idle worker's wait: it must not crash the worker
    waited = "returned"
except Exception as exc:
    waited = repr(exc)
for fd in held:
    os.close(fd)
job = q.enqueue("t")
print(json.dumps({"refused": refused, "waited": waited, "after": q.get_job(job.id).status,
                  "pending": q.stats()["pending"]}))
"""


def test_a_call_that_finds_every_pooled_connection_busy_fails_clearly_and_loses_no_slot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_engine, "BUSY_TIMEOUT", 0.2)
    q = Queue(db_path=str(tmp_path / "taskito.db"), pool_size=1)
    try:
        q.enqueue("t")
        held, release = threading.Event(), threading.Event()

        def hold_the_only_connection() -> None:
            with q.storage._connection():
                held.set()
                release.wait(10)

        holder = threading.Thread(target=hold_the_only_connection)
        holder.start()
        held.wait(10)
        with pytest.raises(DatabaseUnavailableError, match="all 1 connections stayed in use for 0.2s; raise pool_size"):
            q.enqueue("t")
        release.set()
        holder.join()
        with pytest.raises(DatabaseUnavailableError):  # an error inside the block gives the connection back too
            with q.storage._connection() as conn:
                conn.execute("SELECT * FROM no_such_table")
        q.enqueue("t")
        assert q.stats()["pending"] == 2
    finally:
        q.close()


def test_running_out_of_file_descriptors_fails_each_call_then_recovers(tmp_path: Path) -> None:
    """EMFILE must not eat the pool's slots: every call says why at once (no hang), and the
    queue works again as soon as descriptors are free."""
    db = tmp_path / "taskito.db"
    result = subprocess.run([sys.executable, "-c", EXHAUST_FDS, str(db)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert len(outcome["refused"]) == 12
    for message in outcome["refused"]:
        assert str(db) in message and "Too many open files" in message, message
    assert outcome["waited"] == "returned"
    assert (outcome["after"], outcome["pending"]) == ("pending", 1)


APPS = Path(__file__).resolve().parent.parent / "apps"
BIG = "x" * 4000  # per job: 2,000 of them put about 10 MB through the WAL in one transaction


def wal_size(db: Path) -> int:
    wal = Path(f"{db}-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_a_big_purge_leaves_a_small_wal(tmp_path: Path) -> None:
    db = tmp_path / "taskito.db"
    q = Queue(db_path=str(db))
    try:
        q.enqueue_many("t", [(BIG,)] * 2000)
        with sqlite3.connect(db) as conn:  # as if they had all run long ago
            conn.execute("UPDATE taskito_jobs SET status = 'complete', finished_at = 1")
        conn.close()
        assert wal_size(db) > 5_000_000
        assert q.purge_completed(older_than=60) == 2000
        assert wal_size(db) < 100_000
        assert q.stats()["completed"] == 0
    finally:
        q.close()


def test_a_new_database_gets_small_pages_and_an_existing_one_keeps_its_own(tmp_path: Path) -> None:
    """Small pages make every commit write less WAL; a database made by an earlier release (4 KB
    pages) cannot change them in WAL mode, and must go on working as it is."""
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.execute("PRAGMA page_size=4096")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE app_table (x)")  # the app's own table: the file exists, no taskito schema yet
    conn.close()
    for db, pages in ((tmp_path / "new.db", sqlite_engine.PAGE_SIZE), (old, 4096)):
        q = Queue(db_path=str(db))
        try:
            q.enqueue_many("t", [(1,)] * 3)
            assert q.stats()["pending"] == 3
        finally:
            q.close()
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA page_size").fetchone()[0] == pages
        conn.close()
    assert sqlite_engine.PAGE_SIZE < 4096


def test_a_large_enqueue_copies_its_chunks_into_the_database_file_as_it_goes(tmp_path: Path) -> None:
    """With no worker process checkpointing, the writer of a large batch does it between its chunks:
    left to grow, the WAL would reach the commits' backstop, and the commit crossing it (another
    process's enqueue, say) would wait for the copy of tens of megabytes."""
    db = tmp_path / "taskito.db"
    q = Queue(db_path=str(db))
    try:
        q.enqueue_many("t", [(BIG,)] * 12_000)  # in chunks: more than one transaction may take
        assert jobs_in_database_file(db, "pending") == 12_000
    finally:
        q.close()


def test_a_stopping_worker_leaves_a_small_wal_beside_a_database_still_in_use(tmp_path: Path) -> None:
    """The web app keeps the file open (so SQLite's own clean-up at the last close never comes)."""
    db = tmp_path / "taskito.db"
    web = Queue(db_path=str(db))
    try:
        web.enqueue_many("worker_app.add", [(1, 2)] * 500)
        web.enqueue_many("worker_app.record", [(BIG,)] * 1500)
        assert wal_size(db) > 5_000_000
        env = {"TASKITO_DB_PATH": str(db), "EFFECTS_DIR": str(tmp_path),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(APPS), os.environ.get("PYTHONPATH")]))}
        result = run_cli("worker", "--app", "worker_app:queue", "--burst", cwd=APPS, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        assert web.stats()["completed"] == 2000
        assert wal_size(db) < 100_000
    finally:
        web.close()
