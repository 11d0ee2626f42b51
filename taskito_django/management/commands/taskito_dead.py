"""``manage.py taskito_dead list|retry ID|retry-all``: dead letters (``taskito dead``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from taskito.cli import dead_list_options, list_dead, retry_all_dead, retry_one_dead

from ...project import queue
from ..base import TaskitoCommand, add_click_options


class Command(TaskitoCommand):
    help = "List and replay dead letters."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", metavar="{list,retry,retry-all}", required=True)
        add_click_options(actions.add_parser("list", help="Show the newest dead letters with their last error."),
                          dead_list_options)
        retry = actions.add_parser("retry", help="Replay one dead letter as a new job.")
        retry.add_argument("job_id")
        actions.add_parser("retry-all", help="Replay every dead letter.")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        with self.cli_output():
            if action == "list":
                list_dead(queue, options["limit"], options["fmt"])
            elif action == "retry":
                retry_one_dead(queue, options["job_id"])
            else:
                retry_all_dead(queue)
