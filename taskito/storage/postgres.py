"""The PostgreSQL engine: many worker hosts, one database, no other coordinator.

Connections come from a psycopg_pool pool whose connections run with ``search_path`` set to
the configured schema, so the SQL files never name it and every table, index and function
lives in it (``pg_dump -n <schema>`` is a complete backup). Claims take batches with
``FOR UPDATE SKIP LOCKED``. Enqueues NOTIFY ``<schema>_work`` (a trigger) and finished jobs
NOTIFY ``<schema>_done``; a dedicated LISTEN connection per channel wakes idle workers and
``JobResult.result()`` waiters, and falls back to polling while it reconnects.

Every database call of the Storage protocol rides through connection loss in one place
(``_reconnecting``): a call whose connection dies under it (a terminated backend, a restarted
server) runs again on a fresh connection, for up to RECONNECT_PATIENCE seconds, and only then
raises DatabaseUnavailableError. Each call is written so that running it again after a commit
whose answer was lost changes nothing more and raises nothing new: job ids are chosen by the
client, so an enqueue that went in is not inserted twice, and a dead letter's replay is found
under its new id. (Counts may differ: a cancel run again reports that nothing was left to cancel.)
"""

from __future__ import annotations

import functools
import logging
import operator
import os
import re
import select
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, cast

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from .. import validation
from ..connections import driver_of, kind_of
from ..exceptions import ConfigurationError, DatabaseUnavailableError, InvalidValueError
from .base import RATE_HORIZON, Completion, JobRecord, NewJob, Started, Status, Storage, job_row
from .sqlbase import SQLStorage, to_record
from .sqlfiles import migrations

if TYPE_CHECKING:
    from .postgres_async import AsyncPostgres

logger = logging.getLogger("taskito.storage.postgres")

CONNECT_TIMEOUT = 5  # seconds to establish one connection (libpq connect_timeout)
RECONNECT_PATIENCE = 10.0  # seconds a call waits for the database to come back (README: PostgreSQL)
# psycopg_pool retries a failed connection attempt in the background with a backoff of 1 s, 2 s,
# 4 s...: long after the server is back, callers would still wait. It gives up at once instead,
# and callers waiting for a connection ask for a new one every so often (see _checkout).
POOL_RECONNECT_TIMEOUT = 0.2
MAX_RECONNECT_DELAY = 5.0  # cap of the LISTEN connection's reconnect backoff
NOTIFY_PAYLOAD_LIMIT = 7900  # PostgreSQL refuses NOTIFY payloads of 8000 bytes and more
READY_ONLY = "ready"  # a work notification's payload: what it announces is due now and has no expiry
DUE_MEMO_SECONDS = 1.0  # longest next_due is answered from memory (a bound on any change left unannounced)
_IDLE, _INERROR = 0, 3  # libpq's transaction status, as psycopg 3 and psycopg2 both report it

# -- connection targets and errors --------------------------------------------------------------
class _ConnectionLost(psycopg.OperationalError):
    """The session died under a call (terminated backend, restarted server, network): try again."""


def _normalize_url(url: str) -> str:
    """Accept SQLAlchemy-style ``postgresql+psycopg://`` URLs too."""
    return re.sub(r"^(postgres(?:ql)?)\+\w+://", r"\1://", url.strip())


def _masked(url: str) -> str:
    """The URL without its password, fit for an error message."""
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url))


def _bad_url(url: str, reason: str) -> ConfigurationError:
    return ConfigurationError(
        f"invalid PostgreSQL URL {_masked(url)!r} (db_url / TASKITO_DB_URL): {reason}; "
        "expected postgresql://user:password@host:5432/dbname"
    )


def parse_url(url: str) -> tuple[str, dict[str, Any]]:
    """The normalized URL and its connection parameters, checked without connecting."""
    url = _normalize_url(url)
    try:
        url.encode()  # a lone surrogate cannot reach libpq
        if "\x00" in url:  # libpq would read the URL only up to it
            raise ValueError("it contains a NUL character")
        return url, conninfo_to_dict(url)
    except (psycopg.Error, ValueError) as exc:
        raise _bad_url(url, _reason(exc)) from None


