"""``manage.py taskito_dashboard``: serve the taskito web dashboard alone (``taskito dashboard``'s flags).

To serve it inside the project instead (staff only), see ``/admin/taskito/dashboard/`` or
``taskito_django.urls``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from ...project import queue
from ..base import TaskitoCommand, add_click_options


def _dashboard_cli() -> Any:
    """taskito.cli's dashboard pieces, or None on a taskito without the dashboard."""
    try:
        from taskito import cli

        return cli if hasattr(cli, "dashboard_options") and hasattr(cli, "run_dashboard") else None
    except ImportError:
        return None


class Command(TaskitoCommand):
    help = "Serve the web dashboard and its JSON API (default http://127.0.0.1:8080/)."

    def add_arguments(self, parser: Any) -> None:
        cli = _dashboard_cli()
        if cli is not None:
            add_click_options(parser, cli.dashboard_options)

    def handle(self, *args: Any, **options: Any) -> None:
        cli = _dashboard_cli()
        if cli is None:
            raise CommandError("this taskito installation has no web dashboard (taskito.dashboard); "
                               "upgrade taskito to serve it")
        cli.configure_logging(options["loglevel"])
        with self.cli_output():
            cli.run_dashboard(queue, options["host"], options["port"], options["token"], options["read_only"])
