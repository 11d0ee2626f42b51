"""PostgreSQL from event loops: psycopg's async connections, a few per loop, for the async client API.

``taskito.aio`` enqueues, reads and waits for jobs through this (``PostgresStorage.aio``):

- connections are ``psycopg.AsyncConnection``s kept per event loop (a connection belongs to the
  loop it was opened on), at most LOOP_CONNECTIONS at once; a loop that closed has its idle ones
  closed the next time another loop asks;
- a call whose connection dies under it runs again on a fresh one, for up to RECONNECT_PATIENCE
  seconds, then raises DatabaseUnavailableError, as the blocking calls do; the statements are the
  storage's own (an enqueue run again after a lost commit answer leaves one job: ids are ours);
- waiting for a job registers a loop-safe waker with the storage's one LISTEN connection
  (``PostgresStorage.watch``): no thread and no connection per waiter.
"""

from __future__ import annotations

import asyncio
import logging
import select
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from ..exceptions import DatabaseUnavailableError
from ..validation import is_job_id
from .base import JobRecord, NewJob, job_row
from .postgres import RECONNECT_PATIENCE, _reason
from .sqlbase import to_record

if TYPE_CHECKING:
    from .postgres import PostgresStorage

logger = logging.getLogger("taskito.storage.postgres")

T = TypeVar("T")

LOOP_CONNECTIONS = 4  # per event loop: the most async calls in flight at once


class _LoopConnections:
    """The idle connections of one event loop, and the slots that bound how many it opens."""

    def __init__(self) -> None:
        self.idle: list[psycopg.AsyncConnection[Any]] = []
        self.slots = asyncio.Semaphore(LOOP_CONNECTIONS)


class _LoopWaker:
    """What the LISTEN thread sets to wake one waiter on its event loop."""

    __slots__ = ("_event", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        self._loop = loop
        self._event = event

    def set(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._event.set)
        except RuntimeError:  # the loop closed: nobody waits any more
            pass


class AsyncPostgres:
    """The async calls of one PostgresStorage (the same database, schema and statements)."""

    def __init__(self, storage: PostgresStorage) -> None:
        self.storage = storage
        self._lock = threading.Lock()
        self._loops: dict[asyncio.AbstractEventLoop, _LoopConnections] = {}

    # -- calls ---------------------------------------------------------------------------------
    @staticmethod
    def enqueues(jobs: Sequence[NewJob]) -> bool:
        """Whether ``enqueue`` takes these: plain jobs. Unique keys and dependencies take the blocking
        call's transaction (locks, dependency checks), on the client's thread pool."""
        return all(not job.unique_key and not job.depends_on for job in jobs)

    async def enqueue(self, jobs: Sequence[NewJob]) -> list[str]:
        now = time.time()
        rows = [job_row(job, now, 0) for job in jobs]
        statement = self.storage.sql["insert_job"]

        async def insert(conn: psycopg.AsyncConnection[Any]) -> None:
            if len(rows) == 1:
                await conn.execute(statement, rows[0])
                return
            async with conn.transaction(), conn.cursor() as cur:
                await cur.executemany(statement, rows)

        await self._call(insert)
        return [job.id for job in jobs]

    async def get_job(self, job_id: str) -> JobRecord | None:
        if not is_job_id(job_id):
            return None

        async def read(conn: psycopg.AsyncConnection[Any]) -> list[Any]:
            cur = await conn.execute(self.storage.sql["get_job"], {"job_id": job_id})
            return await cur.fetchall()

        rows = await self._call(read)
        if not rows:
            return None
        record = to_record(rows[0])
        record.depends_on = list(rows[0]["depends_on"] or [])
        return record

    async def wait_for_result(self, job_id: str, timeout: float) -> JobRecord | None:
        """Re-read the job when the LISTEN connection hears it (or maybe it) finished; poll while it is not
        listening, and re-read every 2 s anyway should a notification be missed."""
        woken = asyncio.Event()
        unwatch = self.storage.watch(job_id, _LoopWaker(asyncio.get_running_loop(), woken))
        try:
            deadline = time.monotonic() + timeout
            poll = 0.002
            while True:
                woken.clear()
                record = await self.get_job(job_id)
                if record is None or record.finished:
                    return record
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return record
                if self.storage.listening():
                    wait = min(remaining, 2.0)
                else:
                    wait = min(remaining, poll)
                    poll = min(poll * 1.5, 0.5)
                try:
                    await asyncio.wait_for(woken.wait(), wait)
                except asyncio.TimeoutError:
                    pass
        finally:
            unwatch()

    def close(self) -> None:
        """Close every idle connection (those of loops still running included)."""
        with self._lock:
            loops, self._loops = self._loops, {}
        for connections in loops.values():
            _finish(connections.idle)

    # -- connections ---------------------------------------------------------------------------
    async def _call(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """``work(conn)``, run again on a fresh connection when its connection dies under it."""
        deadline = time.monotonic() + RECONNECT_PATIENCE
        pause = 0.0
        while True:
            async with self._connection(deadline) as conn:
                try:
                    return await work(conn)
                except psycopg.Error as exc:
                    if not conn.closed:
                        raise
                    lost = exc
            if time.monotonic() + pause >= deadline:
                raise DatabaseUnavailableError(f"lost the connection to PostgreSQL at {self.storage.target} on every "
                                               f"attempt for {RECONNECT_PATIENCE:g}s: {_reason(lost)}")
            logger.log(logging.WARNING if pause else logging.INFO,
                       "connection to PostgreSQL lost (%s); retrying on a new one", _reason(lost))
            await asyncio.sleep(pause)
            pause = min(max(pause * 2, 0.05), 1.0)

    @asynccontextmanager
    async def _connection(self, deadline: float) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        connections = self._of_this_loop()
        async with connections.slots:
            conn = None
            while connections.idle and conn is None:
                conn = connections.idle.pop()
                if not _usable(conn):
                    _finish([conn])
                    conn = None
            if conn is None:
                conn = await self._connect(deadline)
            try:
                yield conn
            finally:
                if _usable(conn) and conn.info.transaction_status == TransactionStatus.IDLE:
                    connections.idle.append(conn)
                else:
                    _finish([conn])

    def _of_this_loop(self) -> _LoopConnections:
        loop = asyncio.get_running_loop()
        with self._lock:
            connections = self._loops.get(loop)
            if connections is None:
                for closed in [other for other in self._loops if other.is_closed()]:
                    _finish(self._loops.pop(closed).idle)
                connections = self._loops[loop] = _LoopConnections()
        return connections

    async def _connect(self, deadline: float) -> psycopg.AsyncConnection[Any]:
        storage = self.storage
        pause = 0.05
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(storage.url, **storage._connect_kwargs)
                await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(storage.schema)))
                return conn
            except psycopg.OperationalError as exc:
                if time.monotonic() + pause >= deadline:
                    raise DatabaseUnavailableError(
                        f"cannot connect to PostgreSQL at {storage.target} (database {storage.database!r}): "
                        f"{_reason(exc)} (waited {RECONNECT_PATIENCE:g}s for it)") from None
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)


def _usable(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Open, with nothing waiting to be read (an idle connection whose server ended it has EOF or an error)."""
    if conn.closed:
        return False
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    return not readable


def _finish(connections: list[psycopg.AsyncConnection[Any]]) -> None:
    """Close connections without their event loop (it may be closed): libpq closes the socket."""
    for conn in connections:
        if not conn.closed:
            conn.pgconn.finish()
