"""``flask taskito ...``: the taskito CLI's commands, run against the app's own queue."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click
from flask import current_app
from flask.cli import AppGroup

from taskito import cli
from taskito.exceptions import ConfigurationError

if TYPE_CHECKING:
    from .extension import Taskito


F = TypeVar("F", bound=Callable[..., Any])


def one_line_errors(command: F) -> F:
    """Report a bad setting or an unreachable database as ``taskito`` does: one line, exit status 2.

    The queue is built on the command's first use of it, so this is where such errors surface.
    """
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ConfigurationError as exc:
            raise cli.AppError(str(exc)) from None

    return cast(F, run)


def make_cli(extension: Taskito, name: str) -> AppGroup:
    """The ``flask <name> ...`` command group of ``extension``."""
    group = AppGroup(name, help="Run taskito workers and operate this app's queue.")

    @group.command()
    @cli.worker_options
    @cli.wait_for_db_option
    @one_line_errors
    def worker(loglevel: str, log_format: str, wait_for_db: bool, **options: Any) -> None:
        """Run a worker until SIGINT/SIGTERM (drains running jobs, then exits 0)."""
        cli.configure_logging(loglevel, log_format)
        build = functools.partial(extension.queue_for, current_app)
        with cli.worker_process():
            cli.run_worker(cli.wait_for_database(build) if wait_for_db else build(), **options)

    @group.command()
    @cli.info_options
    @one_line_errors
    def info(watch: bool, interval: float, fmt: str) -> None:
        """Show job counts per queue, paused queues and live workers."""
        cli.show_info(extension.queue, watch, interval, fmt)

    @group.command(help=cli.PURGE_HELP)
    @cli.purge_options
    @one_line_errors
    def purge(**ages: float | None) -> None:
        cli.purge_jobs(extension.queue, **ages)

    @group.command(help=cli.CHECK_HELP)
    @cli.check_options
    @one_line_errors
    def check(repair: bool) -> None:
        cli.check_counts(extension.queue, repair)

    @group.command()
    @click.argument("queue_name")
    @one_line_errors
    def pause(queue_name: str) -> None:
        """Stop workers from claiming QUEUE_NAME's jobs."""
        extension.queue.pause(queue_name)
        click.echo(f"paused {queue_name}")

    @group.command()
    @click.argument("queue_name")
    @one_line_errors
    def resume(queue_name: str) -> None:
        """Let workers claim QUEUE_NAME's jobs again."""
        extension.queue.resume(queue_name)
        click.echo(f"resumed {queue_name}")

    @group.group(cls=AppGroup)
    def dead() -> None:
        """List and replay dead letters."""

    @dead.command("list")
    @cli.dead_list_options
    @one_line_errors
    def dead_list(limit: int, fmt: str) -> None:
        """Show the newest dead letters with their last error."""
        cli.list_dead(extension.queue, limit, fmt)

    @dead.command("retry")
    @click.argument("job_id")
    @one_line_errors
    def dead_retry(job_id: str) -> None:
        """Replay one dead letter as a new job."""
        cli.retry_one_dead(extension.queue, job_id)

    @dead.command("retry-all")
    @one_line_errors
    def dead_retry_all() -> None:
        """Replay every dead letter."""
        cli.retry_all_dead(extension.queue)

    @group.group(cls=AppGroup)
    def periodic() -> None:
        """List, pause, resume and run periodic schedules."""

    @periodic.command("list")
    @cli.periodic_list_options
    @one_line_errors
    def periodic_list(fmt: str) -> None:
        """Every schedule, with its last and next run and whether it is paused."""
        cli.list_schedules(extension.queue, fmt)

    @periodic.command("pause")
    @click.argument("name")
    @one_line_errors
    def periodic_pause(name: str) -> None:
        """Stop firing schedule NAME on every worker (kept across restarts and deploys)."""
        cli.schedule_action(extension.queue, "pause", name)

    @periodic.command("resume")
    @click.argument("name")
    @one_line_errors
    def periodic_resume(name: str) -> None:
        """Fire schedule NAME again from its next tick."""
        cli.schedule_action(extension.queue, "resume", name)

    @periodic.command("run")
    @click.argument("name")
    @one_line_errors
    def periodic_run(name: str) -> None:
        """Enqueue one job of schedule NAME now."""
        cli.schedule_action(extension.queue, "run", name)

    return group
