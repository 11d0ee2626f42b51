"""What only the PostgreSQL engine promises: its schema, its backups, concurrency on one database.

Every test runs against the real server (PG_URL) in a schema of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from taskito import ConfigurationError, Queue
from taskito.storage import Completion, NewJob
from taskito.storage.sqlfiles import migrations
from tests.conftest import PG_URL, require_postgres
from tests.support import run_cli, wait_until

psycopg = pytest.importorskip("psycopg")
from psycopg.conninfo import make_conninfo  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TABLES = {"taskito_jobs", "taskito_job_deps", "taskito_job_errors", "taskito_paused_queues", "taskito_workers",
          "taskito_periodic", "taskito_schema_version", "taskito_counts", "taskito_failure_counts",
          "taskito_batches", "taskito_rate_limits", "taskito_workflows", "taskito_workflow_stages",
          "taskito_job_logs", "taskito_task_minutes"}

VERSIONS = [(version,) for version, _ in migrations("postgres")]


def sql(query: str, *params: object, url: str = PG_URL) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params or None)
        return cur.fetchall() if cur.description else []


def pg_queue(schema: str, url: str = PG_URL, **kwargs: object) -> Queue:
    return Queue(backend="postgres", db_url=url, schema=schema, **kwargs).connect()


def new_job(q: Queue, **fields: object) -> NewJob:
    return NewJob(id=uuid.uuid4().hex, task_name="t", payload=q.encode_payload("t", fields.pop("args", ()), None),
                  **fields)


@pytest.mark.parametrize("bad", ["Taskito", "bad-name", "1st", "", "drop table x; --", 'a"b', "x" * 59, "naïve"])
def test_schema_that_is_not_a_plain_identifier_is_refused_before_connecting(bad: str) -> None:
    # The URL points nowhere: validation comes first, so the error is about the schema.
    with pytest.raises(ValueError, match="is not a plain identifier") as info:
        Queue(backend="postgres", db_url="postgresql://nobody@127.0.0.1:1/none", schema=bad)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("system", ["information_schema", "pg_catalog", "pg_toast", "pg_taskito"])
def test_postgresql_system_schemas_are_refused(system: str) -> None:
    with pytest.raises(ValueError, match="one of PostgreSQL's own") as info:
        Queue(backend="postgres", db_url="postgresql://nobody@127.0.0.1:1/none", schema=system)
    assert repr(system) in str(info.value)


def test_schema_is_created_on_first_use_with_every_object_inside_it(pg_schema: str) -> None:
    assert sql("SELECT 1 FROM pg_namespace WHERE nspname = %s", pg_schema) == []
    q = pg_queue(pg_schema)
    try:
        tables = {row[0] for row in sql("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                                        pg_schema)}
        assert tables == TABLES
        functions = {row[0] for row in sql("SELECT p.proname FROM pg_proc p JOIN pg_namespace n "
                                           "ON n.oid = p.pronamespace WHERE n.nspname = %s", pg_schema)}
        assert {"taskito_claim", "taskito_complete", "taskito_notify_work"} <= functions
        assert sql(f'SELECT version FROM "{pg_schema}".taskito_schema_version ORDER BY version') == VERSIONS
        # nothing lands in the default schema (where a missing search_path would put it)
        assert sql("SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                   "WHERE n.nspname = 'public' AND relname LIKE 'taskito%%'") == []
        assert sql("SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                   "WHERE n.nspname = 'public' AND proname LIKE 'taskito%%'") == []
        job = q.enqueue("t", args=(1,))
        assert sql(f'SELECT id FROM "{pg_schema}".taskito_jobs') == [(job.id,)]
    finally:
        q.close()
    # a second start finds the schema current and changes nothing
    pg_queue(pg_schema).close()
    assert sql(f'SELECT count(*) FROM "{pg_schema}".taskito_schema_version') == [(len(VERSIONS),)]


def test_a_schema_from_a_newer_release_is_refused(pg_schema: str) -> None:
    pg_queue(pg_schema).close()
    sql(f'INSERT INTO "{pg_schema}".taskito_schema_version VALUES (999, 0)')
    with pytest.raises(ConfigurationError, match="version 999.*upgrade taskito"):
        pg_queue(pg_schema)


def test_concurrent_first_starts_create_the_schema_once(pg_schema: str, tmp_path: Path) -> None:
    """Two workers starting together (here: 3 processes and 6 threads) must not trip over each other."""
    script = (f"from taskito import Queue; q = Queue(backend='postgres', db_url={PG_URL!r}, schema={pg_schema!r}); "
              "q.enqueue('t'); q.close()")
    procs = [subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def start() -> None:
        try:
            barrier.wait()
            q = pg_queue(pg_schema)
            q.enqueue("t")
            q.close()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    outcomes = [(proc.wait(60), proc.stderr.read()) for proc in procs]
    assert errors == []
    assert all(code == 0 for code, _ in outcomes), outcomes
    assert sql(f'SELECT version FROM "{pg_schema}".taskito_schema_version ORDER BY version') == VERSIONS
    assert sql(f'SELECT count(*) FROM "{pg_schema}".taskito_jobs') == [(9,)]


def test_pg_dump_of_the_schema_restores_into_a_fresh_database(pg_schema: str, tmp_path: Path) -> None:
    """The deployment guide's backup: `pg_dump -n taskito > backup.sql`, then `psql < backup.sql`."""
    q = pg_queue(pg_schema)
    storage = q.storage
    done, dead, waiting, dependent = (new_job(q, args=(i,)) for i in range(4))
    storage.enqueue([done, dead, waiting])
    storage.enqueue([new_job(q, depends_on=[waiting.id])])
    dependent_id = storage.list_jobs(limit=1)[0].id
    claimed = {r.id: r for r in storage.claim("w", ["default"], 2, 30)}
    storage.complete([Completion(done.id, claimed[done.id].attempt, b'{"ok":1}')])
    storage.fail(dead.id, claimed[dead.id].attempt, "ValueError: boom", "Traceback: ...", None)
    before = {r.id: (r.status, r.result, r.error) for r in storage.list_jobs(limit=10)}
    q.close()

    backup = tmp_path / "backup.sql"
    with backup.open("w") as out:
        subprocess.run(["pg_dump", "--no-owner", "-d", PG_URL, "-n", pg_schema], stdout=out, check=True, timeout=60)
    restored_db = f"taskito_restore_{uuid.uuid4().hex[:8]}"
    sql(f'CREATE DATABASE "{restored_db}"')
    restored_url = make_conninfo(PG_URL, dbname=restored_db)
    try:
        with backup.open() as dump:
            subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-q", "-d", restored_url], stdin=dump, check=True,
                           timeout=60, capture_output=True)
        copy = pg_queue(pg_schema, url=restored_url)
        try:
            assert {r.id: (r.status, r.result, r.error) for r in copy.storage.list_jobs(limit=10)} == before
            assert [e["error"] for e in copy.job_errors(dead.id)] == ["ValueError: boom"]
            assert copy.storage.get_job(dependent_id).depends_on == [waiting.id]
            # the restored copy is a working queue: functions, trigger and sequences came along
            [again] = copy.storage.claim("w2", ["default"], 5, 30)
            assert again.id == waiting.id
            copy.storage.complete([Completion(waiting.id, again.attempt, b"2")])
            assert [r.id for r in copy.storage.claim("w2", ["default"], 5, 30)] == [dependent_id]
            fresh = copy.enqueue("t")
            assert copy.get_job(fresh.id).status == "pending"
        finally:
            copy.close()
    finally:
        sql(f'DROP DATABASE IF EXISTS "{restored_db}" WITH (FORCE)')


