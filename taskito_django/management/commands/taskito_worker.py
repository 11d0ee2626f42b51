"""``manage.py taskito_worker``: run a worker for the project queue (``taskito worker``'s flags).

Django's system checks run first (a bad TASKITO_* setting stops it before any job is
claimed), and stale database connections are closed before and after every task.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
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


def tasks_backend_queues(alias: str | None = None) -> list[str]:
    """Queues of the TASKS backends that run on taskito, or of the one named ``alias``
    (Django tasks may use queues no taskito task names)."""
    backends = getattr(settings, "TASKS", None) or {}
    if alias is not None:
        if alias not in backends:
            raise CommandError(f"--backend {alias!r}: The connection {alias!r} doesn't exist (TASKS has "
                               f"{', '.join(map(repr, backends)) or 'no backend'}).")
        if not _is_taskito_backend(backends[alias]):
            raise CommandError(f"--backend {alias!r}: Backend {alias!r} is not a TaskitoBackend (it is "
                               f"{backends[alias].get('BACKEND')!r}): its tasks do not run on taskito workers.")
        backends = {alias: backends[alias]}
    names: list[str] = []
    for params in backends.values():
        if _is_taskito_backend(params):
            names.extend(params.get("QUEUES") or ["default"])
    return names


def _is_taskito_backend(params: dict[str, Any]) -> bool:
    return str(params.get("BACKEND", "")).endswith("taskito_django.backends.TaskitoBackend")


class Command(TaskitoCommand):
    help = "Run a worker until SIGINT/SIGTERM (drains running jobs, then exits 0)."

    def add_arguments(self, parser: Any) -> None:
        add_click_options(parser, worker_options)
        add_click_options(parser, wait_for_db_option)
        parser.add_argument("--backend", metavar="ALIAS",
                            help="Serve the queues of this TASKS backend (a TaskitoBackend) only, instead of every "
                                 "queue the project's tasks use.")

    def handle(self, *args: Any, queues: str | None, exclude_queues: str | None, concurrency: int | None, pool: str,
               drain_timeout: float | None, burst: bool, max_tasks: int | None, loglevel: str, wait_for_db: bool,
               backend: str | None, async_concurrency: int | None = None, cancel_grace: float | None = None,
               log_format: str = "text", **options: Any) -> None:
        configure_logging(loglevel, log_format)
        if backend is not None:
            queues = queues or ",".join(dict.fromkeys(tasks_backend_queues(backend)))
        with self.cli_output(), worker_process():
            if wait_for_db:
                wait_for_database(queue.connect)
            else:
                queue.connect()
            if pool == "prefork":
                connections.close_all()  # forked children must not share the parent's database sessions
            if not queues:
                queues = ",".join(sorted(set(queue.default_queues()) | set(tasks_backend_queues())))
            # Only while this command's worker runs: an eager task later in the same process (a test
            # calling the command, say) must not close the connection of a transaction it runs inside.
            queue.task_contexts.append(django_db_connections)
            try:
                run_worker(queue, queues=queues, exclude_queues=exclude_queues, concurrency=concurrency, pool=pool,
                           drain_timeout=drain_timeout, burst=burst, max_tasks=max_tasks,
                           async_concurrency=async_concurrency, cancel_grace=cancel_grace)
            finally:
                queue.task_contexts.remove(django_db_connections)
