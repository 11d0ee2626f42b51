"""The app's own database connections, which transactional enqueues write through.

An app hands over what it holds: a DB-API connection (psycopg 3, psycopg2, sqlite3) or
SQLAlchemy's ``Session``, ``scoped_session`` (Flask-SQLAlchemy's ``db.session``) or
``Connection``. The engines take the DB-API connection under it; which of them an engine
accepts, and whether it reaches the queue's own database, is the engine's to check.
"""

from __future__ import annotations

import sys
from typing import Any

from .exceptions import ConfigurationError

# (top-level module, class name) of the DB-API connection classes an engine may write through.
_DRIVERS = {("psycopg", "Connection"): "psycopg", ("psycopg2", "connection"): "psycopg2",
            ("sqlite3", "Connection"): "sqlite3"}


def kind_of(obj: Any) -> str:
    """``module.Class`` of an object, for error messages."""
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def driver_of(connection: Any) -> str | None:
    """"psycopg", "psycopg2" or "sqlite3" for a DB-API connection of one of them (or a subclass), else None."""
    for cls in type(connection).__mro__:
        driver = _DRIVERS.get((cls.__module__.split(".")[0], cls.__name__))
        if driver is not None:
            return driver
    return None


def dbapi_connection(obj: Any) -> Any:
    """The DB-API connection to write through, in the transaction the app's object is in.

    A SQLAlchemy Session (or scoped_session) gives the connection of its current transaction,
    beginning one if it has none, as its own next statement would; a SQLAlchemy Connection
    outside a transaction begins one, so that its ``commit()`` commits the jobs too.
    """
    if "sqlalchemy" in sys.modules:
        from sqlalchemy.engine import Connection
        from sqlalchemy.orm import Session, scoped_session

        if isinstance(obj, scoped_session):
            obj = obj()
        if isinstance(obj, Session):
            obj = obj.connection()
        if isinstance(obj, Connection):
            if not obj.in_transaction():
                obj.begin()
            obj = obj.connection.driver_connection
    if driver_of(obj) is None:
        raise ConfigurationError(
            f"cannot enqueue through a {kind_of(obj)}: pass a psycopg (3), psycopg2 or sqlite3 connection, "
            "or a SQLAlchemy Session or Connection using one")
    return obj
