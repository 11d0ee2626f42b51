"""The project's one queue: built lazily from ``TASKITO_*`` settings, shared by user code, admin and commands.

Tasks, periodic schedules, hooks and task contexts are kept in a registry that
outlives any one Queue object, for two reasons: defining tasks (at import time,
during ``AppConfig.ready``) must never open the database, and a settings change
(``override_settings`` in tests) rebuilds the queue without losing the tasks.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings
from django.utils.functional import LazyObject, empty

from taskito import config
from taskito.config import BACKENDS
from taskito.exceptions import ConfigurationError
from taskito.queue import PeriodicSpec, Queue, add_schedule
from taskito.schedule import validate_schedule
from taskito.task import TaskWrapper

from .wrapper import DjangoTaskWrapper

logger = logging.getLogger("taskito.django")

Hook = Callable[..., Any]

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
    backend = BACKENDS.get(str(kwargs.get("backend") or config.resolve("backend", None)).lower())
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
    return host, port, params.get("dbname") or os.environ.get("PGDATABASE") or params.get("user") or ""


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


class TaskRegistry:
    """What a Queue knows about tasks, kept apart from any one Queue object."""

    def __init__(self) -> None:
        self.tasks: dict[str, TaskWrapper] = {}
        self.periodic_tasks: list[PeriodicSpec] = []
        self.hooks: dict[str, list[Hook]] = {"before_task": [], "after_task": [], "on_success": [], "on_failure": []}
        self.task_contexts: list[Callable[[], AbstractContextManager[Any]]] = []

    def attach(self, queue: Queue) -> Queue:
        """Make ``queue`` share this registry (so tasks survive a rebuild)."""
        queue.tasks = self.tasks
        queue.periodic_tasks = self.periodic_tasks
        queue.hooks = self.hooks
        queue.task_contexts = self.task_contexts
        return queue


registry = TaskRegistry()


def _task_defaults() -> dict[str, Any]:
    """Default priority, retries and timeout from settings, without building the queue."""
    try:
        kwargs = config.queue_kwargs_from(settings)
        return {name: config.resolve(name, kwargs.get(name))
                for name in ("default_priority", "default_retry", "default_timeout")}
    except ConfigurationError:  # reported by the system checks and by the first use of the queue
        return {name: config.SETTINGS_BY_KWARG[name].default
                for name in ("default_priority", "default_retry", "default_timeout")}


class ProjectQueue(LazyObject):
    """``taskito_django.queue``: the project's Queue, built on first use from settings.

    ``isinstance(queue, taskito.Queue)`` holds and every Queue method works. Defining
    tasks does not build it, and a change to a ``TASKITO_*`` setting (``override_settings``)
    rebuilds it on next use with the same tasks.
    """

    _lock = threading.RLock()

    def _setup(self) -> None:
        with self._lock:
            if self._wrapped is empty:
                built = Queue(**queue_kwargs())
                if transactional():
                    built.transaction_connection = transaction_connection
                logger.debug("built the project queue %r", built)
                self._wrapped = registry.attach(built)

    def _reset(self) -> None:
        """Forget the built queue; the next use builds it again from the current settings."""
        with self._lock:
            self._wrapped = empty

    # isinstance(queue, Queue) holds without building it (what it wraps is always a Queue).
    __class__ = property(lambda self: Queue)  # type: ignore[assignment]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or (name.startswith("_") and not any(name in cls.__dict__ for cls in Queue.__mro__)):
            # Introspection (pytest's collection, mock, copy, issubclass...) must not open the database.
            raise AttributeError(name)
        return LazyObject.__getattr__(self, name)  # type: ignore[operator]

    @property
    def _is_built(self) -> bool:
        return self._wrapped is not empty

    def __repr__(self) -> str:
        return f"<taskito_django.queue: {self._wrapped!r}>" if self._is_built else "<taskito_django.queue (not built)>"

    # -- defining tasks: never builds the queue --------------------------------------------
    def task(self, name: str | None = None, **options: Any) -> Callable[[Callable[..., Any]], DjangoTaskWrapper]:
        """Register a task, with ``Queue.task``'s options; it also gets ``delay_on_commit``.

        The options are checked and completed by ``Queue.task`` itself, run against a stand-in
        that holds the defaults from settings instead of a database.
        """
        stand_in = SimpleNamespace(tasks={}, **_task_defaults())
        register = Queue.task(stand_in, name, **options)  # type: ignore[arg-type]

        def decorator(fn: Callable[..., Any]) -> DjangoTaskWrapper:
            core = register(fn)
            wrapper = DjangoTaskWrapper(self, fn, core.options)  # type: ignore[arg-type]  # the proxy is a Queue
            registry.tasks[core.options.name] = wrapper
            return wrapper

        return decorator

    def periodic(self, cron: str, name: str | None = None, args: Sequence[Any] = (),
                 kwargs: dict[str, Any] | None = None, queue: str = "default",
                 timezone: str | None = None) -> Callable[[Callable[..., Any]], TaskWrapper]:
        """Register a task that workers enqueue on a cron schedule (see ``Queue.periodic``)."""
        validate_schedule(cron, timezone)

        def decorator(fn: Callable[..., Any]) -> TaskWrapper:
            wrapper = fn if isinstance(fn, TaskWrapper) else self.task(name=name, queue=queue)(fn)
            add_schedule(registry.periodic_tasks, fn, wrapper, name, cron, args, kwargs, queue, timezone)
            return wrapper

        return decorator

    def _hook(self, kind: str, fn: Hook) -> Hook:
        registry.hooks[kind].append(fn)
        return fn

    def before_task(self, fn: Hook) -> Hook:
        return self._hook("before_task", fn)

    def after_task(self, fn: Hook) -> Hook:
        return self._hook("after_task", fn)

    def on_success(self, fn: Hook) -> Hook:
        return self._hook("on_success", fn)

    def on_failure(self, fn: Hook) -> Hook:
        return self._hook("on_failure", fn)

    @property
    def tasks(self) -> dict[str, TaskWrapper]:
        return registry.tasks

    @property
    def task_contexts(self) -> list[Callable[[], AbstractContextManager[Any]]]:
        return registry.task_contexts


queue: Queue = ProjectQueue()  # type: ignore[assignment]


def reset_on_setting_change(*, setting: str, **_: Any) -> None:
    """``setting_changed`` receiver: a TASKITO_* or DATABASES change rebuilds the queue on next use."""
    if setting.startswith("TASKITO_") or setting in ("DATABASES", "BASE_DIR"):
        queue._reset()  # type: ignore[attr-defined]