def _copy_columns(statement: str) -> list[str]:
    """The column list of the batch COPY: each job row (``job_row``) is written in that order."""
    match = re.search(r"COPY\s+\w+\s*\(([^)]*)\)", statement)
    assert match is not None, "copy_jobs names its columns"
    return [column.strip() for column in match.group(1).split(",")]


def _target(params: dict[str, Any]) -> str:
    host = params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or "local socket"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    return f"{host}:{port}"


def _reason(exc: BaseException) -> str:
    """The useful part of a libpq error: its first line, without the repeated host and port."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = re.sub(r"^(connection failed:|connection is bad:|FATAL:)\s*", "", lines[0]) if lines else ""
    text = re.sub(r'connection to server (at|on) "[^"]*"(, port \d+)?( \([^)]*\))? failed:\s*', "", text)
    return text or type(exc).__name__


def _scalar(conn: psycopg.Connection[Any], query: str) -> Any:
    """The ``value`` column of a query that always returns one row (an aggregate, to_regclass)."""
    return cast(dict[str, Any], conn.execute(query).fetchone())["value"]


class PostgresStorage(SQLStorage):
    engine = "postgres"
    max_prefetch = 256  # claims lock their rows only: other writers never wait behind them
    lead_filter = True

    def __init__(self, url: str, schema: str = "taskito", pool_size: int = 10) -> None:
        super().__init__()
        self.schema = validation.schema(schema)
        if pool_size < 1:
            raise InvalidValueError(f"pool_size must be at least 1, got {pool_size}")
        self.url, params = parse_url(url)
        self._copy_values = operator.itemgetter(*_copy_columns(self.sql["copy_jobs"]))
        self._workflow_values = operator.itemgetter(*_copy_columns(self.sql["copy_workflow_jobs"]))
        self.target = _target(params)
        self.database = params.get("dbname") or os.environ.get("PGDATABASE") or params.get("user") or "postgres"
        self._work_channel = f"{self.schema}_work"
        self._done_channel = f"{self.schema}_done"
        self._connect_kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
        defaults = {"connect_timeout": CONNECT_TIMEOUT, "application_name": "taskito",
                    "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
        self._connect_kwargs.update({k: v for k, v in defaults.items() if k not in params})

        conn = self._connect()
        try:
            self._migrate(conn)
        finally:
            conn.close()

        self._pool = ConnectionPool(
            self.url, kwargs=self._connect_kwargs, min_size=1, max_size=pool_size, open=False,
            configure=self._configure, timeout=RECONNECT_PATIENCE, reconnect_timeout=POOL_RECONNECT_TIMEOUT,
            name=f"taskito-{self.schema}",
        )
        self._calls = threading.local()  # the deadline of this thread's current database call
        self._pool.open(wait=False)
        self._listen_lock = threading.Lock()
        self._work_listener: _Listener | None = None
        self._done_listener: _Listener | None = None
        self._work_event = threading.Event()
        # Work notifications that may have moved a due time, and the last next_due read (see next_due);
        # only the LISTEN thread counts.
        self._due_changes = 0
        self._due_memo: tuple[tuple[str, ...], int, float, float | None] | None = None
        self._waiters_lock = threading.Lock()
        self._waiters: dict[str, set[Any]] = {}  # job id -> what to set() when it finishes (see watch)
        self._uncertain_lock = threading.Lock()
        self._uncertain_claims: list[tuple[str, float]] = []
        self._closed = False
        # App connections found to reach this database (see _check_same_database), and the server's identity.
        self._verified: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
        self._identity: tuple[Any, ...] | None = None

    def __repr__(self) -> str:
        return f"<PostgresStorage {self.target}/{self.database} schema {self.schema}>"

    # -- connections -------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        """A new connection with search_path set, or DatabaseUnavailableError naming host:port."""
        try:
            conn = psycopg.connect(self.url, **self._connect_kwargs)
        except psycopg.OperationalError as exc:
            if _reason(exc).startswith("invalid "):  # libpq refused a value of the URL: waiting cannot help
                raise self._bad_url(_reason(exc)) from None
            raise DatabaseUnavailableError(
                f"cannot connect to PostgreSQL at {self.target} (database {self.database!r}): {_reason(exc)}"
            ) from None
        except psycopg.Error as exc:
            raise ConfigurationError(f"cannot connect to PostgreSQL at {self.target}: {_reason(exc)}") from None
        self._configure(conn)
        return conn

    def _bad_url(self, reason: str) -> ConfigurationError:
        return _bad_url(self.url, reason)

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    @contextmanager
    def _autocommit(self) -> Iterator[psycopg.Cursor[Any]]:
        """An autocommit cursor: each statement is its own transaction (one round trip)."""
        with self._connection() as conn, conn.cursor() as cur:
            yield cur

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; an error that leaves it dead becomes _ConnectionLost (retried).

        Work done on it renews the current call's patience: a call of many transactions (a purge of a
        million jobs, a large map) may take minutes; only RECONNECT_PATIENCE without progress fails it.
        """
        conn = self._checkout()
        try:
            yield conn
        except psycopg.Error as exc:
            if conn.closed:
                raise _ConnectionLost(_reason(exc)) from exc
            raise
        else:
            if getattr(self._calls, "deadline", None) is not None:
                self._calls.deadline = time.monotonic() + RECONNECT_PATIENCE
        finally:
            self._pool.putconn(conn)

    def _checkout(self) -> psycopg.Connection[Any]:
        """A live pooled connection, waited for until the current call's deadline.

        A connection found dead is dropped (the pool replaces it) and the next one taken at
        once: the pool's own check would sleep a second and more before trying another. The
        wait is cut in short slices so that each asks the pool to connect again (see
        POOL_RECONNECT_TIMEOUT).
        """
        deadline = getattr(self._calls, "deadline", None) or time.monotonic() + RECONNECT_PATIENCE
        wait = 0.05
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._unavailable()
            try:
                conn = self._pool.getconn(timeout=min(wait, remaining))
            except PoolTimeout:
                wait = min(wait * 2, 1.0)
                continue
            if _alive(conn):
                return conn
            conn.close()
            self._pool.putconn(conn)

    def _unavailable(self) -> DatabaseUnavailableError:
        """Why no connection came in time: the server's own answer to a new connection, or a busy pool."""
        try:
            self._connect().close()
        except DatabaseUnavailableError as exc:
            return DatabaseUnavailableError(f"{exc} (waited {RECONNECT_PATIENCE:g}s for it)")
        return DatabaseUnavailableError(
            f"PostgreSQL at {self.target} answers, but all {self._pool.max_size} connections of the pool "
            f"stayed in use for {RECONNECT_PATIENCE:g}s; raise pool_size (TASKITO_POOL_SIZE)"
        )

    def _id_list(self, ids: Sequence[str]) -> list[str]:
        return list(ids)

    def _payload_pattern(self, text: str) -> str:
        """list_jobs_matching reads payloads (bytea, maybe not UTF-8) as encode(payload, 'escape') does:
        text's bytes written the same way find them."""
        escaped = "".join("\\\\" if byte == 92 else chr(byte) if 0 < byte < 128 else f"\\{byte:03o}"
                          for byte in text.encode("utf-8"))
        return super()._payload_pattern(escaped)

    def _notify(self, cur: Any) -> None:
        cur.execute(self.sql["notify"], {"channel": self._work_channel, "payload": ""})

    # -- schema ------------------------------------------------------------------------
    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        """Create or upgrade the schema; an advisory lock makes concurrent first starts safe."""
        known = migrations(self.engine)
        newest = known[-1][0]
        try:
            if self._schema_version(conn) == newest:
                return
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('taskito migrate'), hashtext(%s))",
                             (self.schema,))
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
                conn.execute("CREATE TABLE IF NOT EXISTS taskito_schema_version ("
                             "version integer PRIMARY KEY, applied_at double precision NOT NULL)")
                current = _scalar(conn, "SELECT coalesce(max(version), 0) AS value FROM taskito_schema_version")
                self._check_not_newer(current, newest)
                for version, script in known:
                    if version > current:
                        logger.info("migrating PostgreSQL schema %s to version %d", self.schema, version)
                        conn.execute(script)
                        conn.execute("INSERT INTO taskito_schema_version (version, applied_at) VALUES (%s, %s)",
                                     (version, time.time()))
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailableError(
                f"lost PostgreSQL at {self.target} while preparing schema {self.schema!r}: {_reason(exc)}"
            ) from None
        except psycopg.Error as exc:
            raise ConfigurationError(
                f"cannot create or migrate the taskito schema {self.schema!r} in database {self.database!r} "
                f"at {self.target}: {_reason(exc)}; grant this user CREATE on the database or create the "
                "schema for it"
            ) from None

    def _schema_version(self, conn: psycopg.Connection[Any]) -> int | None:
        if _scalar(conn, "SELECT to_regclass('taskito_schema_version') AS value") is None:
            return None
        current = _scalar(conn, "SELECT max(version) AS value FROM taskito_schema_version") or 0
        self._check_not_newer(current, migrations(self.engine)[-1][0])
        return current

    def _check_not_newer(self, current: int, newest: int) -> None:
        if current > newest:
            raise ConfigurationError(
                f"the taskito schema {self.schema!r} at {self.target} has version {current}, newer than "
                f"this release understands ({newest}); upgrade taskito"
            )

    # -- writing (fast paths; the general cases are sqlbase's) ----------------------------
    def _insert_simple(self, cur: Any, jobs: Sequence[NewJob], now: float, batch: str | None) -> None:
        """One COPY per batch or chunk (the insert trigger notifies workers once); a psycopg2 cursor
        of the app's takes sqlbase's executemany."""
        if not isinstance(cur, psycopg.Cursor) or (len(jobs) < 2 and batch is None):
            super()._insert_simple(cur, jobs, now, batch)
            return
        status = Status.PENDING if batch is None else "staged"
        values = self._copy_values
        with cur.copy(self.sql["copy_jobs"]) as copy:
            for job in jobs:
                row = job_row(job, now, 0)
                row["status"] = status
                row["worker_id"] = batch
                copy.write_row(values(row))

    def _insert_workflow_jobs(self, cur: Any, rows: list[dict[str, Any]]) -> None:
        """One COPY for every job of a workflow (a chord of ten thousand members at map speed)."""
        values = self._workflow_values
        with cur.copy(self.sql["copy_workflow_jobs"]) as copy:
            for row in rows:
                copy.write_row(values(row))

    def _announce_done(self, cur: Any, job_ids: Sequence[str]) -> None:
        if job_ids:
            self._run(cur, "notify", channel=self._done_channel, payload=_done_payload(job_ids))

    @contextmanager
    def _unless_written_already(self, jobs: Sequence[NewJob]) -> Iterator[None]:
        """COPY cannot skip rows: a batch that meets its own ids is a retry of one that did commit (ids
        are ours) only if every one of its ids is there; anything else is a real conflict."""
        try:
            yield
        except psycopg.errors.UniqueViolation:
            with self._autocommit() as cur:
                if self._rows(cur, "count_ids", ids=[job.id for job in jobs])[0]["n"] != len(jobs):
                    raise

    def _write(self, jobs: list[NewJob]) -> list[str]:
        with self._unless_written_already(jobs):
            return super()._write(jobs)
        return [job.id for job in jobs]

    def _stage(self, batch: str, jobs: list[NewJob]) -> None:
        with self._unless_written_already(jobs):
            super()._stage(batch, jobs)

    def _lock_counts(self, cur: Any) -> None:
        self._run(cur, "lock_counts")

    # -- writing through the app's connection ------------------------------------------------
    @contextmanager
    def _foreign_transaction(self, connection: Any) -> Iterator[Any]:
        """A cursor on the app's psycopg (3) or psycopg2 connection, with the queue's schema first.

        The queue's statements name no schema (see the module's docstring), so ``search_path``
        is set for them with ``set_config(..., true)`` and put back right after: the app's own
        statements in the same transaction see its own path again. Should the transaction fail
        meanwhile, its rollback (or that of its savepoint) undoes the change by itself.
        """
        driver = driver_of(connection)
        if driver not in ("psycopg", "psycopg2"):
            raise ConfigurationError(
                f"the queue is on PostgreSQL: it can write jobs through a psycopg (3) or psycopg2 connection, "
                f"or a SQLAlchemy Session or Connection using one, not a {kind_of(connection)}")
        if driver == "psycopg":
            cur = connection.cursor(row_factory=dict_row)  # whatever rows the app's connection makes
        else:
            import psycopg2.extras

            cur = connection.cursor(cursor_factory=psycopg2.extras.RealDictCursor)
        own = connection.autocommit and connection.info.transaction_status == _IDLE
        try:
            if own:  # nothing to join: this enqueue commits at once, as one without a connection does
                cur.execute("BEGIN")
            self._check_same_database(connection, cur)
            cur.execute(self.sql["enter_schema"], {"schema": self.schema})  # a plain lowercase name
            app_path = cur.fetchone()["app_path"]
            try:
                yield cur
            finally:
                if connection.info.transaction_status != _INERROR:
                    cur.execute(self.sql["leave_schema"], {"search_path": app_path})
            if own:
                cur.execute("COMMIT")
        except BaseException:
            if own and connection.info.transaction_status != _IDLE and not connection.closed:
                cur.execute("ROLLBACK")
            raise
        finally:
            cur.close()

    def _check_same_database(self, connection: Any, cur: Any) -> None:
        """Refuse a connection to another database, or to another server, than the queue's.

        A server is told by its port and start time (``pg_postmaster_start_time()``): readable by
        any user, and the same whether reached by TCP, a unix socket or another host name.
        """
        if self._verified.get(connection):
            return
        cur.execute(self.sql["server_identity"])
        theirs = _identity(cur.fetchone())
        ours = self._server_identity(refresh=False)
        if theirs[:3] != ours[:3]:
            ours = self._server_identity(refresh=True)  # the server may have restarted since we asked
        if theirs[:3] != ours[:3]:
            same_looking = theirs[0] == ours[0] and _server(theirs) == _server(ours)
            raise ConfigurationError(
                f"this connection reaches database {theirs[0]!r} on {_server(theirs, same_looking)}, but the queue's "
                f"jobs are in database {ours[0]!r} on {_server(ours, same_looking)} (schema {self.schema!r}): a job "
                "can share a transaction only with data of the queue's own database. Pass a connection to that "
                "database, point the queue at this one (db_url / TASKITO_DB_URL), or enqueue after your commit instead")
        self._verified[connection] = True

    def _server_identity(self, refresh: bool) -> tuple[Any, ...]:
        """The queue's own server_identity row, asked once (and again when ``refresh``)."""
        if refresh or self._identity is None:
            with self._autocommit() as cur:
                self._identity = _identity(self._rows(cur, "server_identity")[0])
        return self._identity

    def _enqueue_one(self, cur: Any, job: NewJob, now: float) -> str:
        if job.unique_key:
            self._run(cur, "lock_unique", namespace=f"{self.schema} unique", unique_key=job.unique_key)
        return super()._enqueue_one(cur, job, now)

    def claim(self, worker_id: str, queues: Sequence[str], limit: int, lease_seconds: float,
              rate_limits: Mapping[str, float] | None = None) -> list[JobRecord]:
        """One round trip: taskito_claim() expires, cascades and claims in one transaction.

        If the connection breaks while claiming, the claim may have committed without the worker
        ever seeing its jobs; the live worker's heartbeat would then keep them running forever.
        Such a batch is recognisable (claimed by this worker with this claim's lease, which no
        heartbeat renews since the worker does not know the jobs) and is put back before the next claim.
        """
        self._release_uncertain_claims()
        now = time.time()
        lease_until = now + lease_seconds
        try:
            with self._autocommit() as cur:
                rates = sorted((rate_limits or {}).items())
                rows = self._rows(cur, "claim", worker_id=worker_id, queues=list(queues), now=now,
                                  lease_until=lease_until, limit=limit, rate_tasks=[task for task, _ in rates],
                                  rate_steps=[1.0 / per_second for _, per_second in rates], horizon=RATE_HORIZON)
        except psycopg.OperationalError:
            with self._uncertain_lock:
                self._uncertain_claims.append((worker_id, lease_until))
            raise
        rows.sort(key=lambda row: (-row["priority"], row["scheduled_at"], row["seq"]))
        return [to_record(row) for row in rows]

    def start(self, started: Sequence[Started]) -> None:
        """One statement for the batch."""
        if not started:
            return
        with self._autocommit() as cur:
            self._run(cur, "start", ids=[item.job_id for item in started], attempts=[item.attempt for item in started],
                      started=[item.started_at for item in started])

    def _release_uncertain_claims(self) -> None:
        with self._uncertain_lock:
            pending, self._uncertain_claims = self._uncertain_claims, []
        for position, (worker_id, lease_until) in enumerate(pending):
            try:
                with self._autocommit() as cur:
                    released = self._run(cur, "release_claim", worker_id=worker_id, lease_until=lease_until)
                    if released:
                        self._notify(cur)  # other idle workers may take them
            except psycopg.Error:
                with self._uncertain_lock:
                    self._uncertain_claims[:0] = pending[position:]
                raise
            if released:
                logger.warning("put back %d job(s) claimed while the connection broke", released)

    def complete(self, done: Sequence[Completion]) -> None:
        """One round trip per batch: taskito_complete() also releases dependents and notifies waiters
        and idle workers, in one durable commit."""
        if not done:
            return
        ids = [item.job_id for item in done]
        # Every id of the batch, not only those completed now: run again after a commit whose answer
        # was lost, this finds them complete already, and their waiters still need to know.
        with self._autocommit() as cur:
            self._rows(cur, "complete", ids=ids, attempts=[item.attempt for item in done],
                       results=[item.result for item in done], started=[item.started_at for item in done],
                       finished=[item.finished_at for item in done], now=time.time(),
                       done_payload=_done_payload(ids))

    def _listener(self, channel: str, on_notify: Callable[[str], None], on_reset: Callable[[], None]) -> _Listener:
        return _Listener(self._connect, channel, on_notify, on_reset)

    def wait_for_work(self, timeout: float) -> bool:
        """Return True as soon as work is announced (NOTIFY), else False after ``timeout``.

        A notification that came while the last claim ran is still pending here. While the
        LISTEN connection is down (reconnecting), the timeout is a poll: True, since work may
        have arrived unannounced.
        """
        if self._work_listener is None:
            with self._listen_lock:
                if self._work_listener is None and not self._closed:
                    self._work_listener = self._listener(self._work_channel, self._on_work, self._on_work_reset)
        listener = self._work_listener
        if self._work_event.wait(timeout):
            self._work_event.clear()
            return True
        return listener is None or not listener.listening.is_set()

    def _on_work(self, payload: str) -> None:
        if payload != READY_ONLY:
            self._due_changes += 1
        self._work_event.set()

    def _on_work_reset(self) -> None:
        self._due_changes += 1
        self._work_event.set()  # (re)connected or lost: whatever happened meanwhile, claim again

    def next_due(self, queues: Sequence[str]) -> float | None:
        """From memory while the work notifications since the last read all said "ready" (inserts of
        jobs due now, without expiry), that read is under DUE_MEMO_SECONDS old, and what it found is not
        due yet: an idle worker asks after every job, and most jobs move no due time."""
        key = tuple(queues)
        changes = self._due_changes  # before the read: a notification during it makes the memo stale
        now = time.monotonic()
        memo = self._due_memo
        listener = self._work_listener
        if (memo is not None and listener is not None and listener.listening.is_set() and memo[:2] == (key, changes)
                and now - memo[2] < DUE_MEMO_SECONDS and (memo[3] is None or time.time() < memo[3])):
            return memo[3]
        due = super().next_due(queues)
        self._due_memo = (key, changes, now, due)
        return due

    def wait_for_result(self, job_id: str, timeout: float) -> JobRecord | None:
        """Re-read the job when a NOTIFY says it (or some job) finished; poll while not listening."""
        deadline = time.monotonic() + timeout
        event = threading.Event()
        unwatch = self.watch(job_id, event)
        try:
            poll = 0.002
            while True:
                event.clear()
                record = self.get_job(job_id)
                if record is None or record.finished:
                    return record
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return record
                if self.listening():
                    event.wait(min(remaining, 2.0))  # a safety re-read, should a notification be missed
                else:
                    event.wait(min(remaining, poll))
                    poll = min(poll * 1.5, 0.5)
        finally:
            unwatch()

    def watch(self, job_id: str, waker: Any) -> Callable[[], None]:
        """Call ``waker.set()`` (from the LISTEN thread) whenever a notification says this job, or maybe
        it, finished; returns the function that stops it. A ``threading.Event`` will do, or an event
        loop's waker (``postgres_async``): one LISTEN connection serves every waiter of the process."""
        if self._done_listener is None:
            with self._listen_lock:
                if self._done_listener is None and not self._closed:
                    self._done_listener = self._listener(self._done_channel, self._on_done, self._on_done_reset)
        with self._waiters_lock:
            self._waiters.setdefault(job_id, set()).add(waker)

        def unwatch() -> None:
            with self._waiters_lock:
                waiting = self._waiters.get(job_id)
                if waiting is not None:
                    waiting.discard(waker)
                    if not waiting:
                        del self._waiters[job_id]

        return unwatch

    def listening(self) -> bool:
        """Whether finished jobs are heard of now (else waiters poll)."""
        listener = self._done_listener
        return listener is not None and listener.listening.is_set()

    @functools.cached_property
    def aio(self) -> AsyncPostgres:
        """Event loops' own way in: psycopg async connections (see ``postgres_async``)."""
        from .postgres_async import AsyncPostgres

        return AsyncPostgres(self)

    def _on_done(self, payload: str) -> None:
        with self._waiters_lock:
            if not payload:
                events = [event for waiting in self._waiters.values() for event in waiting]
            else:
                events = [event for job_id in payload.split(",") for event in self._waiters.get(job_id, ())]
        for event in events:
            event.set()

    def _on_done_reset(self) -> None:
        self._on_done("")

    def close(self) -> None:
        with self._listen_lock:
            self._closed = True
            listeners = [self._work_listener, self._done_listener]
            self._work_listener = self._done_listener = None
        for listener in listeners:
            if listener is not None:
                listener.stop()
        if "aio" in self.__dict__:
            self.aio.close()
        self._pool.close(timeout=5)


