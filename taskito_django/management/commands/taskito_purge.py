"""``manage.py taskito_purge``: delete old finished jobs (``taskito purge``)."""

from __future__ import annotations

from typing import Any

from taskito.cli import PURGE_HELP, purge_jobs, purge_options

from ...project import queue
from ..base import TaskitoCommand, add_click_options


class Command(TaskitoCommand):
    help = PURGE_HELP

    def add_arguments(self, parser: Any) -> None:
        add_click_options(parser, purge_options)

    def handle(self, *args: Any, **options: Any) -> None:
        with self.cli_output():
            purge_jobs(queue, options["completed_older_than"], options["dead_older_than"],
                       options["cancelled_older_than"])
