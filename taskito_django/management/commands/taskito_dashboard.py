"""``manage.py taskito_dashboard``: serve the taskito web dashboard alone (``taskito dashboard``'s flags).

The token comes from ``--token``, else the ``TASKITO_DASHBOARD_TOKEN`` setting, else the
environment (``add_click_options`` gives the flag that default). To serve the dashboard inside
the project instead (Django's staff login), see ``/admin/taskito/dashboard/`` or ``taskito_django.urls``.
"""

from __future__ import annotations

from typing import Any

from taskito import cli

from ...project import queue
from ..base import TaskitoCommand, add_click_options


class Command(TaskitoCommand):
    help = "Serve the web dashboard and its JSON API (default http://127.0.0.1:8080/)."

    def add_arguments(self, parser: Any) -> None:
        add_click_options(parser, cli.dashboard_options)

    def handle(self, *args: Any, **options: Any) -> None:
        cli.configure_logging(options["loglevel"], options["log_format"])
        with self.cli_output():
            cli.run_dashboard(queue, options["host"], options["port"], options["token"], options["read_only"])
