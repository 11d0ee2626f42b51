"""The project's one queue: its settings read lazily from ``TASKITO_*`` settings, shared by user code,
admin and commands.

Defining tasks (at import time, during ``AppConfig.ready``) reads no setting and opens no database,
and a settings change (``override_settings`` in tests) makes the queue read them again while its
tasks stay: they live in the queue's registry, which no settings change touches.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings

from taskito import config
from taskito.exceptions import ConfigurationError
from taskito.queue import Queue
from taskito.storage import engine_name

from .wrapper import DjangoTaskWrapper

logger = logging.getLogger("taskito.django")

# Settings of DESIGN.md that are Django-only (the rest come from taskito.config.SETTINGS).
DEFAULT_AUTODISCOVER_MODULE = "tasks"
DEFAULT_ADMIN_PER_PAGE = 50
# The one taskito task behind every job of the Django Tasks backend (see backends.py).
RUNNER_NAME = "taskito_django.run_django_task"

# Keys of a Django PostgreSQL OPTIONS dict that are not libpq connection parameters.
_DJANGO_ONLY_PG_OPTIONS = {"isolation_level", "pool", "server_side_binding", "assume_role", "cursor_factory"}


def is_postgres_backend(name: Any) -> bool:
    return engine_name(name) == "postgres"


def database_is_postgres(alias: str = "default") -> bool:
    """Whether Django's database ``alias`` is PostgreSQL (PostGIS and wrapped engines included)."""
    from django.db import connections

    try:
        return connections[alias].vendor == "postgresql"
    except Exception:  # a backend whose driver is missing: judge by its name
        engine = str(settings.DATABASES.get(alias, {}).get("ENGINE", ""))
        return "postg" in engine.lower()


def postgres_url_from_django(alias: str = "default") -> str:
    """A libpq URL for Django's database ``alias`` (the test database while tests run)."""
    from django.db import connections

    if alias not in settings.DATABASES:
        raise ConfigurationError(f"TASKITO_BACKEND is 'postgres' with no TASKITO_DB_URL, and DATABASES has no "
                                 f"{alias!r} entry to take the connection from; set TASKITO_DB_URL")
    if not database_is_postgres(alias):
        engine = settings.DATABASES[alias].get("ENGINE")
        raise ConfigurationError(
            f"TASKITO_BACKEND is 'postgres' with no TASKITO_DB_URL, but DATABASES[{alias!r}] uses {engine!r}, "
            "not PostgreSQL; set TASKITO_DB_URL = 'postgresql://user:password@host:5432/dbname'"
        )
    return postgres_url(connections[alias].settings_dict)


