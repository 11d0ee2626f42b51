"""A web app's two writes in one transaction: order rows, and the jobs that ship them.

``taskito worker --app txn_app:queue`` runs the jobs (the queue comes from the TASKITO_* env
vars); ``ship`` marks its order shipped. ``python txn_app.py HELPER MODE FIRST COUNT`` plays
the producer: in one transaction it inserts orders FIRST .. FIRST+COUNT-1 and enqueues their
jobs through HELPER (``psycopg``, ``psycopg2`` or ``sqlalchemy`` on PostgreSQL, ``sqlite`` on the
queue's own file): ``delay`` for one order, ``map`` for more. Then, per MODE:

- ``hold``: prints "in transaction" and waits for SIGUSR1 (unless the test kills it before its
  commit), then does as ``commit``;
- ``commit``: commits, prints "committed" and waits (the test kills it right after the commit);
- ``rollback``: rolls back and prints "rolled back".

APP_DB is the app's database: a PostgreSQL URL whose search_path is the app's own schema, or
the SQLite file (the queue's).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from taskito import Queue

queue = Queue()
APP_DB = os.environ.get("APP_DB", "")
ON_SQLITE = queue.backend == "sqlite"
MARK = "?" if ON_SQLITE else "%s"


def connect(helper: str = "psycopg") -> Any:
    if ON_SQLITE:
        return sqlite3.connect(APP_DB)
    if helper == "psycopg2":
        import psycopg2

        return psycopg2.connect(APP_DB)
    import psycopg

    return psycopg.connect(APP_DB)


@queue.task(name="txn_app.ship")  # the same name when run as __main__ (the producer)
def ship(order_id: int) -> int:
    conn = connect()
    try:
        conn.cursor().execute(f"UPDATE orders SET status = 'shipped' WHERE id = {MARK}", (order_id,))
        conn.commit()
    finally:
        conn.close()
    return order_id


def _sqlalchemy_session() -> tuple[Any, Callable[[str, dict[str, Any]], None]]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    url = f"sqlite:///{APP_DB}" if ON_SQLITE else urlunsplit(
        urlsplit(APP_DB)._replace(scheme="postgresql+psycopg"))
    session = Session(create_engine(url))
    return session, lambda statement, params: session.execute(text(statement), params)


def main(helper: str, mode: str, first: int, count: int) -> None:
    ids = list(range(first, first + count))
    if helper == "sqlalchemy":
        handle, execute = _sqlalchemy_session()
    else:
        handle = connect(helper)
        cursor = handle.cursor()

        def execute(statement: str, params: dict[str, Any]) -> None:
            cursor.execute(statement.replace(":id", MARK), (params["id"],))
    for order_id in ids:
        execute("INSERT INTO orders (id, status) VALUES (:id, 'new')", {"id": order_id})
    with queue.using_connection(handle):
        if count == 1:
            ship.delay(ids[0])
        else:
            ship.map([(order_id,) for order_id in ids])
    if mode == "rollback":
        handle.rollback()
        print("rolled back", flush=True)
        return
    if mode == "hold":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        print("in transaction", flush=True)
        signal.sigwait({signal.SIGUSR1})
    handle.commit()
    print("committed", flush=True)
    signal.pause()  # until the test's SIGKILL


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
