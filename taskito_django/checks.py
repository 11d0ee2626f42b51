"""System checks (``manage.py check``) for the TASKITO_* settings: bad values fail before a worker starts."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from taskito import config
from taskito.exceptions import ConfigurationError
from taskito.storage import engine_name

from .project import database_is_postgres, is_postgres_backend, queue_database_problem


@register("taskito")
def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for setting in config.SETTINGS:
        if setting.env == "TASKITO_BACKEND":  # the backend has its own check, E002
            continue
        value = getattr(settings, setting.env, None)
        if value is not None:
            try:
                config.queue_kwargs_from({setting.env: value})
            except ConfigurationError as exc:
                messages.append(Error(str(exc), hint="Fix the value of this TASKITO_* setting.", id="taskito.E004"))
            continue
        try:  # not in settings: the queue reads the environment, so a bad variable would fail it too
            config.resolve(setting.kwarg, None)
        except ConfigurationError as exc:
            messages.append(Error(
                f"{exc} (from the environment; settings has no {setting.env})",
                hint=f"Fix or unset the environment variable {setting.env}, or set {setting.env} in settings, "
                     "which takes precedence.", id="taskito.E004",
            ))

    backend = getattr(settings, "TASKITO_BACKEND", None) or os.environ.get("TASKITO_BACKEND") or "sqlite"
    if engine_name(backend) is None:
        messages.append(Error(
            f"TASKITO_BACKEND is {backend!r}, which is not a taskito backend",
            hint="Use 'sqlite' (the default) or 'postgres'.", id="taskito.E002",
        ))

    db_path = getattr(settings, "TASKITO_DB_PATH", None)
    if db_path is not None and not Path(os.fspath(db_path)).expanduser().is_absolute():
        messages.append(Error(
            f"TASKITO_DB_PATH is the relative path {str(db_path)!r}: the web server and the workers would each "
            "resolve it against their own working directory and use different databases",
            hint="Use an absolute path, e.g. TASKITO_DB_PATH = BASE_DIR / '.taskito' / 'taskito.db'.",
            id="taskito.E001",
        ))
    elif (db_path is None and not os.environ.get("TASKITO_DB_PATH") and not getattr(settings, "BASE_DIR", None)
          and not is_postgres_backend(backend)):
        messages.append(Warning(
            "TASKITO_DB_PATH is not set and settings has no BASE_DIR, so the queue database is "
            "'.taskito/taskito.db' relative to each process's working directory",
            hint="Set TASKITO_DB_PATH to an absolute path.", id="taskito.W001",
        ))

    if is_postgres_backend(backend):
        has_url = getattr(settings, "TASKITO_DB_URL", None) or os.environ.get("TASKITO_DB_URL")
        if not has_url and not database_is_postgres("default"):
            engine = settings.DATABASES.get("default", {}).get("ENGINE")
            messages.append(Error(
                f"TASKITO_BACKEND is 'postgres' but TASKITO_DB_URL is not set and the default database "
                f"({engine!r}) is not PostgreSQL, so there is no database to put the queue in",
                hint="Set TASKITO_DB_URL = 'postgresql://user:password@host:5432/dbname', or use the "
                     "sqlite backend.", id="taskito.E003",
            ))
        missing = [name for name in ("psycopg", "psycopg_pool") if importlib.util.find_spec(name) is None]
        if missing:
            messages.append(Error(
                f"TASKITO_BACKEND is 'postgres' but {' and '.join(missing)} is not installed",
                hint="pip install 'taskito[postgres]'", id="taskito.E007",
            ))

    messages.extend(_transaction_checks(is_postgres_backend(backend)))

    module = getattr(settings, "TASKITO_AUTODISCOVER_MODULE", "tasks")
    if module is not None and not isinstance(module, str):
        messages.append(Error(
            f"TASKITO_AUTODISCOVER_MODULE is {module!r}",
            hint="Use the name of the module to import from every app (default 'tasks'), or None to turn "
                 "autodiscovery off.", id="taskito.E005",
        ))

    per_page = getattr(settings, "TASKITO_ADMIN_PER_PAGE", 50)
    if isinstance(per_page, bool) or not isinstance(per_page, int) or per_page < 1:
        messages.append(Error(
            f"TASKITO_ADMIN_PER_PAGE is {per_page!r}",
            hint="Use a whole number of jobs per admin page, 1 or more (default 50).", id="taskito.E006",
        ))
    return messages


def _transaction_checks(on_postgres: bool) -> list[CheckMessage]:
    """Whether jobs enqueued inside atomic() can join Django's transaction (TASKITO_TRANSACTIONAL)."""
    value = getattr(settings, "TASKITO_TRANSACTIONAL", None)
    if value is not None and not isinstance(value, bool):
        return [Error(f"TASKITO_TRANSACTIONAL is {value!r}",
                      hint="Use True or False (unset: True when the queue is in the default database).",
                      id="taskito.E008")]
    try:
        problem = queue_database_problem()
    except (ConfigurationError, ImportError):  # a bad setting or a missing driver: reported above
        return []
    if problem is None or value is False:
        return []
    if value is True:
        return [Warning(
            f"TASKITO_TRANSACTIONAL is True but the queue does not look like it is in the default database: {problem}",
            hint="If it is another database, every enqueue inside atomic() raises ConfigurationError: set "
                 "TASKITO_TRANSACTIONAL = False and use delay_on_commit() for jobs that need the transaction's data.",
            id="taskito.W003")]
    if not on_postgres:
        return []
    return [Warning(
        f"the queue is on PostgreSQL in another database than 'default' ({problem}), so a job enqueued inside "
        "transaction.atomic() cannot be part of Django's transaction: it is stored at once, and stays if the "
        "transaction rolls back",
        hint="Use delay_on_commit() / apply_async_on_commit() (ENQUEUE_ON_COMMIT for the Django Tasks backend) for "
             "jobs that need the transaction's data. If it is the default database after all, set "
             "TASKITO_TRANSACTIONAL = True.",
        id="taskito.W002")]
