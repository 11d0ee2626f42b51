"""The embedded SQLite engine: WAL, synchronous=NORMAL, a busy timeout, pooled connections.

Writers take ``BEGIN IMMEDIATE`` so a claim is one atomic step even with several
worker processes on one file. Idle workers watch ``PRAGMA data_version`` (a cheap
read that changes when another connection commits) instead of polling the table,
from a baseline read before their claim began: a commit that lands while the claim
runs still wakes them.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ..connections import driver_of, kind_of
from ..exceptions import ConfigurationError, DatabaseUnavailableError, InvalidValueError
from ..validation import shown
from .base import JobRecord, NewJob, job_row
from .sqlbase import SQLStorage
from .sqlfiles import migrations
from .sqlite_checkpoint import Checkpointer
from .sqlite_wake import FolderWake, open_wake

logger = logging.getLogger("taskito.storage.sqlite")

_T = TypeVar("_T")

# How long a statement waits for another connection's write lock before it fails.
BUSY_TIMEOUT = 30.0
# How a connection of ours waits for another process's write lock: our connections have no busy timeout
# (SQLite's own wait), so a statement that meets the lock fails at once, and _patiently tries it again
# after the first of these pauses, each pause half as long again, up to the second. An app's enqueue
# tries every 0.05 to 1 ms: a worker's claim or completion holds the lock for about a millisecond, and
# SQLite's own tries, 1, 2, 5, 10 ms apart, slept through the gaps (3.4 ms per enqueue that met the lock).
# A worker's process tries 1 to 10 ms apart, as SQLite does: when both wait, the enqueue gets in first
# (a producer beside a drain enqueued about 40 % faster, and the drain lost nothing). Both catch every
# pause (25 ms) between the transactions of a chunked bulk operation (a million-job map, a purge).
PRODUCER_PAUSES = (0.00005, 0.001)
WORKER_PAUSES = (0.001, 0.01)
# Page size of a new database (SQLite's default is 4 KB). A commit writes every page it touches whole to
# the WAL, and a single enqueue touches about eight (the row, its indexes, the counters) to add a few
# hundred bytes to each: with 1 KB pages single enqueues were 25-30% faster here, and jobs with 2 KB
# payloads no slower (their rows spill into overflow pages: the same bytes). A database made with other
# pages keeps them (changing them needs a VACUUM out of WAL mode).
PAGE_SIZE = 1024
# Bytes of WAL after which a commit of ours checkpoints it (SQLite's default is 1,000 pages). A worker
# process checkpoints far more often, beside the work (sqlite_checkpoint); this is the backstop for
# processes that run none: rarer checkpoints made single enqueues 13% and batches 45% faster here, at
# the price of a longer pause (about 40 ms here) for the one commit in some thousands that takes it.
WAL_AUTOCHECKPOINT_BYTES = 40 * 1024 * 1024
# The -wal file is cut back to this size whenever it starts over (after a complete checkpoint), so one
# big transaction (a purge, a large enqueue_many) does not leave it that big for good. Above the
# backstop's 40 MB: a file cut shorter than the WAL's usual size grows back at every cycle, and
# growing a file costs far more than writing over it.
WAL_SIZE_LIMIT = 64 * 1024 * 1024
# Steps of the sleep of a thread that watches for other connections' commits (PRAGMA data_version):
# the first after a commit, and the longest, which an idle wait grows to by a tenth each step.
WATCH_STEP_MIN = 0.0002
WATCH_STEP_MAX = 0.02
# After a write to the folder wakes a watcher, how long it looks for the commit behind the write to show
# (a commit's first write to the -wal file comes tens of microseconds before it is visible), and how often.
COMMIT_SHOWS_WITHIN = 0.0005
COMMIT_LOOK_STEP = 0.00003
# Rows of a batch enqueue per INSERT statement (17 parameters each: within SQLite's 32,766).
ROWS_PER_INSERT = 500


def _open_problem(path: Path) -> str:
    """Why the operating system refuses to open ``path`` now (e.g. too many open files), or ""."""
    try:
        os.close(os.open(path if path.exists() else path.parent, os.O_RDONLY))
    except OSError as exc:
        return f" ({exc.strerror}: free some, or raise the limit with ulimit -n)" if exc.errno in (
            errno.EMFILE, errno.ENFILE) else f" ({exc.strerror})"
    return ""


@functools.lru_cache(maxsize=16)
def _multi_row(statement: str, rows: int) -> tuple[str, list[str]]:
    """A one-row ``INSERT ... VALUES (:a, :b) ON CONFLICT ...`` with ``rows`` rows of positional
    parameters instead, and the names the parameters of each row stand for, in order."""
    values = re.search(r"VALUES\s*(\(.*?\))\s*ON CONFLICT", statement, re.DOTALL)
    assert values is not None, f"not a one-row INSERT: {statement}"
    row = values.group(1)
    many = ",\n".join([re.sub(r":\w+", "?", row)] * rows)
    return statement[:values.start(1)] + many + statement[values.end(1):], re.findall(r":(\w+)", row)


def _patiently(attempt: Callable[[], _T], pauses: tuple[float, float] = PRODUCER_PAUSES) -> _T:
    """``attempt()``, started over while it meets another connection's lock (see PRODUCER_PAUSES), for up
    to BUSY_TIMEOUT.

    Only for a statement that did nothing when it failed: BEGIN IMMEDIATE, or one outside a transaction.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT
    pause, longest = pauses
    while True:
        try:
            return attempt()
        except sqlite3.OperationalError as exc:
            if "database is locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 1.5, longest)


