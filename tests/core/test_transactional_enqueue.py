"""Jobs written through the app's own connection commit or roll back with the app's rows.

``queue.using_connection(conn)`` and ``queue.enqueue(..., connection=conn)`` on both engines
(a psycopg connection on PostgreSQL, a sqlite3 connection to the queue's own file on SQLite),
psycopg2, and SQLAlchemy's Session, scoped_session and Connection. What a user notices: before
the commit no one else sees the job, after a rollback it is gone, after the commit it is there
with its options, and a connection to another database is refused by name.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from taskito import ConfigurationError, JobNotFoundError, Queue
from tests.conftest import PG_URL

psycopg = pytest.importorskip("psycopg")


class App:
    """The app's own database: an ``orders`` table next to the queue's, and connections to it."""

    def __init__(self, queue: Queue, connect: Callable[..., Any], placeholder: str) -> None:
        self.queue = queue
        self._connect = connect
        self.placeholder = placeholder
        self.opened: list[Any] = []

    def connect(self, autocommit: bool = False) -> Any:
        """A new DB-API connection of the app, closed after the test (a failed test's too, whose open
        transaction would otherwise hold locks that dropping the test's schema waits for)."""
        conn = self._connect(autocommit=autocommit)
        self.opened.append(conn)
        return conn

    def close(self) -> None:
        for conn in self.opened:
            conn.close()

    def add_order(self, conn: Any, order_id: int) -> None:
        cur = conn.cursor()
        cur.execute(f"INSERT INTO orders (id, item) VALUES ({self.placeholder}, 'chair')", (order_id,))

    def orders(self) -> int:
        """Orders committed, as another process sees them."""
        conn = self.connect(autocommit=True)
        try:
            cur = conn.cursor()
            cur.execute("SELECT count(*) FROM orders")
            return cur.fetchone()[0]
        finally:
            conn.close()

    def jobs(self) -> int:
        """Jobs committed, as a worker sees them."""
        return sum(self.queue.stats().values())


def _pg_app_url(schema: str) -> str:
    """PG_URL with the app's own schema as search_path: its tables are not the queue's."""
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def app(engine_settings: dict[str, str], engine_queue: Queue) -> Iterator[App]:
    if engine_settings.get("backend") == "postgres":
        app_schema = f"{engine_settings['schema']}_app"
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'CREATE SCHEMA "{app_schema}"')
            admin.execute(f'CREATE TABLE "{app_schema}".orders (id integer PRIMARY KEY, item text NOT NULL)')
        url = _pg_app_url(app_schema)
        app = App(engine_queue, lambda autocommit=False: psycopg.connect(url, autocommit=autocommit), "%s")
        yield app
        app.close()
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{app_schema}" CASCADE')
        return
    path = engine_settings["db_path"]
    engine_queue.connect()  # the queue's file exists (WAL, its tables) before the app's transactions
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL)")
    app = App(engine_queue, lambda autocommit=False: sqlite3.connect(path, isolation_level=None if autocommit else ""),
              "?")
    yield app
    app.close()


def test_jobs_appear_when_the_app_commits_and_not_before(app: App) -> None:
    queue = app.queue
    conn = app.connect()
    app.add_order(conn, 1)
    with queue.using_connection(conn):
        single = queue.enqueue("ship", args=(1,), priority=7)
        batch = queue.enqueue_many("ship", [(2,), (3,), (4,)])
        unique = queue.enqueue("ship", args=(5,), unique_key="order-5")
        again = queue.enqueue("ship", args=(5,), unique_key="order-5")  # sees the first, uncommitted as it is
        after = queue.enqueue("ship", args=(6,), depends_on=single)  # a dependency of the same transaction
    assert again.id == unique.id
    assert (app.orders(), app.jobs(), queue.get_job(single.id)) == (0, 0, None)  # nobody sees them yet
    app.add_order(conn, 2)  # the app's own statements still find its own tables afterwards
    conn.commit()
    assert (app.orders(), app.jobs()) == (2, 6)
    assert queue.get_job(single.id).to_dict()["priority"] == 7
    assert [job.to_dict()["args"] for job in batch] == [[2], [3], [4]]
    assert queue.get_job(after.id).to_dict()["depends_on"] == [single.id]
    conn.close()


def test_a_rollback_takes_every_job_with_it(app: App) -> None:
    conn = app.connect()
    app.add_order(conn, 1)
    jobs = app.queue.enqueue_many("ship", [(n,) for n in range(200)], connection=conn)
    app.queue.enqueue("ship", args=(1,), connection=conn, unique_key="order-1")
    conn.rollback()
    assert (app.orders(), app.jobs()) == (0, 0)
    assert app.queue.get_job(jobs[0].id) is None
    conn.close()


