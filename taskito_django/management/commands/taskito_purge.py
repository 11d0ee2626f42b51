"""``manage.py taskito_purge``: delete old completed jobs and dead letters (``taskito purge``)."""

from __future__ import annotations

from typing import Any

from taskito.cli import purge_jobs, purge_options

from ...project import queue
from ..base import TaskitoCommand, add_click_options


class Command(TaskitoCommand):
    help = "Delete old finished jobs (both kinds older than a day when no option is given)."

    def add_arguments(self, parser: Any) -> None:
        add_click_options(parser, purge_options)

    def handle(self, *args: Any, completed_older_than: float | None, dead_older_than: float | None,
               **options: Any) -> None:
        with self.cli_output():
            purge_jobs(queue, completed_older_than, dead_older_than)
