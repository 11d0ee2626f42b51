"""PostgreSQL connection faults under real `taskito worker` processes and the real server.

- every connection of a running worker terminated (pg_terminate_backend), twice;
- the server restarted while the worker runs (this machine's cluster, via pg_ctlcluster);
- the database unreachable at start: `taskito info` exits 2 with one line, `taskito worker`
  waits (logging each attempt) and starts once the database answers, or exits 0 on SIGINT;
- a producer's and a worker's connections terminated again and again while the producer runs
  delay() + result() in a loop: the producer never sees an error or a stall;
- the server gone for good under a running client: DatabaseUnavailableError after the bounded wait.

Each time: the worker logs, reconnects, loses no job and does not exit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import taskito.storage.postgres as postgres_engine
import taskito.storage.sqlbase
from taskito import DatabaseUnavailableError, Queue
from tests.conftest import PG_URL
from tests.support import run_cli, start_worker, wait_until

psycopg = pytest.importorskip("psycopg")
from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: E402

pytestmark = pytest.mark.serial  # restarts the server and kills connections: alone

APPS = Path(__file__).resolve().parent.parent / "apps"
APP = "pg_app:queue"
TASK = "pg_app.mark"
JOBS = 1500


def sql(query: str, *params: object) -> list[tuple]:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        cur = conn.execute(query, params or None)
        return cur.fetchall() if cur.description else []


def env_for(schema: str, tmp_path: Path, url: str) -> dict[str, str]:
    return {
        "TASKITO_BACKEND": "postgres", "TASKITO_DB_URL": url, "TASKITO_SCHEMA": schema,
        "TASKITO_LEASE_SECONDS": "2", "EFFECTS_DIR": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(APPS), os.environ.get("PYTHONPATH")])),
    }


@pytest.fixture
def app_name() -> str:
    """The worker's application_name, so that a test can terminate exactly its connections."""
    return f"taskito-fault-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def worker_env(pg_schema: str, tmp_path: Path, app_name: str) -> dict[str, str]:
    return env_for(pg_schema, tmp_path, make_conninfo(PG_URL, application_name=app_name))


@pytest.fixture
def client(pg_schema: str) -> Iterator[Queue]:
    q = Queue(backend="postgres", db_url=PG_URL, schema=pg_schema).connect()  # creates the schema
    sql(f'CREATE TABLE "{pg_schema}".effects (job_id text PRIMARY KEY)')
    yield q
    q.close()


def completed(client: Queue) -> int:
    """Completed jobs, or -1 while the server is away (the client reconnects by itself)."""
    try:
        return client.stats()["completed"]
    except psycopg.OperationalError:
        return -1


def assert_every_job_done_once(client: Queue, schema: str, ids: list[str]) -> None:
    stats = client.stats()
    assert stats["completed"] == len(ids), stats
    assert (stats["pending"], stats["running"], stats["failed"], stats["dead"]) == (0, 0, 0, 0), stats
    assert {row[0] for row in sql(f'SELECT job_id FROM "{schema}".effects')} == set(ids)


def terminate(app_name: str) -> int:
    rows = sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", app_name)
    return sum(1 for (done,) in rows if done)


def test_worker_survives_all_its_connections_being_terminated(client: Queue, worker_env: dict[str, str],
                                                              pg_schema: str, app_name: str) -> None:
    worker = start_worker(APP, APPS, "--concurrency", "4", env=worker_env)
    try:
        ids = [job.id for job in client.enqueue_many(TASK, [(i, 0.002) for i in range(JOBS)])]
        for fraction in (0.2, 0.5):
            wait_until(lambda f=fraction: completed(client) >= JOBS * f, 60, message=f"{fraction:.0%} done")
            assert terminate(app_name) >= 2  # at least the pool's and the LISTEN connection
        wait_until(lambda: completed(client) == JOBS, 90, interval=0.1, message="every job to complete")
        assert worker.proc.poll() is None, worker.output
        assert f"notification connection ({pg_schema}_work) lost" in worker.output
        assert "is back" in worker.output
        assert_every_job_done_once(client, pg_schema, ids)
        # the reconnected worker still wakes on NOTIFY and answers at once
        assert client.enqueue(TASK, args=(0,)).result(timeout=10) == 0
    finally:
        worker.signal(signal.SIGINT)
    assert worker.wait() == 0, worker.output