class _DictCursor(sqlite3.Cursor):
    """A cursor whose rows are dicts, as psycopg's dict_row gives them on PostgreSQL.

    Not sqlite3.Row: it finds a column by a case-insensitive walk of every name, which made reading
    a job's two dozen columns by name cost more than the claim that returned them.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn)
        self.row_factory = _dict_row


class _PatientCursor(_DictCursor):
    """On the queue's own connections: a statement outside a transaction waits for the write lock
    as BEGIN IMMEDIATE does (_patiently, with the storage's ``pauses``)."""

    pauses = PRODUCER_PAUSES

    def execute(self, sql: str, parameters: Any = (), /) -> _PatientCursor:
        if self.connection.in_transaction:
            return super().execute(sql, parameters)
        return _patiently(lambda: super(_PatientCursor, self).execute(sql, parameters), self.pauses)


def _dict_row(cur: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip([column[0] for column in cur.description], row, strict=True))


class _Lease:
    """A pooled connection (or a _PatientCursor of it) for a ``with`` block, given back at its end; an
    OperationalError in the block becomes a DatabaseUnavailableError naming the file.

    A class rather than a @contextmanager generator: every call of the engine (each enqueue) enters one.
    """

    __slots__ = ("_cursor", "_storage", "_taken")

    def __init__(self, storage: SQLiteStorage, cursor: bool) -> None:
        self._storage = storage
        self._cursor = cursor

    def __enter__(self) -> Any:
        self._taken = self._storage._take()
        conn = self._taken[1]
        if not self._cursor:
            return conn
        cursor = conn.cursor(_PatientCursor)
        cursor.pauses = self._storage._pauses
        return cursor

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, traceback: Any) -> None:
        self._storage._give_back(self._taken)
        if isinstance(exc, sqlite3.OperationalError):
            raise self._storage._unusable(exc) from exc


def _split_statements(script: str) -> Iterator[str]:
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer
            buffer = ""


def prepare_path(path: str | os.PathLike[str]) -> Path:
    """Check that the database can live at ``path``, without opening it: its directory is created
    and writable, and a file already there is a SQLite database (an empty file is created if none).

    Raises ConfigurationError naming the path and what to do.
    """
    path = Path(path).expanduser().absolute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        unwritable = not os.access(path.parent, os.W_OK | os.X_OK) or (
            path.exists() and not os.access(path, os.R_OK | os.W_OK))
        if not unwritable and not path.exists():
            # A new database starts as an empty file. An existing one is never opened here: closing any
            # descriptor of a SQLite file drops every POSIX lock this process holds on it, those of its
            # open connections too, and another process could then checkpoint under them (corruption).
            os.close(os.open(path, os.O_RDONLY | os.O_CREAT, 0o644))
    except OSError as exc:  # not allowed, a file in the way, a name too long...
        raise ConfigurationError(
            f"cannot create the directory of the taskito database {shown(str(path))}: "
            f"{exc.strerror}; set db_path / TASKITO_DB_PATH to a writable location"
        ) from None
    if unwritable:
        raise ConfigurationError(
            f"the taskito database {str(path)!r} is not writable by this user; "
            "set db_path / TASKITO_DB_PATH to a writable location"
        )
    if path.stat().st_size:
        _check_is_database(path)
    return path


