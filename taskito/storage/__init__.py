"""Storage engines behind one protocol; ``engine`` picks one from the settings."""

from __future__ import annotations

import functools
from collections.abc import Callable

from ..config import BACKENDS
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

__all__ = ["JOB_ORDERS", "WF_CHAINED", "WF_MAPPED", "Completion", "JobRecord", "NewJob", "NewWorkflow", "PeriodicDef",
           "Started", "Status", "Storage", "WorkflowJob", "WorkflowRecord", "engine", "new_job_id"]


def engine(backend: str, *, db_path: str, db_url: str | None, schema: str,
           pool_size: int | None) -> Callable[[], Storage]:
    """What opens the engine named by ``backend`` ("sqlite", "postgres" or "postgresql").

    The settings are checked now (a bad path or URL, a missing driver: ConfigurationError) without
    connecting; calling the result connects (and creates or migrates the schema).
    """
    name = BACKENDS.get(str(backend).lower())
    if name is None:
        raise ConfigurationError(
            f"unknown backend {backend!r}: use 'sqlite' (default) or 'postgres'"
        )
    if name == "sqlite":
        from .sqlite import SQLiteStorage, prepare_path

        return functools.partial(SQLiteStorage, prepare_path(db_path), pool_size=pool_size or 8)
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