def _reconnecting(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a database call again on a fresh connection when its connection dies under it.

    The first retry is immediate (a terminated backend says nothing about the others); later
    ones back off a little. After RECONNECT_PATIENCE seconds the call raises
    DatabaseUnavailableError. A call made inside another one shares its deadline.
    """
    @functools.wraps(method)
    def call(self: PostgresStorage, *args: Any, **kwargs: Any) -> Any:
        calls = self._calls
        if getattr(calls, "deadline", None) is not None:  # inside another call, which retries
            return method(self, *args, **kwargs)
        calls.deadline = time.monotonic() + RECONNECT_PATIENCE
        try:
            pause = 0.0
            while True:
                try:
                    return method(self, *args, **kwargs)
                except _ConnectionLost as exc:
                    if time.monotonic() + pause >= calls.deadline:
                        raise DatabaseUnavailableError(
                            f"lost the connection to PostgreSQL at {self.target} on every attempt for "
                            f"{RECONNECT_PATIENCE:g}s: {exc}") from None
                    logger.log(logging.WARNING if pause else logging.INFO,
                               "connection to PostgreSQL lost during %s (%s); retrying on a new one",
                               method.__name__, exc)
                    time.sleep(pause)
                    pause = min(max(pause * 2, 0.05), 1.0)
        finally:
            calls.deadline = None

    return call


# Every database call of the protocol; waiting and closing are not calls to retry, nor is a write
# through the app's connection (its transaction is the app's: a lost one cannot be carried on elsewhere).
# A large enqueue is not one call either: it reads its jobs as it writes them, so it retries each step.
for _name, _value in list(vars(Storage).items()):
    if callable(_value) and not _name.startswith("_") and _name not in {"wait_for_work", "wait_for_result", "close",
                                                                         "enqueue_on", "enqueue"}:
        setattr(PostgresStorage, _name, _reconnecting(getattr(PostgresStorage, _name)))
for _name in ("_write", "_open_batch", "_stage", "_move_batch", "_batch_chunk"):
    setattr(PostgresStorage, _name, _reconnecting(getattr(PostgresStorage, _name)))
# The queue's own side of the same-database check, made while writing through the app's connection.
PostgresStorage._server_identity = _reconnecting(PostgresStorage._server_identity)  # type: ignore[method-assign]


def _done_payload(job_ids: Sequence[str]) -> str:
    """The ids of finished jobs for their waiters; too many for one NOTIFY: "" (every waiter looks)."""
    payload = ",".join(job_ids)
    return payload if len(payload) < NOTIFY_PAYLOAD_LIMIT else ""


def _identity(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """A server_identity row as a tuple: database, start time, port, then address and port reached."""
    return row["database"], row["started"], row["port"], row["address"], row["address_port"]


def _server(identity: tuple[Any, ...], started: bool = False) -> str:
    """Where a server_identity row says its server is: address and port (a unix socket has none), and
    with ``started`` when it started (what tells apart two servers behind one address, e.g. a proxy)."""
    port, address = identity[2], identity[3]
    where = f"{address}:{port}" if address else f"the local socket of port {port}"
    return f"{where} (the server started at {identity[1]})" if started else where


def _alive(conn: psycopg.Connection[Any]) -> bool:
    """Whether a pooled connection still works, without a round trip in the common case.

    An idle connection has nothing to read; one whose backend was terminated, or whose server
    restarted, has an error message or EOF waiting, so only then pay for the full check.
    """
    if conn.closed:
        return False
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if not readable:
        return True
    try:
        ConnectionPool.check_connection(conn)
    except psycopg.Error:
        return False
    return True


class _Listener:
    """One LISTEN connection on its own thread; reconnects with backoff, never gives up.

    The thread sleeps in select() on the connection's socket and on a pipe that ``stop()``
    writes to, so it reacts at once to both a notification and a close.
    """

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], channel: str,
                 on_notify: Callable[[str], None], on_reset: Callable[[], None]) -> None:
        self.channel = channel
        self.listening = threading.Event()
        self._connect = connect
        self._on_notify = on_notify
        self._on_reset = on_reset
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name=f"taskito-listen-{channel}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        os.write(self._wake_w, b"x")
        self._thread.join(5)
        if not self._thread.is_alive():
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            conn = None
            try:
                conn = self._connect()
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                if failures:
                    logger.warning("notification connection (%s) is back", self.channel)
                failures = 0
                self.listening.set()
                self._on_reset()
                while not self._stop.is_set():
                    readable, _, _ = select.select([conn.fileno(), self._wake_r], [], [], 5.0)
                    if conn.fileno() in readable:
                        for note in conn.notifies(timeout=0):
                            self._on_notify(note.payload)
            except Exception as exc:
                was_listening = self.listening.is_set()
                self.listening.clear()
                self._on_reset()
                if self._stop.is_set():
                    break
                failures += 1
                # At once after a loss (the server is most likely there), then backing off.
                delay = 0.0 if failures == 1 else min(0.1 * 2 ** (failures - 1), MAX_RECONNECT_DELAY)
                reason = _reason(exc) if isinstance(exc, psycopg.Error) else str(exc)
                logger.warning("notification connection (%s) %s: %s; polling meanwhile, reconnecting %s",
                               self.channel, "lost" if was_listening else "unavailable", reason,
                               f"in {delay:.1f}s" if delay else "now")
                self._stop.wait(delay)
            finally:
                if conn is not None:
                    with suppress(Exception):
                        conn.close()
        self.listening.clear()