def postgres_url(conf: dict[str, Any]) -> str:
    """Turn a Django PostgreSQL DATABASES entry into a libpq URL (OPTIONS such as sslmode included)."""
    user, password = conf.get("USER") or "", conf.get("PASSWORD") or ""
    host, port, name = conf.get("HOST") or "", str(conf.get("PORT") or ""), conf.get("NAME") or ""
    params: dict[str, str] = {}
    for key, value in (conf.get("OPTIONS") or {}).items():
        if key not in _DJANGO_ONLY_PG_OPTIONS and isinstance(value, (str, int)) and not isinstance(value, bool):
            params[key] = str(value)
    netloc = ""
    if user:
        netloc = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "") + "@"
    if host.startswith("/"):  # a unix socket directory
        params["host"] = host
        if port:
            params["port"] = port
    elif host:
        netloc += (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    query = f"?{urlencode(params, quote_via=quote)}" if params else ""  # libpq reads "+" as "+", not a space
    return f"postgresql://{netloc}/{quote(name, safe='')}{query}"


def queue_kwargs() -> dict[str, Any]:
    """Queue keyword arguments from Django settings (settings > TASKITO_* env vars > defaults)."""
    kwargs = config.queue_kwargs_from(settings)
    backend = kwargs.get("backend") or config.resolve("backend", None)
    if is_postgres_backend(backend) and not kwargs.get("db_url") and not os.environ.get("TASKITO_DB_URL"):
        kwargs["db_url"] = postgres_url_from_django()
    if "db_path" not in kwargs and not os.environ.get("TASKITO_DB_PATH") and getattr(settings, "BASE_DIR", None):
        # Anchor the default file to the project, so that a web server and workers started from
        # different directories share one database.
        kwargs["db_path"] = str(Path(settings.BASE_DIR) / ".taskito" / "taskito.db")
    return kwargs


def queue_database_problem() -> str | None:
    """Why the queue is not in Django's default database, where its jobs could join Django's
    transactions; None when it is. Judged from settings alone (``manage.py check`` opens nothing)."""
    from django.db import connections

    kwargs = config.queue_kwargs_from(settings)
    backend = engine_name(kwargs.get("backend") or config.resolve("backend", None))
    default = connections["default"].settings_dict if "default" in settings.DATABASES else {}
    engine = default.get("ENGINE")
    if backend == "postgres":
        url = kwargs.get("db_url") or os.environ.get("TASKITO_DB_URL")
        if not url:
            return None  # the queue goes into the default database itself
        if not database_is_postgres("default"):
            return f"the queue is on PostgreSQL (TASKITO_DB_URL) and the default database is {engine!r}"
        ours, theirs = _pg_place(url), _pg_place(postgres_url(default))
        if ours == theirs:
            return None
        return (f"TASKITO_DB_URL names database {ours[2]!r} on {ours[0]}:{ours[1]}, and the default database is "
                f"{theirs[2]!r} on {theirs[0]}:{theirs[1]}")
    db_path = queue_kwargs().get("db_path") or config.resolve("db_path", None)
    name = str(default.get("NAME") or "")
    try:
        same = "sqlite" in str(engine) and os.path.samefile(name, db_path)
    except OSError:
        same = False
    return None if same else f"the queue is the SQLite file {str(db_path)!r}, the default database {engine!r} {name!r}"


def _pg_place(url: str) -> tuple[str, str, str]:
    """Host, port and database name of a PostgreSQL URL, with libpq's defaults."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(re.sub(r"^(postgres(?:ql)?)\+\w+://", r"\1://", url.strip()))
    except psycopg.Error as exc:
        raise ConfigurationError(f"TASKITO_DB_URL is not a PostgreSQL URL: {exc}") from None
    host = params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or "localhost"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    database = params.get("dbname") or os.environ.get("PGDATABASE") or params.get("user") or ""
    return str(host), str(port), str(database)  # conninfo_to_dict's values are typed str | int


def transactional() -> bool:
    """TASKITO_TRANSACTIONAL: whether jobs enqueued inside ``atomic()`` join Django's transaction.

    On by default when the queue is in the default database, which is the only place it can be on.
    """
    value = getattr(settings, "TASKITO_TRANSACTIONAL", None)
    if value is None:
        try:
            return queue_database_problem() is None
        except ConfigurationError:  # a bad setting: the queue itself reports it
            return False
    if not isinstance(value, bool):
        raise ConfigurationError(f"TASKITO_TRANSACTIONAL must be True or False, got {value!r}")
    return value


def transaction_connection() -> Any:
    """Django's default connection (the DB-API one) inside ``atomic()``, for jobs to join its
    transaction; None outside, where each enqueue commits at once as usual."""
    from django.db import connections

    connection = connections["default"]
    if not connection.in_atomic_block:
        return None
    connection.validate_no_broken_transaction()  # as any query of Django's in a failed atomic() block
    connection.ensure_connection()
    return connection.connection


def autodiscover_module() -> str | None:
    return getattr(settings, "TASKITO_AUTODISCOVER_MODULE", DEFAULT_AUTODISCOVER_MODULE) or None


def admin_per_page() -> int:
    value = getattr(settings, "TASKITO_ADMIN_PER_PAGE", DEFAULT_ADMIN_PER_PAGE)
    return value if isinstance(value, int) and value > 0 else DEFAULT_ADMIN_PER_PAGE


class ProjectQueue(Queue):
    """``taskito_django.queue``: the project's Queue, shared by user code, the admin and the commands.

    Its settings are read from Django settings when first needed, not when it is imported, and
    again after a ``TASKITO_*`` change (``override_settings``): ``_reset()`` forgets them. Its
    registry, hence every declared task, schedule and hook, stays. Declaring a task reads no setting.
    """

    task_class = DjangoTaskWrapper

    def __init__(self) -> None:  # not Queue's: there are no settings to take yet
        self._init_state(None)
        self._settings_lock = threading.RLock()
        self._is_built = False

    def __getattr__(self, name: str) -> Any:
        """A setting not read yet (the first use, or the first since a change): read them all now."""
        if name not in _LAZY:
            raise AttributeError(name)  # introspection (pytest, mock, copy...) must not read settings
        self._build()
        return object.__getattribute__(self, name)

    def _build(self) -> None:
        with self._settings_lock:
            if not self._is_built:
                self._apply_settings(config.queue_settings(queue_kwargs()))
                self.transaction_connection = transaction_connection if transactional() else None
                self._is_built = True
                logger.debug("read the project queue's settings: %r", self)

    def _reset(self) -> None:
        """Forget the settings and the database connections; the next use reads the current settings."""
        with self._settings_lock:
            for name in _LAZY:
                self.__dict__.pop(name, None)
            self._storage = None
            self.transaction_connection = None
            self._is_built = False

    def _check_schedule_args(self, task_name: str, args: Sequence[Any], kwargs: Mapping[str, Any] | None) -> None:
        """Checked now if the settings are read already; else when a worker registers the schedule."""
        if self._is_built:
            super()._check_schedule_args(task_name, args, kwargs)

    def __repr__(self) -> str:
        if not self._is_built:
            return "<taskito_django.queue (not built)>"
        return f"<taskito_django.queue: {super().__repr__()}>"


_LAZY = frozenset({*config.QUEUE_ATTRIBUTES, "_settings_id", "_open_storage"})

queue: ProjectQueue = ProjectQueue()


def reset_on_setting_change(*, setting: str, **_: Any) -> None:
    """``setting_changed`` receiver: a TASKITO_* or DATABASES change rebuilds the queue on next use."""
    if setting.startswith("TASKITO_") or setting in ("DATABASES", "BASE_DIR"):
        queue._reset()
