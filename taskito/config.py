"""Resolve settings: explicit argument > environment variable > default.

The same ``TASKITO_*`` names are read from the environment, Django settings and
Flask config, so one table documents them all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import validation
from .exceptions import ConfigurationError, InvalidValueError
from .serializers import get_serializer
from .storage import engine_name


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise InvalidValueError(f"expected a boolean (true/false), got {validation.shown(value)}")


def _parse_optional_float(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in {"", "none"}):
        return None
    return float(value)


def _seconds(name: str, positive: bool = False) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        validation.seconds(name, value, positive=positive)
    return check


def _count(name: str, minimum: int = 0) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        validation.count(name, value, minimum=minimum)
    return check


def _workers(value: Any) -> None:
    validation.concurrency("workers", value, minimum=0)


def _async_concurrency(value: Any) -> None:
    validation.concurrency("async_concurrency", value)


def _db_path(value: Any) -> None:
    if "\x00" in str(value):  # no file name can hold it
        raise InvalidValueError(f"db_path must not contain a NUL character, got {validation.shown(value)}")


def _backend(value: Any) -> None:
    if engine_name(value) is None:
        raise ConfigurationError(f"unknown backend {value!r}: use 'sqlite' (default) or 'postgres'")


def _serializer(value: Any) -> None:
    if isinstance(value, str) and value not in ("json", "pickle"):
        raise ConfigurationError(f"unknown serializer {value!r}: use 'json' (default) or 'pickle'")


def _priority(value: Any) -> None:
    validation.priority("default_priority", value)


def _default_timeout(value: Any) -> None:
    validation.timeout("default_timeout", value)


def _no_check(value: Any) -> None:
    return None


def _same(value: Any) -> Any:
    return value


def _path(value: Any) -> str:
    return str(os.fspath(value))


def _thread_count(value: int) -> int:
    return value or os.cpu_count() or 1


@dataclass(frozen=True)
class Setting:
    env: str
    kwarg: str
    parse: Callable[[Any], Any]
    default: Any
    doc: str
    check: Callable[[Any], object] = _no_check  # raises InvalidValueError or ConfigurationError; returns nothing used
    attribute: str = ""  # the Queue attribute that holds it (default: the kwarg's name)
    finish: Callable[[Any], Any] = _same  # the resolved value as the Queue keeps it


SETTINGS: tuple[Setting, ...] = (
    Setting("TASKITO_DB_PATH", "db_path", str, ".taskito/taskito.db",
            "SQLite database file (parent directory is created)", _db_path, finish=_path),
    Setting("TASKITO_BACKEND", "backend", str, "sqlite", "`sqlite` or `postgres` (alias `postgresql`)", _backend),
    Setting("TASKITO_DB_URL", "db_url", str, None, "PostgreSQL URL; required for the postgres backend"),
    Setting("TASKITO_SCHEMA", "schema", str, "taskito", "PostgreSQL schema holding every taskito table",
            validation.schema),
    Setting("TASKITO_WORKERS", "workers", int, 0, "worker threads; 0 means os.cpu_count()",
            _workers, attribute="concurrency", finish=_thread_count),
    Setting("TASKITO_ASYNC_CONCURRENCY", "async_concurrency", int, 100,
            "coroutines (`async def` tasks) a worker process runs at once on its event loop", _async_concurrency),
    Setting("TASKITO_DEFAULT_RETRY", "default_retry", int, 3, "max_retries of tasks that do not set it",
            _count("default_retry")),
    Setting("TASKITO_DEFAULT_TIMEOUT", "default_timeout", float, 300.0,
            "hard timeout (s) of tasks that do not set it; more than 0", _default_timeout),
    Setting("TASKITO_DEFAULT_PRIORITY", "default_priority", int, 0, "priority of tasks that do not set it",
            _priority),
    Setting("TASKITO_RESULT_TTL", "result_ttl", _parse_optional_float, None,
            "purge completed, dead and cancelled jobs older than this (s)", _seconds("result_ttl")),
    Setting("TASKITO_DRAIN_TIMEOUT", "drain_timeout", float, 30.0, "seconds a stopping worker waits for running jobs",
            _seconds("drain_timeout")),
    Setting("TASKITO_CANCEL_GRACE", "cancel_grace", float, 10.0,
            "seconds a cancelled job under --pool prefork gets to stop before its process is killed",
            _seconds("cancel_grace")),
    Setting("TASKITO_POOL_SIZE", "pool_size", int, None, "database connections (SQLite 8, Postgres 10)",
            _count("pool_size", minimum=1)),
    Setting("TASKITO_LEASE_SECONDS", "lease_seconds", float, 30.0,
            "a job whose worker stops heart-beating returns to the queue after this long (s)",
            _seconds("lease_seconds", positive=True)),
    Setting("TASKITO_SERIALIZER", "serializer", str, "json", "`json`, or `pickle` for trusted deployments",
            _serializer, finish=get_serializer),
    Setting("TASKITO_EAGER", "eager", _parse_bool, False, "run tasks inline at enqueue time (tests, scripts)"),
    Setting("TASKITO_MAX_LOG_LINES", "max_log_lines", int, 1000,
            "lines `current_job.log()` keeps per job; later ones are dropped (0: none kept)",
            _count("max_log_lines")),
    Setting("TASKITO_METRICS_RETENTION", "metrics_retention", float, 604800.0,
            "seconds of per-task metrics (task_stats, charts) kept, 7 days; they survive purges of jobs",
            _seconds("metrics_retention", positive=True)),
)

# Read by the dashboard (``create_app``), not by Queue: queue_kwargs_from() leaves them out.
DASHBOARD_SETTINGS: tuple[Setting, ...] = (
    Setting("TASKITO_DASHBOARD_SESSION_TTL", "session_ttl", float, 43200.0,
            "seconds a dashboard sign-in lasts (12 h); signing out or a new token ends it sooner",
            _seconds("session_ttl", positive=True)),
)

SETTINGS_BY_KWARG = {setting.kwarg: setting for setting in SETTINGS + DASHBOARD_SETTINGS}


def _from_source(setting: Setting, raw: Any, where: str) -> Any:
    """Parse and check a value read from the environment or a settings object, naming it on error."""
    try:
        value = setting.parse(raw)
        setting.check(value)
    except (ValueError, TypeError, OverflowError, ConfigurationError) as exc:  # int(inf): OverflowError
        raise ConfigurationError(f"invalid {where}={validation.shown(raw)}: {exc}") from None
    return value


def resolve(kwarg: str, explicit: Any, env: Mapping[str, str] | None = None) -> Any:
    """Return the explicit value if given, else the environment's, else the default.

    A bad explicit value raises the check's own error; a bad environment value raises
    ConfigurationError naming the variable.
    """
    setting = SETTINGS_BY_KWARG[kwarg]
    if explicit is not None:
        if isinstance(explicit, str) and setting.parse is not str:
            try:  # Queue(eager="false") means False, as the variable would
                explicit = setting.parse(explicit)
            except ValueError as exc:
                raise InvalidValueError(f"invalid {kwarg}={validation.shown(explicit)}: {exc}") from None
        setting.check(explicit)
        return explicit
    environ = os.environ if env is None else env
    raw = environ.get(setting.env)
    if raw is None or raw == "":
        return setting.default
    return _from_source(setting, raw, setting.env)


def queue_settings(explicit: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting of a Queue, resolved once from the one table: by attribute name, as the Queue keeps it."""
    return {setting.attribute or setting.kwarg: setting.finish(resolve(setting.kwarg, explicit.get(setting.kwarg)))
            for setting in SETTINGS}


QUEUE_ATTRIBUTES = frozenset(setting.attribute or setting.kwarg for setting in SETTINGS)


def queue_kwargs_from(mapping: Mapping[str, Any] | Any) -> dict[str, Any]:
    """Read the ``TASKITO_*`` keys of a Django settings object or a Flask config into Queue kwargs."""
    kwargs: dict[str, Any] = {}
    for setting in SETTINGS:
        if isinstance(mapping, Mapping):
            value = mapping.get(setting.env)
        else:
            value = getattr(mapping, setting.env, None)
        if value is None:
            continue
        kwargs[setting.kwarg] = _from_source(setting, value, setting.env)
    return kwargs
