"""``manage.py taskito_worker``: run a worker for the project queue (``taskito worker``'s flags).

Django's system checks run first (a bad TASKITO_* setting stops it before any job is
claimed), and stale database connections are closed before and after every task.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections

from taskito.cli import (
    configure_logging,
    run_worker,
    wait_for_database,
    wait_for_db_option,
    worker_options,
    worker_process,
)

from ...project import queue
from ..base import TaskitoCommand, add_click_options


@contextmanager
def django_db_connections() -> Iterator[None]:
    """Entered around every task: drop connections past CONN_MAX_AGE or broken, as a request would."""
    close_old_connections()
    try:
        yield
    finally:
        close_old_connections()


def tasks_backend_queues() -> list[str]:
    """Queues of the TASKS backends that run on taskito (Django tasks may use queues no taskito task names)."""
    names: list[str] = []
    for params in (getattr(settings, "TASKS", None) or {}).values():
        if str(params.get("BACKEND", "")).endswith("taskito_django.backends.TaskitoBackend"):
            names.extend(params.get("QUEUES") or ["default"])
    return names




class Command(TaskitoCommand):
    help = "Run a worker until SIGINT/SIGTERM (drains running jobs, then exits 0)."

    def add_arguments(self, parser: Any) -> None:
        add_click_options(parser, worker_options)
        add_click_options(parser, wait_for_db_option)

    def handle(self, *args: Any, queues: str | None, concurrency: int | None, pool: str,
               drain_timeout: float | None, burst: bool, loglevel: str, wait_for_db: bool,
               async_concurrency: int | None = None, **options: Any) -> None:
        configure_logging(loglevel)
        with self.cli_output(), worker_process():
            if wait_for_db:
                wait_for_database(queue.connect)
            else:
                queue.connect()
            if pool == "prefork":
                connections.close_all()  # forked children must not share the parent's database sessions
            if django_db_connections not in queue.task_contexts:
                queue.task_contexts.append(django_db_connections)
            if not queues:
                queues = ",".join(sorted(set(queue.default_queues()) | set(tasks_backend_queues())))
            run_worker(queue, queues=queues, concurrency=concurrency, pool=pool, drain_timeout=drain_timeout,
                       burst=burst, async_concurrency=async_concurrency)
