"""The order and its job share one transaction, whatever happens to the process that writes them.

A producer (tests/apps/txn_app.py, a real subprocess) inserts orders and enqueues their jobs
through its own connection, then is killed with SIGKILL before its commit (neither exists),
killed right after its commit (both exist, and a real worker ships the order), or rolls back
a ``map`` of many jobs (none remain). Counted from outside, as the app and a worker would see
them, for psycopg, psycopg2 and SQLAlchemy on PostgreSQL and sqlite3 on SQLite.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from taskito import Queue
from tests.conftest import PG_URL
from tests.support import Process, start_worker, wait_until

APPS = Path(__file__).resolve().parent.parent / "apps"


@dataclass
class Producer:
    helper: str
    env: dict[str, str]
    queue: Queue
    app_db: str

    def start(self, mode: str, first: int = 1, count: int = 1) -> Process:
        return Process([sys.executable, str(APPS / "txn_app.py"), self.helper, mode, str(first), str(count)],
                       cwd=APPS, env=self.env)

    def _rows(self, query: str) -> Any:
        if self.helper == "sqlite":
            with sqlite3.connect(self.app_db) as conn:
                return conn.execute(query).fetchone()[0]
        import psycopg

        with psycopg.connect(self.app_db, autocommit=True) as conn:
            return conn.execute(query).fetchone()[0]

    def orders(self) -> int:
        return self._rows("SELECT count(*) FROM orders")

    def shipped(self) -> int:
        return self._rows("SELECT count(*) FROM orders WHERE status = 'shipped'")

    def jobs(self) -> int:
        return sum(self.queue.stats().values())


@pytest.fixture(params=["psycopg", "psycopg2", "sqlalchemy", "sqlite"])
def producer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Producer]:
    helper = request.param
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(APPS), os.environ.get("PYTHONPATH")]))}
    if helper == "sqlite":
        path = str(tmp_path / "taskito.db")
        queue = Queue(db_path=path).connect()  # the queue's file first, as a worker would have made it
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT NOT NULL)")
        yield Producer(helper, {**env, "TASKITO_DB_PATH": path, "APP_DB": path}, queue, path)
        queue.close()
        return
    pytest.importorskip(helper)
    import psycopg

    schema = request.getfixturevalue("pg_schema")
    app_schema = f"{schema}_app"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{app_schema}"')
        admin.execute(f'CREATE TABLE "{app_schema}".orders (id integer PRIMARY KEY, status text NOT NULL)')
    app_db = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options={quote(f'-csearch_path={app_schema}')}"
    queue = Queue(backend="postgres", db_url=PG_URL, schema=schema)
    env.update({"TASKITO_BACKEND": "postgres", "TASKITO_DB_URL": PG_URL, "TASKITO_SCHEMA": schema,
                "APP_DB": app_db})
    yield Producer(helper, env, queue, app_db)
    queue.close()
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA "{app_schema}" CASCADE')


def test_killed_before_its_commit_neither_the_orders_nor_their_jobs_exist(producer: Producer) -> None:
    process = producer.start("hold", count=5)
    try:
        process.wait_for_line("in transaction", timeout=30)
        assert (producer.orders(), producer.jobs()) == (0, 0)  # written, not committed
    finally:
        process.proc.send_signal(signal.SIGKILL)
        process.wait()
    assert (producer.orders(), producer.jobs()) == (0, 0)


def test_killed_right_after_its_commit_both_exist_and_the_job_runs(producer: Producer, tmp_path: Path) -> None:
    process = producer.start("commit", first=7)
    try:
        process.wait_for_line("committed", timeout=30)
    finally:
        process.proc.send_signal(signal.SIGKILL)
        process.wait()
    assert (producer.orders(), producer.jobs()) == (1, 1)
    worker = start_worker("txn_app:queue", APPS, env=producer.env)
    try:
        wait_until(lambda: producer.shipped() == 1, timeout=30, message="the worker to ship order 7")
        wait_until(lambda: producer.queue.stats()["completed"] == 1, message="the job to be complete")
    finally:
        worker.stop()


def test_a_rolled_back_map_leaves_no_job(producer: Producer) -> None:
    process = producer.start("rollback", count=300)
    process.wait_for_line("rolled back", timeout=30)
    assert process.wait() == 0
    assert (producer.orders(), producer.jobs()) == (0, 0)


@pytest.mark.parametrize("producer", ["psycopg"], indirect=True)  # SQLite: the open transaction holds its only
def test_workers_see_the_job_at_the_commit_and_not_before(producer: Producer) -> None:  # write lock
    worker = start_worker("txn_app:queue", APPS, env=producer.env)
    process = producer.start("hold", first=1)
    try:
        process.wait_for_line("in transaction", timeout=30)
        # The worker keeps claiming meanwhile: a job enqueued after ours runs, ours is not there to run.
        probe = producer.queue.enqueue("txn_app.ship", args=(99,))
        assert probe.result(timeout=30) == 99
        assert (producer.jobs(), producer.shipped()) == (1, 0)
        process.signal(signal.SIGUSR1)  # commit
        process.wait_for_line("committed", timeout=30)
        wait_until(lambda: producer.shipped() == 1, timeout=30, message="the worker to ship order 1")
    finally:
        process.proc.send_signal(signal.SIGKILL)
        process.wait()
        worker.stop()