def test_concurrent_claimers_never_share_a_job(pg_schema: str) -> None:
    q = pg_queue(pg_schema, pool_size=8)
    try:
        q.storage.enqueue([new_job(q) for _ in range(600)])
        claimed: list[str] = []
        lock = threading.Lock()

        def claimer(name: str) -> None:
            while batch := q.storage.claim(name, ["default"], 7, 30):
                with lock:
                    claimed.extend(r.id for r in batch)

        threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(claimed) == 600 and len(set(claimed)) == 600
    finally:
        q.close()


def test_concurrent_enqueues_with_one_unique_key_get_one_job(pg_schema: str) -> None:
    q = pg_queue(pg_schema, pool_size=8)
    try:
        barrier = threading.Barrier(8)
        ids: list[str] = []

        def enqueue() -> None:
            barrier.wait()
            ids.append(q.enqueue("t", unique_key="nightly-report").id)

        threads = [threading.Thread(target=enqueue) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(ids) == 8 and len(set(ids)) == 1
        assert q.stats()["pending"] == 1
    finally:
        q.close()


def test_dependents_enqueued_while_their_dependency_completes_are_released(pg_schema: str) -> None:
    """Enqueue-with-dependency racing the dependency's completion must never leave a job waiting forever."""
    q = pg_queue(pg_schema, pool_size=8)
    try:
        parents = [new_job(q) for _ in range(40)]
        q.storage.enqueue(parents)
        claimed = {r.id: r for r in q.storage.claim("w", ["default"], 40, 30)}
        children: list[str] = []

        def enqueue_children() -> None:
            for parent in parents:
                children.extend(q.storage.enqueue([new_job(q, depends_on=[parent.id])]))

        thread = threading.Thread(target=enqueue_children)
        thread.start()
        for parent in parents:
            q.storage.complete([Completion(parent.id, claimed[parent.id].attempt, b"null")])
        thread.join(30)
        got: list[str] = []
        wait_until(lambda: got.extend(r.id for r in q.storage.claim("w", ["default"], 50, 30)) or len(got) == 40,
                   10, message="every child to become claimable")
        assert Counter(got) == Counter(children)
    finally:
        q.close()


def test_idle_worker_wakes_on_notify_and_result_waits_without_polling(pg_schema: str) -> None:
    worker_side, client_side = pg_queue(pg_schema), pg_queue(pg_schema)
    try:
        worker_side.storage.wait_for_work(0.01)  # starts listening
        wait_until(lambda: worker_side.storage._work_listener.listening.is_set(), 10, message="LISTEN")
        worker_side.storage.wait_for_work(0.01)  # consume the wake-up of connecting

        # The enqueue happens 0.3 s into a 20 s wait: the wait must end right after it.
        job_ids: list[str] = []
        enqueue = threading.Timer(0.3, lambda: job_ids.append(client_side.enqueue("t").id))
        started = time.monotonic()
        enqueue.start()
        worker_side.storage.wait_for_work(20)
        waited = time.monotonic() - started
        enqueue.join(10)
        assert job_ids and waited < 2.0
        job = client_side.get_job(job_ids[0])

        [record] = worker_side.storage.claim("w", ["default"], 1, 30)
        finishing = threading.Timer(0.3, lambda: worker_side.storage.complete(
            [Completion(job.id, record.attempt, b"42")]))
        started = time.monotonic()
        finishing.start()
        assert job.result(timeout=20) == 42
        assert time.monotonic() - started < 2.0  # the NOTIFY, not the 2 s safety re-read
    finally:
        worker_side.close()
        client_side.close()


def _notifications(conn, count: int) -> list[tuple[str, str]]:
    """The next ``count`` notifications of a listening connection, as (channel, payload), in order."""
    got: list[tuple[str, str]] = []
    for note in conn.notifies(timeout=10, stop_after=count):
        got.append((note.channel, note.payload))
    assert len(got) == count, f"only {got} in 10 s"
    return got


def test_an_insert_tells_workers_whether_it_can_move_a_due_time(pg_schema: str) -> None:
    q = pg_queue(pg_schema)
    try:
        with psycopg.connect(PG_URL, autocommit=True) as listen:
            listen.execute(f'LISTEN "{pg_schema}_work"')
            q.enqueue("t")
            q.enqueue("t", delay=60)
            q.enqueue("t", expires=60)
            q.enqueue_many("t", [(1,), (2,)])
            q.enqueue_many("t", [(1,), (2,)], delay=60)
            payloads = [payload for _, payload in _notifications(listen, 5)]
        # "ready": every job inserted is due now and cannot expire; anything else: a due time may have moved.
        assert payloads == ["ready", "", "", "ready", ""]
    finally:
        q.close()


def test_a_completion_notifies_its_waiters_and_idle_workers_in_its_own_commit(pg_schema: str) -> None:
    q = pg_queue(pg_schema)
    try:
        first = q.enqueue("t")
        dependent = q.enqueue("t", depends_on=[first.id])
        [record] = q.storage.claim("w", ["default"], 10, 30)
        with psycopg.connect(PG_URL, autocommit=True) as listen:
            listen.execute(f'LISTEN "{pg_schema}_work"')
            listen.execute(f'LISTEN "{pg_schema}_done"')
            q.storage.complete([Completion(first.id, record.attempt, b"1")])
            got = _notifications(listen, 2)
        assert got == [(f"{pg_schema}_done", first.id), (f"{pg_schema}_work", "")]
        assert first.result(timeout=5) == 1 and q.get_job(dependent.id).status == "pending"
    finally:
        q.close()


def test_an_idle_worker_reads_due_times_again_only_when_they_may_have_moved(pg_schema: str) -> None:
    worker_side, client_side = pg_queue(pg_schema), pg_queue(pg_schema)
    storage = worker_side.storage
    try:
        storage.wait_for_work(0.01)  # starts listening
        wait_until(lambda: storage._work_listener.listening.is_set(), 10, message="LISTEN")
        assert storage.next_due(["default"]) is None

        later = client_side.enqueue("t", delay=60)
        due = client_side.get_job(later.id).record.scheduled_at
        wait_until(lambda: storage.next_due(["default"]) == due, 10, message="the delayed job's due time")

        # Gone without a notification (a hand-made DELETE), then a job due now is enqueued: its
        # notification says "ready", so the worker answers from what it read (at worst, it claims once
        # for nothing at that time) ...
        sql(f'DELETE FROM "{pg_schema}".taskito_jobs WHERE id = %s', later.id)
        client_side.enqueue("t")
        assert storage.wait_for_work(10)
        assert storage.next_due(["default"]) == due
        # ... for at most DUE_MEMO_SECONDS, which bounds what a change nobody announced can cost.
        wait_until(lambda: storage.next_due(["default"]) is None, 5, interval=0.1, message="a fresh read")
    finally:
        worker_side.close()
        client_side.close()


def test_unreachable_server_is_one_configuration_error_naming_host_and_port() -> None:
    require_postgres()
    with pytest.raises(ConfigurationError) as info:
        Queue(backend="postgres", db_url="postgresql://postgres@127.0.0.1:1/test").connect()
    message = str(info.value)
    assert "127.0.0.1:1" in message and "\n" not in message
    with pytest.raises(ConfigurationError, match="does not exist"):
        Queue(backend="postgres", db_url=make_conninfo(PG_URL, dbname="taskito_no_such_db")).connect()


def test_enqueues_wait_for_the_wal_flush_unless_the_url_opts_out(pg_schema: str) -> None:
    """The README's durability trade: durable by default; the URL option reaches every pooled connection."""
    opt_out = PG_URL + ("&" if "?" in PG_URL else "?") + "options=-c%20synchronous_commit%3Doff"
    for url, expected in ((PG_URL, "on"), (opt_out, "off")):
        q = pg_queue(pg_schema, url=url)
        try:
            job = q.enqueue("t")
            with q.storage._autocommit() as cur:
                cur.execute("SHOW synchronous_commit")
                assert cur.fetchone()["synchronous_commit"] == expected
            assert q.get_job(job.id).status == "pending"
        finally:
            q.close()


def test_workers_in_a_restored_dump_are_not_shown_live(pg_schema: str) -> None:
    """pg_dump copies the worker rows with their fresh heartbeats; in the restored copy (here a new
    schema of the same database) no worker runs, so none may show as live, in the API or in
    `taskito info`, while the original still shows its own."""
    q = pg_queue(pg_schema)
    info = {"hostname": "web-1", "pid": 4242, "queues": ["default"], "concurrency": 4}
    q.storage.register_worker("w-1", info)
    q.storage.heartbeat("w-1", 30, [])
    assert [w["id"] for w in q.workers()] == ["w-1"]
    copy_schema = f"{pg_schema}_copy"
    dump = subprocess.run(["pg_dump", "--no-owner", "-d", PG_URL, "-n", pg_schema], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    try:
        subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-q", "-d", PG_URL], text=True, check=True, timeout=60,
                       input=dump.replace(pg_schema, copy_schema), capture_output=True)
        assert sql(f'SELECT id FROM "{copy_schema}".taskito_workers') == [("w-1",)]  # the row came along
        copy = pg_queue(copy_schema)
        try:
            assert copy.workers() == []
            apps = ROOT / "tests" / "apps"
            result = run_cli("info", "--app", "pg_app:queue", "--format", "json", cwd=apps, env={
                "TASKITO_BACKEND": "postgres", "TASKITO_DB_URL": PG_URL, "TASKITO_SCHEMA": copy_schema,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(apps), os.environ.get("PYTHONPATH")]))})
        finally:
            copy.close()
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["workers"] == []
        assert [w["id"] for w in q.workers()] == ["w-1"]  # the original is still live
        q.storage.heartbeat("w-1", 30, [])
        assert [w["id"] for w in q.workers()] == ["w-1"]
    finally:
        q.close()
        sql(f'DROP SCHEMA IF EXISTS "{copy_schema}" CASCADE')