def test_a_rolled_back_savepoint_drops_only_its_own_jobs(app: App) -> None:
    conn = app.connect()
    cur = conn.cursor()
    app.add_order(conn, 1)
    kept = app.queue.enqueue("ship", args=(1,), connection=conn)
    cur.execute("SAVEPOINT inner_block")
    app.add_order(conn, 2)
    dropped = app.queue.enqueue_many("ship", [(2,), (3,)], connection=conn)
    cur.execute("ROLLBACK TO SAVEPOINT inner_block")
    conn.commit()
    assert (app.orders(), app.jobs()) == (1, 1)
    assert app.queue.get_job(kept.id) is not None and app.queue.get_job(dropped[0].id) is None
    conn.close()


def test_a_connection_in_autocommit_mode_commits_each_enqueue_at_once(app: App) -> None:
    conn = app.connect(autocommit=True)
    with app.queue.using_connection(conn):
        app.queue.enqueue("ship", args=(1,))
        app.queue.enqueue_many("ship", [(2,), (3,)])
    assert app.jobs() == 3  # committed while conn is still open
    conn.close()


def test_a_failed_enqueue_leaves_the_app_transaction_usable(app: App) -> None:
    conn = app.connect()
    app.add_order(conn, 1)
    with pytest.raises(JobNotFoundError, match="depends_on names unknown job id"):
        app.queue.enqueue("ship", args=(1,), connection=conn, depends_on="0" * 32)
    app.add_order(conn, 2)  # neither an aborted transaction nor the queue's search_path
    conn.commit()
    assert (app.orders(), app.jobs()) == (2, 0)
    conn.close()


def test_outside_the_block_enqueues_commit_on_their_own(app: App) -> None:
    conn = app.connect()
    with app.queue.using_connection(conn):
        app.queue.enqueue("ship", args=(1,))
    conn.rollback()
    app.queue.enqueue("ship", args=(2,))  # the queue's own transaction again
    assert app.jobs() == 1
    conn.close()


def test_another_database_is_refused_naming_both(engine_settings: dict[str, str], engine_queue: Queue,
                                                 tmp_path: Path) -> None:
    if engine_settings.get("backend") == "postgres":
        other = psycopg.connect(PG_URL.rsplit("/", 1)[0] + "/postgres")
        names = ["'postgres'", "'test'"]
    else:
        other = sqlite3.connect(tmp_path / "app.db")
        names = [repr(str(tmp_path / "app.db")), repr(engine_settings["db_path"])]
    with pytest.raises(ConfigurationError) as caught:
        engine_queue.enqueue("ship", args=(1,), connection=other)
    for name in names:
        assert name in str(caught.value)
    other.cursor().execute("SELECT 1")  # the app's transaction was not broken by the check
    other.close()
    assert sum(engine_queue.stats().values()) == 0


def test_a_connection_of_the_wrong_kind_is_refused(engine_settings: dict[str, str], engine_queue: Queue,
                                                   tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="builtins.object"), engine_queue.using_connection(object()):
        pytest.fail("the block must not run")
    wrong = (sqlite3.connect(tmp_path / "x.db") if engine_settings.get("backend") == "postgres"
             else psycopg.connect(PG_URL))
    with pytest.raises(ConfigurationError, match="the queue is on"):
        engine_queue.enqueue("ship", connection=wrong)
    wrong.close()


def test_sqlite_in_memory_is_refused(queue: Queue) -> None:
    with pytest.raises(ConfigurationError, match="a database in memory"):
        queue.enqueue("ship", connection=sqlite3.connect(":memory:"))


# -- PostgreSQL only ---------------------------------------------------------------------------------
@pytest.fixture
def pg_app(pg_schema: str) -> Iterator[App]:
    queue = Queue(backend="postgres", db_url=PG_URL, schema=pg_schema)
    app_schema = f"{pg_schema}_app"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{app_schema}"')
        admin.execute(f'CREATE TABLE "{app_schema}".orders (id integer PRIMARY KEY, item text NOT NULL)')
    url = _pg_app_url(app_schema)
    app = App(queue, lambda autocommit=False: psycopg.connect(url, autocommit=autocommit), "%s")
    yield app
    app.close()
    queue.close()
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA "{app_schema}" CASCADE')


