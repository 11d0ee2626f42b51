"""``flask taskito ...``: the taskito CLI's commands, run against the app's own queue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from flask.cli import AppGroup

from taskito import cli

if TYPE_CHECKING:
    from .extension import Taskito


def make_cli(extension: Taskito, name: str) -> AppGroup:
    group = AppGroup(name, help="Run taskito workers and operate this app's queue.")

    @group.command()
    @cli.worker_options
    def worker(loglevel: str, **options: Any) -> None:
        """Run a worker until SIGINT/SIGTERM (drains running jobs, then exits 0)."""
        cli.configure_logging(loglevel)
        cli.run_worker(extension.queue, **options)

    @group.command()
    @cli.info_options
    def info(watch: bool, interval: float, fmt: str) -> None:
        """Show job counts per queue, paused queues and live workers."""
        cli.show_info(extension.queue, watch, interval, fmt)

    @group.command()
    @cli.purge_options
    def purge(completed_older_than: float | None, dead_older_than: float | None) -> None:
        """Delete old finished jobs (both kinds older than a day when no option is given)."""
        cli.purge_jobs(extension.queue, completed_older_than, dead_older_than)

    @group.command()
    @click.argument("queue_name")
    def pause(queue_name: str) -> None:
        """Stop workers from claiming QUEUE_NAME's jobs."""
        extension.queue.pause(queue_name)
        click.echo(f"paused {queue_name}")

    @group.command()
    @click.argument("queue_name")
    def resume(queue_name: str) -> None:
        """Let workers claim QUEUE_NAME's jobs again."""
        extension.queue.resume(queue_name)
        click.echo(f"resumed {queue_name}")

    @group.group(cls=AppGroup)
    def dead() -> None:
        """List and replay dead letters."""

    @dead.command("list")
    @cli.dead_list_options
    def dead_list(limit: int, fmt: str) -> None:
        """Show the newest dead letters with their last error."""
        cli.list_dead(extension.queue, limit, fmt)

    @dead.command("retry")
    @click.argument("job_id")
    def dead_retry(job_id: str) -> None:
        """Replay one dead letter as a new job."""
        cli.retry_one_dead(extension.queue, job_id)

    @dead.command("retry-all")
    def dead_retry_all() -> None:
        """Replay every dead letter."""
        cli.retry_all_dead(extension.queue)

    return group