def test_producer_and_worker_ride_through_repeated_terminations(client: Queue, worker_env: dict[str, str],
                                                                pg_schema: str, app_name: str) -> None:
    """delay() + result() in a loop while every connection of the producer and of the worker is
    terminated, again and again: no exception, no stall, no job twice, and the worker's LISTEN
    connection comes back at once (a job never waits for a reconnect back-off)."""
    producer = Queue(backend="postgres", db_url=make_conninfo(PG_URL, application_name=app_name), schema=pg_schema)

    @producer.task(name=TASK)
    def mark(n: int, pause: float = 0.0) -> int:
        raise AssertionError("runs in the worker process")

    worker = start_worker(APP, APPS, "--concurrency", "2", env=worker_env)
    stop = threading.Event()
    errors: list[BaseException] = []
    ids: list[str] = []
    round_trips: list[float] = []

    def produce() -> None:
        n = 0
        while not stop.is_set():
            started = time.monotonic()
            try:
                job = mark.delay(n)
                ids.append(job.id)
                assert job.result(timeout=30) == n
            except BaseException as exc:  # collected: none may reach the producer
                errors.append(exc)
            round_trips.append(time.monotonic() - started)
            n += 1

    thread = threading.Thread(target=produce)
    try:
        thread.start()
        terminated = 0
        for _ in range(8):
            done = len(round_trips)
            wait_until(lambda d=done: len(round_trips) >= d + 5, 30, message="five more round trips")
            terminated += terminate(app_name)
        done = len(round_trips)
        wait_until(lambda: len(round_trips) >= done + 10, 30, message="round trips after the last termination")
    finally:
        stop.set()
        thread.join(60)
        producer.close()
    assert errors == []
    assert terminated >= 8 * 2  # each time: the producer's connections and the worker's
    assert max(round_trips) < 2.0, sorted(round_trips)[-5:]  # no pool back-off (1 s, 3 s, 10 s) anywhere
    losses = [line for line in worker.lines if f"notification connection ({pg_schema}_work) lost" in line]
    assert losses and all(line.endswith("reconnecting now") for line in losses), losses  # not after a back-off
    worker.signal(signal.SIGINT)
    assert worker.wait() == 0, worker.output
    assert len(set(ids)) == len(ids)
    assert sql(f'SELECT count(*) FROM "{pg_schema}".taskito_jobs') == [(len(ids),)]
    assert_every_job_done_once(client, pg_schema, ids)


def test_a_server_gone_for_good_is_database_unavailable_after_the_bounded_wait(
        pg_schema: str, late_db: LatePostgres, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_engine, "RECONNECT_PATIENCE", 1.0)
    late_db.open()
    q = Queue(backend="postgres", db_url=make_conninfo(PG_URL, host="127.0.0.1", port=str(late_db.port)),
              schema=pg_schema)
    try:
        job = q.enqueue(TASK, args=(1,))
        late_db.cut()  # every connection dropped, new ones refused
        for call in (lambda: q.enqueue(TASK, args=(2,)), q.stats, lambda: q.get_job(job.id)):
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailableError) as info:
                call()
            assert 0.9 < time.monotonic() - started < 5
            assert f"127.0.0.1:{late_db.port}" in str(info.value) and "1s" in str(info.value)
        late_db.open()  # back: the same queue carries on
        assert q.get_job(job.id).status == "pending"
        assert q.enqueue(TASK, args=(3,)).status == "pending"
    finally:
        q.close()


