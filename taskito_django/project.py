"""The project's one queue: its settings read lazily from ``TASKITO_*`` settings, shared by user code,
admin and commands.

Defining tasks (at import time, during ``AppConfig.ready``) reads no setting and opens no database,
and a settings change (``override_settings`` in tests) makes the queue read them again while its
tasks stay: they live in the queue's registry, which no settings change touches.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings

from taskito import config
from taskito.config import BACKENDS
from taskito.exceptions import ConfigurationError
from taskito.queue import Queue

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
    return BACKENDS.get(str(name).lower()) == "postgres"


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
    query = f"?{urlencode(params)}" if params else ""
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
                self._is_built = True
                logger.debug("read the project queue's settings: %r", self)

    def _reset(self) -> None:
        """Forget the settings and the database connections; the next use reads the current settings."""
        with self._settings_lock:
            for name in _LAZY:
                self.__dict__.pop(name, None)
            self._storage = None
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
