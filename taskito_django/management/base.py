"""Shared plumbing of the ``taskito_*`` management commands: the CLI's flags and output, Django-style.

The flags are read from the click options of ``taskito.cli`` so that ``manage.py taskito_worker``
and ``taskito worker`` can never drift apart; a flag that click reads from a ``TASKITO_*`` variable
defaults to the Django setting of that name, else the variable. The output is the CLI's, written to
the command's stdout (so ``call_command(..., stdout=buffer)`` captures it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import click
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from taskito.exceptions import TaskitoError

_PLAIN = (str, int, float, bool, type(None))


def add_click_options(parser: argparse.ArgumentParser, decorator: Callable[[Callable[..., Any]], Any]) -> None:
    """Add to ``parser`` the options that the click ``decorator`` adds to a command."""
    command = click.command()(decorator(lambda **kwargs: None))
    ctx = click.Context(command)
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        help_text = param.help or ""
        if param.is_flag and param.secondary_opts:  # --flag/--no-flag
            parser.add_argument(*param.opts, dest=param.name, action="store_true", default=param.default,
                                help=f"{help_text} (default: {'on' if param.default else 'off'})")
            parser.add_argument(*param.secondary_opts, dest=param.name, action="store_false")
            continue
        if param.is_flag:
            parser.add_argument(*param.opts, dest=param.name, action="store_true", help=help_text)
            continue
        default = param.get_default(ctx)
        if not isinstance(default, _PLAIN):  # click's "no default" sentinel
            default = None
        envvar = param.envvar if isinstance(param.envvar, str) else None
        if envvar:
            default = _setting_or_env(envvar, default)
        if isinstance(param.type, click.Choice):
            metavar = "{" + ",".join(map(str, param.type.choices)) + "}"
        else:
            metavar = param.metavar or (param.name or "value").upper()
        if default is not None and param.show_default:
            help_text = f"{help_text} (default: {default})".strip()
        parser.add_argument(*param.opts, dest=param.name, default=default, type=_converter(param),
                            metavar=metavar, help=help_text)


def _setting_or_env(name: str, default: Any) -> Any:
    """The Django setting ``name``, else the environment variable ``name``, else ``default``.

    A flag's value comes from the command line first; without it, a project's settings.py
    speaks for the project and so wins over a variable left in the shell (README: precedence).
    """
    value = getattr(settings, name, None)
    if value is None or value == "":
        value = os.environ.get(name) or None
    return default if value is None else value


def _converter(param: click.Option) -> Callable[[str], Any]:
    def convert(value: str) -> Any:
        try:
            return param.type.convert(value, param, None)
        except click.BadParameter as exc:
            raise argparse.ArgumentTypeError(exc.message) from None

    convert.__name__ = param.type.name  # argparse names the type in its error messages
    return convert


class _RawOutput:
    """The command's stdout as a plain text stream: click writes exactly what it means to."""

    def __init__(self, wrapper: Any) -> None:
        self._wrapper = wrapper

    def write(self, text: str) -> int:
        self._wrapper.write(text, ending="")
        return len(text)

    def flush(self) -> None:
        self._wrapper.flush()

    def isatty(self) -> bool:
        return bool(self._wrapper.isatty())


class TaskitoCommand(BaseCommand):
    """A command that prints what the ``taskito`` CLI prints and turns taskito errors into CommandError."""

    @contextlib.contextmanager
    def cli_output(self) -> Iterator[None]:
        try:
            with contextlib.redirect_stdout(_RawOutput(self.stdout)):
                yield
        except click.ClickException as exc:
            raise CommandError(exc.format_message()) from None
        except TaskitoError as exc:
            raise CommandError(str(exc)) from None
