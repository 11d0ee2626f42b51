"""Storage engines behind one protocol; ``open_storage`` picks one from the settings."""

from __future__ import annotations

from ..config import BACKENDS
from ..exceptions import ConfigurationError
from .base import Completion, JobRecord, NewJob, PeriodicDef, Started, Status, Storage, new_job_id

__all__ = ["Completion", "JobRecord", "NewJob", "PeriodicDef", "Started", "Status", "Storage", "new_job_id",
           "open_storage"]



def open_storage(backend: str, *, db_path: str, db_url: str | None, schema: str,
                 pool_size: int | None) -> Storage:
    """Build the engine named by ``backend`` ("sqlite", "postgres" or "postgresql")."""
    engine = BACKENDS.get(str(backend).lower())
    if engine is None:
        raise ConfigurationError(
            f"unknown backend {backend!r}: use 'sqlite' (default) or 'postgres'"
        )
    if engine == "sqlite":
        from .sqlite import SQLiteStorage

        return SQLiteStorage(db_path, pool_size=pool_size or 8)
    if not db_url:
        raise ConfigurationError(
            "the postgres backend needs a database URL: pass db_url= or set TASKITO_DB_URL "
            "(postgresql://user:password@host:5432/dbname)"
        )
    try:
        from .postgres import PostgresStorage
    except ImportError as exc:
        raise ConfigurationError(
            f"the postgres backend needs psycopg 3 and psycopg_pool ({exc}); "
            "install them with: pip install 'taskito[postgres]'"
        ) from None
    return PostgresStorage(db_url, schema=schema, pool_size=pool_size or 10)
