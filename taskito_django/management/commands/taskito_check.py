"""``manage.py taskito_check [--repair]``: compare the counters with a recount (``taskito check``)."""

from __future__ import annotations

from typing import Any

from taskito.cli import CHECK_HELP, check_counts, check_options

from ...project import queue
from ..base import TaskitoCommand, add_click_options


class Command(TaskitoCommand):
    help = CHECK_HELP

    def add_arguments(self, parser: Any) -> None:
        add_click_options(parser, check_options)

    def handle(self, *args: Any, repair: bool, **options: Any) -> None:
        with self.cli_output():
            check_counts(queue, repair)
