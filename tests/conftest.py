"""Fixtures shared by every suite: queues on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskito import Queue

PG_URL = os.environ.get("TASKITO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("TASKITO_REQUIRE_POSTGRES") == "1"


def _postgres_problem() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'taskito[postgres]')"
    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {PG_URL} is not reachable: {str(exc).strip().splitlines()[0]}"


_PG_PROBLEM: str | None | bool = False


def require_postgres() -> None:
    """Skip (or, with TASKITO_REQUIRE_POSTGRES=1, fail) when the test server is missing."""
    global _PG_PROBLEM
    if _PG_PROBLEM is False:
        _PG_PROBLEM = _postgres_problem()
    if _PG_PROBLEM:
        if REQUIRE_PG:
            pytest.fail(f"TASKITO_REQUIRE_POSTGRES=1 but {_PG_PROBLEM}")
        pytest.skip(str(_PG_PROBLEM))


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema name on the test server, dropped afterwards."""
    require_postgres()
    import psycopg

    schema = f"taskito_test_{uuid.uuid4().hex[:10]}"
    yield schema
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "taskito.db")


@pytest.fixture
def queue(db_path: str) -> Iterator[Queue]:
    """A SQLite queue in the test's own directory."""
    q = Queue(db_path=db_path, workers=2)
    yield q
    q.close()


@pytest.fixture(params=["sqlite", "postgres"])
def engine_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Queue arguments for one engine: the SQLite file, then a PostgreSQL schema, of this test."""
    if request.param == "sqlite":
        return {"db_path": str(tmp_path / "taskito.db")}
    return {"backend": "postgres", "db_url": PG_URL, "schema": request.getfixturevalue("pg_schema")}


@pytest.fixture
def engine_queue(engine_settings: dict[str, str]) -> Iterator[Queue]:
    """The same tests on both engines: a queue on SQLite, then on PostgreSQL."""
    q = Queue(**engine_settings, workers=2)
    yield q
    q.close()


@pytest.fixture(params=["sqlite", "postgres"])
def engine_env(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of worker subprocesses running tests/apps on one engine (a Queue() of this process
    reads it too): a SQLite file, then a PostgreSQL schema; EFFECTS_DIR is the test's directory."""
    apps = str(Path(__file__).resolve().parent / "apps")
    values = {"EFFECTS_DIR": str(tmp_path), "TASKITO_LEASE_SECONDS": "2",
              "PYTHONPATH": os.pathsep.join(filter(None, [apps, os.environ.get("PYTHONPATH")]))}
    if request.param == "sqlite":
        values["TASKITO_DB_PATH"] = str(tmp_path / "taskito.db")
    else:
        values.update(TASKITO_BACKEND="postgres", TASKITO_DB_URL=PG_URL,
                      TASKITO_SCHEMA=request.getfixturevalue("pg_schema"))
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values