def test_a_call_of_many_transactions_may_last_longer_than_the_patience_for_a_lost_connection(
        pg_schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The patience bounds a wait without progress, not a call: a purge of a million jobs takes minutes."""
    monkeypatch.setattr(postgres_engine, "RECONNECT_PATIENCE", 0.3)
    monkeypatch.setattr(taskito.storage.sqlbase, "CHUNK", 10)
    monkeypatch.setattr(postgres_engine.PostgresStorage, "_pause_after", lambda self, held: 0.05)
    q = Queue(backend="postgres", db_url=PG_URL, schema=pg_schema)
    try:
        q.connect()
        q.enqueue_many(TASK, [(n,) for n in range(200)])
        sql(f"UPDATE \"{pg_schema}\".taskito_jobs SET status = 'complete', finished_at = 1")
        started = time.monotonic()
        assert q.purge_completed(older_than=0) == 200  # 20 transactions, a pause after each: about 1 s
        assert time.monotonic() - started > 0.3
        assert q.stats()["completed"] == 0
    finally:
        q.close()


def cluster_version() -> str:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions:
        pytest.skip("no local PostgreSQL cluster to restart (pg_ctlcluster)")
    return versions[-1]


def server_ready() -> bool:
    return subprocess.run(["pg_isready", "-q", "-d", PG_URL], timeout=10).returncode == 0


def ensure_server_running(version: str) -> None:
    if not server_ready():
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], timeout=120)
    wait_until(server_ready, 60, interval=0.2, message="PostgreSQL to accept connections again")


def test_worker_survives_a_server_restart(client: Queue, worker_env: dict[str, str], pg_schema: str) -> None:
    version = cluster_version()
    worker = start_worker(APP, APPS, "--concurrency", "4", env=worker_env)
    try:
        ids = [job.id for job in client.enqueue_many(TASK, [(i, 0.002) for i in range(JOBS)])]
        wait_until(lambda: completed(client) >= JOBS * 0.25, 60, message="a quarter done")
        try:
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                           check=True, timeout=120, capture_output=True)
        finally:
            ensure_server_running(version)
        wait_until(lambda: completed(client) == JOBS, 90, interval=0.2, message="every job to complete")
        assert worker.proc.poll() is None, worker.output
        assert f"notification connection ({pg_schema}_work) lost" in worker.output
        assert_every_job_done_once(client, pg_schema, ids)
        assert client.enqueue(TASK, args=(0,)).result(timeout=15) == 0
    finally:
        worker.signal(signal.SIGINT)
        ensure_server_running(version)
    assert worker.wait() == 0, worker.output


class LatePostgres:
    """A TCP port that refuses connections until ``open()``, then forwards them to the test server."""

    def __init__(self) -> None:
        params = conninfo_to_dict(PG_URL)
        self.upstream = (params.get("host") or "127.0.0.1", int(params.get("port") or 5432))
        self.sock = self._bound(0)  # bound, not listening: connections are refused
        self.port = self.sock.getsockname()[1]
        self._closing = False
        self._pairs: list[socket.socket] = []

    @staticmethod
    def _bound(port: int) -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        return sock

    def open(self) -> None:
        self._closing = False
        self.sock.listen(16)
        threading.Thread(target=self._accept, args=(self.sock,), daemon=True).start()

    def cut(self) -> None:
        """Drop every forwarded connection and refuse new ones (until ``open()``)."""
        self.close()
        for sock in self._pairs:
            for step in (lambda s: s.shutdown(socket.SHUT_RDWR), socket.socket.close):
                try:
                    step(sock)
                except OSError:
                    pass
        self._pairs.clear()
        self.sock = self._bound(self.port)

    def close(self) -> None:
        self._closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() of a listening socket
        except OSError:
            pass
        self.sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while not self._closing:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            self._pairs += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def late_db() -> Iterator[LatePostgres]:
    proxy = LatePostgres()
    yield proxy
    proxy.close()


def test_info_with_unreachable_database_prints_one_line_and_exits_2(pg_schema: str, tmp_path: Path,
                                                                     late_db: LatePostgres) -> None:
    url = make_conninfo(PG_URL, host="127.0.0.1", port=str(late_db.port))
    result = run_cli("info", "--app", APP, cwd=APPS, env=env_for(pg_schema, tmp_path, url))
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert f"127.0.0.1:{late_db.port}" in line and "cannot connect to PostgreSQL" in line
    assert "Traceback" not in result.stderr

    result = run_cli("worker", "--app", APP, "--no-wait-for-db", cwd=APPS, env=env_for(pg_schema, tmp_path, url))
    assert result.returncode == 2
    assert f"127.0.0.1:{late_db.port}" in result.stderr.strip().splitlines()[-1]


def test_worker_waits_for_the_database_then_starts(pg_schema: str, tmp_path: Path, late_db: LatePostgres,
                                                   client: Queue) -> None:
    url = make_conninfo(PG_URL, host="127.0.0.1", port=str(late_db.port))
    worker = start_worker(APP, APPS, env=env_for(pg_schema, tmp_path, url), ready=False)
    try:
        worker.wait_for_line("waiting for the database (attempt 2)", timeout=20)
        assert f"127.0.0.1:{late_db.port}" in worker.output
        assert worker.proc.poll() is None
        late_db.open()
        worker.wait_for_line("started:", timeout=30)
        assert client.enqueue(TASK, args=(7,)).result(timeout=15) == 7
    finally:
        worker.signal(signal.SIGINT)
    assert worker.wait() == 0, worker.output


def test_worker_waiting_for_the_database_stops_cleanly_on_sigint(pg_schema: str, tmp_path: Path,
                                                                 late_db: LatePostgres) -> None:
    url = make_conninfo(PG_URL, host="127.0.0.1", port=str(late_db.port))
    worker = start_worker(APP, APPS, env=env_for(pg_schema, tmp_path, url), ready=False)
    try:
        worker.wait_for_line("waiting for the database (attempt 2)", timeout=20)
        assert worker.proc.poll() is None
    finally:
        worker.signal(signal.SIGINT)
    assert worker.wait(15) == 0, worker.output
    assert "Traceback" not in worker.output


@pytest.mark.parametrize("url", ["postgresql://postgres@127.0.0.1:abc/test",
                                 "postgresql://postgres@127.0.0.1:5432/test?sslmode=bogus"])
def test_worker_with_a_malformed_url_exits_at_once_instead_of_waiting(pg_schema: str, tmp_path: Path,
                                                                      url: str) -> None:
    """Waiting is for a database not up yet; a URL libpq refuses will never work."""
    result = run_cli("worker", "--app", APP, cwd=APPS, env=env_for(pg_schema, tmp_path, url), timeout=30)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "invalid PostgreSQL URL" in line and "waiting for the database" not in result.stderr