def _check_is_database(path: Path) -> None:
    """Refuse a file that is not a SQLite database, reading its header through SQLite itself.

    Not through a file descriptor of our own: closing one drops every POSIX lock this process holds
    on the file, those of its open connections too (SQLite's own connections share them safely).
    """
    conn = sqlite3.connect(str(path), timeout=1.0)
    try:
        conn.execute("PRAGMA schema_version")
    except sqlite3.DatabaseError as exc:
        if "not a database" not in str(exc):
            return  # busy or locked: the file is a database in use, whatever else may be wrong
        raise ConfigurationError(f"{str(path)!r} is not a usable SQLite database: {exc}; set db_path / "
                                 "TASKITO_DB_PATH to a taskito database or a new file") from None
    finally:
        conn.close()


class SQLiteStorage(SQLStorage):
    engine = "sqlite"
    # One write lock: a bigger claim holds it longer, and a producer that meets it waits for it.
    # Claims of up to 256 jobs halved the rate of single enqueues beside a drain.
    max_prefetch = 16

    def __init__(self, path: str | os.PathLike[str], pool_size: int = 8) -> None:
        super().__init__()
        if pool_size < 1:
            raise InvalidValueError(f"pool_size must be at least 1, got {pool_size}")
        self.path = prepare_path(path)
        self._pool_size = pool_size
        # A token per connection that may be in use: taking one waits while all are (a SimpleQueue, in C:
        # a semaphore of the threading module costs a few microseconds of Python at every call).
        self._slots: queue.SimpleQueue[None] = queue.SimpleQueue()
        for _ in range(pool_size):
            self._slots.put(None)
        # Idle connections, the last used first (its page cache is the warmest), each with the
        # generation of the file it was opened on (see _follow_file). A list: append and pop are
        # atomic, and the slots already make callers wait.
        self._pool: list[tuple[int, sqlite3.Connection]] = []
        self._generation = 0
        self._watch_lock = threading.Lock()
        self._watcher: sqlite3.Connection | None = None
        self._watch_interval = WATCH_STEP_MIN
        self._wake: FolderWake | None | bool = False  # False: not opened yet (wait_for_work opens it)
        self._checkpointer: Checkpointer | None = None  # while a worker of this process is registered
        self._pauses = PRODUCER_PAUSES  # WORKER_PAUSES while a worker of this process is registered
        # This process's write transactions take turns here rather than at SQLite's lock, where a thread
        # that meets another's would sleep (a worker's claims waited 1.6 ms for its own completions).
        self._writing = threading.RLock()
        # Per claiming thread: the version read before its last claim, and whether that claim was full.
        self._seen = threading.local()
        self._file_lock = threading.Lock()
        self._migrate()
        self._file = self._file_identity()

    # -- connections -------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
            # Idempotent, so tried again whole while another process holds a lock they need (a new file's
            # migration, the last connection's clean-up of the WAL).
            _patiently(lambda: self._configure(conn))
        except sqlite3.Error as exc:
            # The directory was checked at start-up: what fails now is the process or the system
            # (out of file descriptors or memory, a full disk), and retrying later may succeed.
            raise DatabaseUnavailableError(
                f"cannot open the taskito database {str(self.path)!r}: {exc}{_open_problem(self.path)}"
            ) from None
        return conn

    @staticmethod
    def _configure(conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_BYTES // page_size}")

    def _connection(self) -> _Lease:
        """``with self._connection() as conn``: a pooled connection, for the block."""
        return _Lease(self, cursor=False)

    def _take(self) -> tuple[int, sqlite3.Connection]:
        """A connection of the pool (opened if none is idle), and the generation of its file; waits
        while all pool_size are in use. ``_give_back`` returns it."""
        self._follow_file()  # one stat(): every process, enqueue-only ones too, follows a replaced file
        try:
            self._slots.get(timeout=BUSY_TIMEOUT)
        except queue.Empty:
            raise DatabaseUnavailableError(
                f"the taskito database {str(self.path)!r} cannot be used right now: all {self._pool_size} "
                f"connections stayed in use for {BUSY_TIMEOUT:g}s; raise pool_size (TASKITO_POOL_SIZE)") from None
        try:
            generation, conn = self._pool.pop()
        except IndexError:
            generation, conn = self._generation, None
        try:
            if conn is not None and generation != self._generation:  # opened on a deleted or replaced file
                conn.close()
                conn = None
            if conn is None:
                generation, conn = self._generation, self._connect()
        except BaseException:
            self._slots.put(None)  # a connection that failed to open must not keep its slot
            raise
        return generation, conn

    def _give_back(self, taken: tuple[int, sqlite3.Connection]) -> None:
        self._pool.append(taken)
        self._slots.put(None)

    def _unusable(self, exc: sqlite3.OperationalError) -> DatabaseUnavailableError:
        """A taskito error naming the file, for a lock held too long, a full disk, a read-only file..."""
        reason = str(exc)
        if "locked" in reason or "busy" in reason:
            reason += (f" (another connection held its write lock for more than {BUSY_TIMEOUT:g}s: "
                       "a long transaction, or a backup not made with sqlite3 .backup?)")
        return DatabaseUnavailableError(f"the taskito database {str(self.path)!r} cannot be used right now: {reason}")

    # -- a database file that went away -------------------------------------------------
    def _file_identity(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        return stat.st_dev, stat.st_ino

    def _follow_file(self) -> None:
        """Notice a database file deleted or replaced under us, and move to the one at the path now.

        Open connections would otherwise go on using the unlinked file while enqueuers write
        to a new one that no worker reads. Jobs of the old file are gone with it.
        """
        if self._file_identity() == self._file:
            return
        with self._file_lock:
            if self._file_identity() == self._file:
                return
            logger.error("the taskito database %s was deleted or replaced while in use; reopening it at that "
                         "path (jobs that were only in the old file are lost with it: restore it from a backup "
                         "made with sqlite3 .backup)", self.path)
            self._generation += 1
            with self._watch_lock:
                if self._watcher is not None:
                    self._watcher.close()
                    self._watcher = None
            prepare_path(self.path)
            self._migrate()
            self._file = self._file_identity()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._writing, self._connection() as conn, self._begin(conn, self._pauses) as cur:
            yield cur

    @staticmethod
    @contextmanager
    def _begin(conn: sqlite3.Connection, pauses: tuple[float, float] = PRODUCER_PAUSES) -> Iterator[sqlite3.Cursor]:
        """A write transaction on ``conn``: BEGIN IMMEDIATE takes the write lock up front."""
        _patiently(lambda: conn.execute("BEGIN IMMEDIATE"), pauses)
        try:
            yield conn.cursor(_DictCursor)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # a failed COMMIT (disk full) leaves it open too
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _foreign_transaction(self, connection: Any) -> Iterator[sqlite3.Cursor]:
        """A cursor on the app's sqlite3 connection to the queue's own file, in the app's transaction.

        A connection in autocommit mode (``isolation_level=None`` or ``autocommit=True``) outside a
        transaction gets one of its own, committed at once; otherwise the statements join the
        transaction it is in, or the one sqlite3 begins for them, which the app commits.
        """
        if driver_of(connection) != "sqlite3":
            raise ConfigurationError(
                f"the queue is on SQLite: it can write jobs through a sqlite3 connection to its own file "
                f"{str(self.path)!r} (or a SQLAlchemy Session or Connection using one), not a {kind_of(connection)}")
        self._check_same_file(connection)
        mode = getattr(connection, "autocommit", None)  # Python 3.12+; otherwise the legacy isolation_level
        autocommits = mode if isinstance(mode, bool) else connection.isolation_level is None
        if autocommits and not connection.in_transaction:
            with self._begin(connection) as cur:
                yield cur
            return
        cur = connection.cursor(_DictCursor)
        try:
            yield cur
        finally:
            cur.close()

    def _check_same_file(self, connection: sqlite3.Connection) -> None:
        cur = connection.cursor()
        cur.row_factory = None
        try:
            main = next((row[2] for row in cur.execute("PRAGMA database_list") if row[1] == "main"), "")
        finally:
            cur.close()
        try:
            same = bool(main) and os.path.samefile(main, self.path)
        except OSError:
            same = False
        if not same:
            raise ConfigurationError(
                f"this sqlite3 connection is to {repr(main) if main else 'a database in memory'}, but the queue's jobs "
                f"are in {str(self.path)!r}: a job can share a transaction only with data of the queue's own file. "
                "Connect to that file, point the queue at this one (db_path / TASKITO_DB_PATH), or enqueue after "
                "your commit instead")

    def _autocommit(self) -> _Lease:
        """``with self._autocommit() as cur``: a cursor of a pooled connection, each statement its own
        transaction (waiting for the write lock: _PatientCursor)."""
        return _Lease(self, cursor=True)

    def _insert_workflow_jobs(self, cur: Any, rows: list[dict[str, Any]]) -> None:
        """ROWS_PER_INSERT rows per statement, as ``_insert_simple`` does (a chord of 10,000 at map speed)."""
        for start in range(0, len(rows), ROWS_PER_INSERT):
            chunk = rows[start:start + ROWS_PER_INSERT]
            statement, params = _multi_row(self.sql["insert_workflow_job"], len(chunk))
            cur.execute(statement, [row[param] for row in chunk for param in params])

    def _insert_simple(self, cur: Any, jobs: Sequence[NewJob], now: float, batch: str | None) -> None:
        """Insert a batch ROWS_PER_INSERT rows per statement rather than one statement per row.

        Inside a transaction, every statement that fires a trigger (the counters' insert trigger does)
        opens a statement journal of the pages it changes: one per row made a batch three times slower.
        """
        if len(jobs) < 2:
            super()._insert_simple(cur, jobs, now, batch)
            return
        name = "insert_job" if batch is None else "stage_job"
        for start in range(0, len(jobs), ROWS_PER_INSERT):
            chunk = jobs[start:start + ROWS_PER_INSERT]
            statement, params = _multi_row(self.sql[name], len(chunk))
            rows = [{**job_row(job, now, 0), "batch": batch} for job in chunk]
            cur.execute(statement, [row[param] for row in rows for param in params])

    def _id_list(self, ids: Sequence[str]) -> str:
        return json.dumps(list(ids))

    def _str_list(self, value: str) -> list[str]:
        return json.loads(value)

    def _migrate(self) -> None:
        """Bring the schema up to date. Only a due migration takes the write lock, so a process
        starts (and reads) while another connection holds that lock, as WAL allows."""
        known = migrations(self.engine)
        # A connection of its own, not a pooled one: _connection() itself may call this (_follow_file).
        with closing(self._connect()) as conn:
            try:
                # A new file's page size; an existing one keeps its own.
                _patiently(lambda: conn.execute(f"PRAGMA page_size={PAGE_SIZE}"))
                _patiently(lambda: conn.execute("PRAGMA journal_mode=WAL"))
                if self._schema_version(conn, known) == known[-1][0]:
                    return
                with self._begin(conn) as cur:  # again under the lock: another process may have migrated
                    cur.execute("CREATE TABLE IF NOT EXISTS taskito_schema_version (version INTEGER NOT NULL)")
                    current = self._schema_version(conn, known)
                    for version, script in known:
                        if version > current:
                            # Creating a new database is routine; upgrading an existing one is news.
                            logger.log(logging.INFO if current else logging.DEBUG,
                                       "migrating %s to schema version %d", self.path, version)
                            for statement in _split_statements(script):
                                cur.execute(statement)
                            cur.execute("INSERT INTO taskito_schema_version (version) VALUES (?)", (version,))
            except sqlite3.OperationalError as exc:
                raise self._unusable(exc) from exc
            except sqlite3.DatabaseError as exc:
                raise ConfigurationError(f"{str(self.path)!r} is not a usable SQLite database: {exc}") from None

    def _schema_version(self, conn: sqlite3.Connection, known: tuple[tuple[int, str], ...]) -> int:
        try:
            current = _patiently(
                lambda: conn.execute("SELECT max(version) FROM taskito_schema_version").fetchone()[0]) or 0
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            return 0  # a new database
        newest = known[-1][0]
        if current > newest:
            raise ConfigurationError(f"the taskito database {str(self.path)!r} has schema version {current}, newer "
                                     f"than this release understands ({newest}); upgrade taskito")
        return current

    def _pause_after(self, held: float) -> float:
        """Half the time the last chunk held the write lock, from 25 ms to 100 ms.

        A connection of ours waiting for the lock tries again at most 10 ms later (PRODUCER_PAUSES), so such a
        pause lets a waiter in before the next chunk (back-to-back chunks would starve it).
        """
        return min(max(held / 2, 0.025), 0.1)

    def _settle_after_chunk(self) -> None:
        """Copy the chunk just written from the WAL into the database, outside the write lock.

        Otherwise the WAL of a large map or purge grows to the commits' backstop (WAL_AUTOCHECKPOINT_BYTES),
        and the commit that crosses it, often another process's single enqueue, does a checkpoint of
        40 MB: an enqueue beside a map of a million jobs waited 547 ms.
        """
        self._backfill()

    # -- keeping the write-ahead log small --------------------------------------------
    def purge(self, status: str, older_than: float) -> int:
        removed = super().purge(status, older_than)
        if removed:
            self._checkpoint()  # a purge of many rows is one big transaction: all of it went to the WAL
        return removed

    def merge_task_minutes(self, start: float, end: float, step: int) -> None:
        """Read the merged rows, delete the originals, write the merged ones: one transaction (the
        write lock keeps everyone else out meanwhile). Minutes need no merging here: the trigger adds
        to the one row of its key."""
        if step <= 60:
            return
        with self._transaction() as cur:
            rows = self._rows(cur, "grouped_task_minutes", start=start, end=end, step=step)
            if not rows:
                return
            self._run(cur, "delete_task_minutes", start=start, end=end)
            cur.executemany(self.sql["insert_task_minutes"], [
                {key: row[key] for key in ("minute", "queue", "task_name", "outcome", "runtime_le", "wait_le", "n",
                                           "runtime_sum", "wait_sum")} for row in rows])

    def register_worker(self, worker_id: str, info: dict[str, Any]) -> None:
        """A worker's process also takes the WAL's checkpoints from then on (see sqlite_checkpoint), and lets
        other processes' enqueues go first at the write lock (see PRODUCER_PAUSES)."""
        super().register_worker(worker_id, info)
        self._pauses = WORKER_PAUSES
        if self._checkpointer is None:
            self._checkpointer = Checkpointer(self._backfill)
            self._checkpointer.start()

    def unregister_worker(self, worker_id: str) -> None:
        """A stopping worker also folds the WAL back into the database, leaving a small -wal file."""
        super().unregister_worker(worker_id)
        self._pauses = PRODUCER_PAUSES
        self._stop_checkpoints()
        self._checkpoint()

    def _stop_checkpoints(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None

    def _backfill(self) -> None:
        """Copy what the WAL holds into the database (PASSIVE: never waits for a reader or a writer)."""
        with self._connection() as conn:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it, without waiting for anyone.

        TRUNCATE empties the -wal file, but it needs a moment when no other connection reads an
        older snapshot or writes; with the busy handler off it never waits for that moment (so no
        enqueue or claim stalls behind it): if the moment is not now, it checkpoints what it can,
        as PASSIVE would, and journal_size_limit cuts the file back when the WAL next starts over.
        """
        try:
            with self._connection() as conn:  # no busy timeout (see PRODUCER_PAUSES): it never waits
                busy, frames, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except DatabaseUnavailableError as exc:
            logger.warning("could not checkpoint the WAL of %s: %s", self.path, exc)
            return
        if busy:
            logger.debug("WAL of %s in use: checkpointed what could be now (%d frames)", self.path, frames)

    # -- waiting -----------------------------------------------------------------------
    def claim(self, worker_id: str, queues: Sequence[str], limit: int, lease_seconds: float,
              rate_limits: Mapping[str, float] | None = None) -> list[JobRecord]:
        """Claim (see SQLStorage), after noting the database's version for ``wait_for_work``.

        Noted before the claim's transaction, not after: a job committed by another connection
        while the claim ran then wakes the next wait, instead of being taken as already seen. A claim
        that would find nothing (``claimable``) takes no write lock; the look is skipped after a full
        claim of the same thread, when more work is likely (a drain pays nothing for it).
        """
        seen = self._seen
        seen.version = self._watched_version()
        if not getattr(seen, "full", False):
            with self._autocommit() as cur:
                if not self._rows(cur, "claimable", queues=self._id_list(queues), now=time.time())[0]["found"]:
                    return []
        rows = super().claim(worker_id, queues, limit, lease_seconds, rate_limits)
        seen.full = len(rows) >= limit
        return rows

    def _watched_version(self, follow: bool = True) -> tuple[sqlite3.Connection, int] | None:
        """(watcher connection, its data_version), or None when the file cannot be watched now."""
        try:
            if follow:
                self._follow_file()
            with self._watch_lock:
                if self._watcher is None:
                    self._watcher = self._connect()
                watcher = self._watcher
                return watcher, _patiently(lambda: watcher.execute("PRAGMA data_version").fetchone()[0])
        except (sqlite3.Error, DatabaseUnavailableError):
            with self._watch_lock:
                if self._watcher is not None:
                    self._watcher.close()
                    self._watcher = None
            return None

    def wait_for_work(self, timeout: float) -> bool:
        """Sleep in short steps until another connection commits or ``timeout`` passes.

        Commits since this thread's last claim began count (see ``claim``). The step starts at
        0.2 ms and grows while nothing happens (to 20 ms), so an idle worker costs little CPU and a
        busy one reacts within a fraction of a millisecond. Each step also ends as soon as a file of the
        database's folder is written (``sqlite_wake``, where available), so a job committed to an idle
        worker still starts at once. A file that cannot be watched now (out of file
        descriptors...) is waited out, as a poll: the caller's next claim reports the problem.
        """
        deadline = time.monotonic() + timeout
        current = self._watched_version()
        baseline = getattr(self._seen, "version", None) or current
        if self._wake is False:
            self._wake = open_wake(self.path)
        while current is not None:
            if current != baseline:  # another commit, or another watcher (the file was replaced)
                self._watch_interval = WATCH_STEP_MIN
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            step = min(self._watch_interval, remaining)
            self._watch_interval = min(self._watch_interval * 1.1, WATCH_STEP_MAX)
            current = self._version_after(baseline, step, self._wake)
        time.sleep(max(deadline - time.monotonic(), 0))
        return True

    def _version_after(self, seen: tuple[sqlite3.Connection, int], step: float,
                       wake: FolderWake | None | bool) -> tuple[sqlite3.Connection, int] | None:
        """The watched version after sleeping ``step`` seconds, or less: with a wake, until a file of the
        folder is written, then until the commit behind that write shows (its first write to the -wal
        file comes a moment before it is visible) or COMMIT_SHOWS_WITHIN passes."""
        if not isinstance(wake, FolderWake):
            time.sleep(step)
            return self._watched_version(follow=False)
        if not wake.wait(step):
            return self._watched_version(follow=False)
        looking_until = time.monotonic() + COMMIT_SHOWS_WITHIN
        while True:
            current = self._watched_version(follow=False)
            if current != seen or time.monotonic() >= looking_until:
                return current
            time.sleep(COMMIT_LOOK_STEP)

    def wait_for_result(self, job_id: str, timeout: float) -> JobRecord | None:
        """Read the job again whenever another connection has committed (the worker's completion is
        one), watched as ``wait_for_work`` does, with a wake of this call's own (threads do not share
        one): a result is seen as soon as it is committed, and a long wait costs a cheap read every
        20 ms. A file that cannot be watched now is polled instead."""
        deadline = time.monotonic() + timeout
        step = WATCH_STEP_MIN
        wake: FolderWake | None | bool = False  # opened once the job is found unfinished
        try:
            while True:
                seen = self._watched_version()  # before the read: a commit while it runs counts as new
                record = self.get_job(job_id)
                if record is None or record.finished:
                    return record
                if wake is False:
                    wake = open_wake(self.path)
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return record
                    wait = min(step, remaining)
                    step = min(step * 1.1, WATCH_STEP_MAX)
                    if seen is None:  # not watchable now: poll
                        time.sleep(wait)
                        break
                    if self._version_after(seen, wait, wake) != seen:
                        break
        finally:
            if isinstance(wake, FolderWake):
                wake.close()

    def close(self) -> None:
        self._stop_checkpoints()
        while self._pool:
            self._pool.pop()[1].close()
        if isinstance(self._wake, FolderWake):
            self._wake.close()
        self._wake = False
        with self._watch_lock:
            if self._watcher is not None:
                self._watcher.close()
                self._watcher = None
