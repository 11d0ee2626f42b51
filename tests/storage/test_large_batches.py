"""Large maps and purges commit in chunks: no other writer waits long behind them, and a map stays
all-or-nothing (its jobs are hidden from workers until the last chunk is written; a failure leaves none)."""

from __future__ import annotations

import sqlite3
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import taskito.storage.sqlbase
from taskito import Queue, SerializationError
from tests.storage.test_counters import SIX, raw_sql
from tests.support import Process

CHUNK = 50  # the tests shrink the chunk so that a "large" map is quick


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(taskito.storage.sqlbase, "CHUNK", CHUNK, raising=False)
    monkeypatch.setattr(taskito.storage.sqlbase, "PLAIN_CHUNKS", 1, raising=False)


def test_a_large_map_is_invisible_to_workers_until_all_of_it_is_written(
        engine_settings: dict[str, str], small_chunks: None) -> None:
    writer, other = Queue(**engine_settings), Queue(**engine_settings)  # "other" stands for another process
    sql = raw_sql(engine_settings)
    seen_midway: dict[str, Any] = {}

    def arguments() -> Iterator[tuple[int]]:
        for n in range(int(3.5 * CHUNK)):
            if n == 2 * CHUNK + 5:  # two chunks are in the database by now, a third is being read
                seen_midway.update(rows=sql("SELECT count(*) FROM taskito_jobs")[0][0], stats=other.stats(),
                                   listed=other.list_jobs(), claimed=other.storage.claim("w", ["default"], 10, 30))
            yield (n,)

    try:
        jobs = writer.enqueue_many("t", arguments())
        assert seen_midway == {"rows": 2 * CHUNK, "stats": SIX, "listed": [], "claimed": []}
        assert len(jobs) == int(3.5 * CHUNK) and other.stats() == {**SIX, "pending": len(jobs)}
        assert [job.id for job in other.list_jobs(limit=1000)][::-1] == [job.id for job in jobs]
        claimed = other.storage.claim("w", ["default"], 3, 30)
        assert [record.id for record in claimed] == [job.id for job in jobs[:3]]  # in enqueue order
        assert writer.check_counts() == [] and sql("SELECT count(*) FROM taskito_batches") == [(0,)]
    finally:
        writer.close()
        other.close()


def test_a_large_map_that_fails_midway_leaves_nothing(engine_settings: dict[str, str], small_chunks: None) -> None:
    queue = Queue(**engine_settings)
    sql = raw_sql(engine_settings)

    def arguments() -> Iterator[tuple[Any]]:
        for n in range(4 * CHUNK):
            yield (object(),) if n == 3 * CHUNK + 7 else (n,)  # JSON cannot hold it: raises mid-map

    try:
        queue.enqueue("t", args=("before",))
        with pytest.raises(SerializationError, match="argument 0"):
            queue.enqueue_many("t", arguments())
        assert sql("SELECT count(*) FROM taskito_jobs") == [(1,)]
        assert sql("SELECT count(*) FROM taskito_batches") == [(0,)]
        assert queue.stats() == {**SIX, "pending": 1} and queue.check_counts() == []
        [record] = queue.storage.claim("w", ["default"], 10, 30)
        assert queue.serializer.loads(record.payload)["args"] == ["before"]
    finally:
        queue.close()


