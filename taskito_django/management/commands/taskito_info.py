"""``manage.py taskito_info``: job counts per queue, paused queues and live workers (``taskito info``)."""

from __future__ import annotations

from typing import Any

from taskito.cli import info_options, show_info

from ...project import queue
from ..base import TaskitoCommand, add_click_options


class Command(TaskitoCommand):
    help = "Show job counts per queue, paused queues and live workers."

    def add_arguments(self, parser: Any) -> None:
        add_click_options(parser, info_options)

    def handle(self, *args: Any, watch: bool, interval: float, fmt: str, **options: Any) -> None:
        with self.cli_output():
            show_info(queue, watch, interval, fmt)
