"""Resolve settings: explicit argument > environment variable > default.

The same ``TASKITO_*`` names are read from the environment, Django settings and
Flask config, so one table documents them all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .exceptions import ConfigurationError


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


def _parse_optional_float(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in {"", "none"}):
        return None
    return float(value)


@dataclass(frozen=True)
class Setting:
    env: str
    kwarg: str
    parse: Callable[[Any], Any]
    default: Any
    doc: str


SETTINGS: tuple[Setting, ...] = (
    Setting("TASKITO_DB_PATH", "db_path", str, ".taskito/taskito.db",
            "SQLite database file (parent directory is created)"),
    Setting("TASKITO_BACKEND", "backend", str, "sqlite", "`sqlite` or `postgres` (alias `postgresql`)"),
    Setting("TASKITO_DB_URL", "db_url", str, None, "PostgreSQL URL; required for the postgres backend"),
    Setting("TASKITO_SCHEMA", "schema", str, "taskito", "PostgreSQL schema holding every taskito table"),
    Setting("TASKITO_WORKERS", "workers", int, 0, "worker threads; 0 means os.cpu_count()"),
    Setting("TASKITO_DEFAULT_RETRY", "default_retry", int, 3, "max_retries of tasks that do not set it"),
    Setting("TASKITO_DEFAULT_TIMEOUT", "default_timeout", float, 300.0, "hard timeout (s) of tasks that do not set it"),
    Setting("TASKITO_DEFAULT_PRIORITY", "default_priority", int, 0, "priority of tasks that do not set it"),
    Setting("TASKITO_RESULT_TTL", "result_ttl", _parse_optional_float, None,
            "purge completed and dead jobs older than this (s)"),
    Setting("TASKITO_DRAIN_TIMEOUT", "drain_timeout", float, 30.0, "seconds a stopping worker waits for running jobs"),
    Setting("TASKITO_POOL_SIZE", "pool_size", int, None, "database connections (SQLite 8, Postgres 10)"),
    Setting("TASKITO_LEASE_SECONDS", "lease_seconds", float, 30.0,
            "a job whose worker stops heart-beating returns to the queue after this long (s)"),
    Setting("TASKITO_SERIALIZER", "serializer", str, "json", "`json`, or `pickle` for trusted deployments"),
    Setting("TASKITO_EAGER", "eager", _parse_bool, False, "run tasks inline at enqueue time (tests, scripts)"),
)

SETTINGS_BY_KWARG = {setting.kwarg: setting for setting in SETTINGS}


def resolve(kwarg: str, explicit: Any, env: Mapping[str, str] | None = None) -> Any:
    """Return the explicit value if given, else the environment's, else the default."""
    setting = SETTINGS_BY_KWARG[kwarg]
    if explicit is not None:
        return explicit
    environ = os.environ if env is None else env
    raw = environ.get(setting.env)
    if raw is None or raw == "":
        return setting.default
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise ConfigurationError(f"invalid {setting.env}={raw!r}: {exc}") from None


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
        try:
            kwargs[setting.kwarg] = setting.parse(value)
        except ValueError as exc:
            raise ConfigurationError(f"invalid {setting.env}={value!r}: {exc}") from None
    return kwargs
