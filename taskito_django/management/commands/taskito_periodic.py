"""``manage.py taskito_periodic list|pause NAME|resume NAME|run NAME``: schedules (``taskito periodic``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from taskito.cli import list_schedules, periodic_list_options, schedule_action

from ...project import queue
from ..base import TaskitoCommand, add_click_options


class Command(TaskitoCommand):
    help = "List, pause, resume and run periodic schedules."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", metavar="{list,pause,resume,run}", required=True)
        add_click_options(actions.add_parser("list", help="Every schedule, its last and next run, paused or not."),
                          periodic_list_options)
        for action, text in (("pause", "Stop firing a schedule on every worker (kept across restarts)."),
                             ("resume", "Fire a schedule again from its next tick."),
                             ("run", "Enqueue one job of a schedule now.")):
            actions.add_parser(action, help=text).add_argument("name")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        with self.cli_output():
            if action == "list":
                list_schedules(queue, options["fmt"])
            else:
                schedule_action(queue, action, options["name"])