def test_psycopg2_connections_work_the_same(pg_app: App) -> None:
    pytest.importorskip("psycopg2")
    import psycopg2
    from psycopg2.extras import RealDictCursor

    url = pg_app.connect().info.dsn  # the app's parameters, search_path included
    conn = psycopg2.connect(url, cursor_factory=RealDictCursor)  # rows the queue cannot index
    pg_app.opened.append(conn)
    pg_app.add_order(conn, 1)
    with pg_app.queue.using_connection(conn):
        pg_app.queue.enqueue("ship", args=(1,), unique_key="order-1")
        pg_app.queue.enqueue_many("ship", [(2,), (3,)])
    assert pg_app.jobs() == 0
    conn.commit()
    assert (pg_app.orders(), pg_app.jobs()) == (1, 3)
    pg_app.queue.enqueue_many("ship", [(4,), (5,)], connection=conn)
    conn.rollback()
    assert pg_app.jobs() == 3
    conn.close()


def test_the_app_keeps_its_row_factory_and_search_path(pg_app: App) -> None:
    from psycopg.rows import dict_row

    conn = pg_app.connect()
    conn.row_factory = dict_row  # rows the queue's statements could not index
    before = conn.execute("SHOW search_path").fetchone()
    pg_app.queue.enqueue("ship", args=(1,), connection=conn, unique_key="order-1")  # reads rows, too
    pg_app.queue.enqueue_many("ship", [(2,), (3,)], connection=conn)
    assert conn.execute("SHOW search_path").fetchone() == before
    assert conn.execute("SELECT count(*) AS n FROM orders").fetchone() == {"n": 0}  # its own table, unqualified
    conn.commit()
    assert pg_app.jobs() == 3
    conn.close()


def sqlalchemy_url(app: App) -> str:
    conn = app.connect()
    params = conn.info.get_parameters()
    conn.close()
    options = quote(params.get("options", ""))
    return (f"postgresql+psycopg://{params.get('user', '')}@{params.get('host', '')}:{params.get('port', '5432')}/"
            f"{params['dbname']}?options={options}")


def test_sqlalchemy_session_scoped_session_and_connection(pg_app: App) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    from sqlalchemy.orm import Session, scoped_session, sessionmaker

    engine = sqlalchemy.create_engine(sqlalchemy_url(pg_app))
    insert = sqlalchemy.text("INSERT INTO orders (id, item) VALUES (:id, 'chair')")
    db_session = scoped_session(sessionmaker(engine))  # what Flask-SQLAlchemy's db.session is
    try:
        with Session(engine) as session:  # the ORM's transaction
            session.execute(insert, {"id": 1})
            with pg_app.queue.using_connection(session):
                pg_app.queue.enqueue_many("ship", [(1,), (2,)])
            assert pg_app.jobs() == 0
            session.commit()
        assert (pg_app.orders(), pg_app.jobs()) == (1, 2)

        pg_app.queue.enqueue("ship", args=(3,), connection=db_session)  # the session's first statement
        db_session.execute(insert, {"id": 3})
        db_session.rollback()
        assert (pg_app.orders(), pg_app.jobs()) == (1, 2)
        pg_app.queue.enqueue("ship", args=(4,), connection=db_session)
        db_session.commit()
        assert pg_app.jobs() == 3

        with engine.connect() as connection:  # Core: the job first, then commit() commits it too
            pg_app.queue.enqueue("ship", args=(5,), connection=connection)
            connection.execute(insert, {"id": 5})
            assert pg_app.jobs() == 3
            connection.commit()
        assert (pg_app.orders(), pg_app.jobs()) == (2, 4)
    finally:
        db_session.remove()
        engine.dispose()


def test_sqlalchemy_psycopg2_and_sqlite(pg_app: App, tmp_path: Path) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    pytest.importorskip("psycopg2")
    from sqlalchemy.orm import Session

    engine = sqlalchemy.create_engine(sqlalchemy_url(pg_app).replace("+psycopg:", "+psycopg2:"))
    try:
        with Session(engine) as session:
            pg_app.queue.enqueue("ship", args=(1,), connection=session)
            session.rollback()
            pg_app.queue.enqueue("ship", args=(2,), connection=session)
            session.commit()
        assert pg_app.jobs() == 1
    finally:
        engine.dispose()

    queue = Queue(db_path=tmp_path / "app.db").connect()
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        with Session(engine) as session:
            queue.enqueue_many("ship", [(1,), (2,)], connection=session)
            session.rollback()
            queue.enqueue("ship", args=(3,), connection=session)
            assert sum(queue.stats().values()) == 0
            session.commit()
        assert sum(queue.stats().values()) == 1
    finally:
        engine.dispose()
        queue.close()
