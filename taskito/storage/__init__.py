"""Storage engines behind one protocol, registered here by name; ``engine`` picks one from the settings.

A new engine is one module in this package (passing tests/storage/test_contract.py) plus one entry in
``ENGINES``: a function that checks the settings it needs, without connecting, and returns what opens it.
Nothing here imports the settings layer (``taskito.config``): the settings call down to ``engine_name``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from ..exceptions import ConfigurationError
from .base import (
    JOB_ORDERS,
    WF_CHAINED,
    WF_MAPPED,
    Completion,
    JobRecord,
    NewJob,
    NewWorkflow,
    PeriodicDef,
    Started,
    Status,
    Storage,
    WorkflowJob,
    WorkflowRecord,
    new_job_id,
)

__all__ = ["ENGINES", "JOB_ORDERS", "WF_CHAINED", "WF_MAPPED", "Completion", "JobRecord", "NewJob", "NewWorkflow",
           "PeriodicDef", "Started", "Status", "Storage", "WorkflowJob", "WorkflowRecord", "engine", "engine_name",
           "new_job_id"]

Opener = Callable[[], Storage]


def _sqlite(*, db_path: str, db_url: str | None, schema: str, pool_size: int | None) -> Opener:
    from .sqlite import SQLiteStorage, prepare_path

    return functools.partial(SQLiteStorage, prepare_path(db_path), pool_size=pool_size or 8)


def _postgres(*, db_path: str, db_url: str | None, schema: str, pool_size: int | None) -> Opener:
    if not db_url:
        raise ConfigurationError(
            "the postgres backend needs a database URL: pass db_url= or set TASKITO_DB_URL "
            "(postgresql://user:password@host:5432/dbname)"
        )
    try:
        from .postgres import PostgresStorage, parse_url
    except ImportError as exc:
        raise ConfigurationError(
            f"the postgres backend needs psycopg 3 and psycopg_pool ({exc}); "
            "install them with: pip install 'taskito[postgres]'"
        ) from None
    parse_url(db_url)
    return functools.partial(PostgresStorage, db_url, schema=schema, pool_size=pool_size or 10)


# Engine name -> what checks its settings and returns its opener (each imports its module only when chosen).
ENGINES: dict[str, Callable[..., Opener]] = {"sqlite": _sqlite, "postgres": _postgres}
ALIASES = {"postgresql": "postgres"}


def engine_name(backend: object) -> str | None:
    """The registered engine a ``backend`` setting names (any case, aliases resolved), or None."""
    name = str(backend).lower()
    name = ALIASES.get(name, name)
    return name if name in ENGINES else None


def engine(backend: str, *, db_path: str, db_url: str | None, schema: str,
           pool_size: int | None) -> Opener:
    """What opens the engine named by ``backend`` ("sqlite", "postgres" or "postgresql").

    The settings are checked now (a bad path or URL, a missing driver: ConfigurationError) without
    connecting; calling the result connects (and creates or migrates the schema).
    """
    name = engine_name(backend)
    if name is None:
        raise ConfigurationError(f"unknown backend {backend!r}: use 'sqlite' (default) or 'postgres'")
    return ENGINES[name](db_path=db_path, db_url=db_url, schema=schema, pool_size=pool_size)