def test_map_streams_its_arguments(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The jobs of a map are built as they are written: memory holds a few chunks of them, not all."""
    monkeypatch.setattr(taskito.storage.sqlbase, "CHUNK", 100, raising=False)
    queue = Queue(db_path=db_path)
    payload = "x" * 12_000
    try:
        tracemalloc.start()
        jobs = queue.enqueue_many("t", ((n, payload) for n in range(4000)))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert len(jobs) == 4000 and queue.stats()["pending"] == 4000
        assert peak < 15_000_000, f"peak {peak / 1e6:.0f} MB for 48 MB of arguments"
    finally:
        queue.close()


# -- on SQLite, other processes' writes do not wait for a large map or purge --------------------------------
BIG = 50_000
WRITER = """
import sys, time
from taskito import Queue
queue = Queue(db_path=sys.argv[1])
print("start", time.time(), flush=True)
if sys.argv[2] == "map":
    queue.enqueue_many("t", ((n,) for n in range(int(sys.argv[3]))))
else:
    queue.purge_completed(older_than=0)
print("end", time.time(), flush=True)
"""


def _longest_enqueue_wait(db_path: str, *args: str) -> tuple[float, int]:
    """Run a big map or purge in another process; meanwhile enqueue here, one job after another.

    Returns the longest single enqueue while the other process wrote, and how many went in meanwhile.
    """
    queue = Queue(db_path=db_path)
    writer = Process([sys.executable, "-c", textwrap.dedent(WRITER), db_path, *args], cwd=Path(db_path).parent)
    timings: list[tuple[float, float]] = []
    try:
        while writer.proc.poll() is None:
            started = time.time()
            queue.enqueue("other.process", args=(len(timings),))
            timings.append((started, time.time()))
        assert writer.wait() == 0, writer.output
    finally:
        writer.stop()
        queue.close()
    marks = dict(line.split() for line in writer.lines if line.split()[0] in ("start", "end"))
    start, end = float(marks["start"]), float(marks["end"])
    during = [done - began for began, done in timings if done > start and began < end]
    return max(during), len(during)


def test_other_processes_enqueue_while_a_big_map_and_a_big_purge_run(db_path: str) -> None:
    Queue(db_path=db_path).connect().close()  # the schema exists before the processes start
    longest, count = _longest_enqueue_wait(db_path, "map", str(BIG))
    # Chunked: other writers get in between the chunks (how long each waited is the benchmark's to say).
    assert count > 10, f"only {count} enqueues got in during a map of {BIG} jobs (the longest waited {longest:.2f}s)"
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE taskito_jobs SET status = 'complete', finished_at = 1 WHERE task_name = 't'")
    longest, count = _longest_enqueue_wait(db_path, "purge")
    assert count > 10, f"only {count} enqueues got in during a purge of {BIG} jobs (the longest waited {longest:.2f}s)"
    queue = Queue(db_path=db_path)
    try:
        stats = queue.stats()
        assert stats["completed"] == 0 and stats["pending"] == len(queue.list_jobs(limit=100_000)) > 20
        assert queue.check_counts() == []
    finally:
        queue.close()


def test_the_jobs_of_a_map_killed_midway_are_discarded_by_the_workers(db_path: str) -> None:
    """kill -9 in the middle of a map: its staged jobs stay hidden, and the maintenance of a worker
    removes them once the batch's lease has run out (simulated here by backdating it)."""
    Queue(db_path=db_path).connect().close()
    script = textwrap.dedent("""
        import sys, time
        from taskito import Queue
        from taskito.storage.sqlbase import CHUNK, PLAIN_CHUNKS
        queue = Queue(db_path=sys.argv[1])
        def arguments():
            for n in range(100_000):
                if n == (PLAIN_CHUNKS + 2) * CHUNK + 10:  # past the chunks read first, two more are written
                    print("staged", flush=True)
                    time.sleep(60)
                yield (n,)
        queue.enqueue_many("t", arguments())
    """)
    writer = Process([sys.executable, "-c", script, db_path], cwd=Path(db_path).parent)
    try:
        writer.wait_for_line("staged", timeout=60)
        writer.kill()
    finally:
        writer.stop()
    queue = Queue(db_path=db_path)
    sql = raw_sql({"db_path": db_path})
    try:
        staged = sql("SELECT count(*) FROM taskito_jobs WHERE status = 'staged'")
        assert staged == [((taskito.storage.sqlbase.PLAIN_CHUNKS + 2) * taskito.storage.sqlbase.CHUNK,)]
        assert queue.stats() == SIX and queue.storage.claim("w", ["default"], 10, 30) == []
        assert queue.storage.reap_expired_leases() == []  # its lease still runs: nothing happens yet
        sql("UPDATE taskito_batches SET lease_until = 0")
        assert queue.storage.reap_expired_leases() == []
        assert sql("SELECT count(*) FROM taskito_jobs") == sql("SELECT count(*) FROM taskito_batches") == [(0,)]
        assert queue.check_counts() == []
    finally:
        queue.close()
