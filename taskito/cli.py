"""The ``taskito`` command: run workers, inspect and operate a queue from the shell."""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import click

from . import logformat, validation
from .exceptions import DatabaseUnavailableError, InvalidValueError, TaskitoError
from .execution import describe
from .logformat import LOG_FORMATS
from .queue import Queue
from .worker.signals import StartupInterrupted, StopSignals


class AppError(click.ClickException):
    """A bad --app or an unusable database: one line on stderr, exit status 2."""

    exit_code = 2


def load_queue(spec: str) -> Queue:
    """Import ``module:attribute`` and return the Queue it names, its database opened."""
    if ":" not in spec:
        raise AppError(f"--app {spec!r} must look like 'module:attribute', e.g. 'myapp.tasks:queue'")
    module_name, _, attribute = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise AppError(f"--app {spec!r}: no module named {exc.name!r} (run from your project directory "
                           "or set PYTHONPATH)") from None
        raise AppError(f"--app {spec!r}: importing {module_name!r} failed: {exc}") from None
    except TaskitoError as exc:
        raise AppError(f"--app {spec!r}: {exc}") from None
    except SystemExit as exc:
        raise AppError(f"--app {spec!r}: importing {module_name!r} called sys.exit({exc.code!r}); a module "
                       "taskito imports must not exit: put that code under `if __name__ == \"__main__\":`") from None
    except (KeyboardInterrupt, StartupInterrupted):
        raise  # a stop request, not a bad --app
    except BaseException as exc:
        raise AppError(f"--app {spec!r}: importing {module_name!r} failed: {describe(exc)}") from None
    try:
        queue = getattr(module, attribute)
    except AttributeError:
        raise AppError(f"--app {spec!r}: module {module_name!r} has no attribute {attribute!r}") from None
    if not isinstance(queue, Queue):
        raise AppError(f"--app {spec!r}: {attribute!r} is a {type(queue).__name__}, not a taskito.Queue")
    try:
        return queue.connect()  # every command needs the database: an unusable one is one line, not a traceback
    except TaskitoError as exc:
        raise AppError(f"--app {spec!r}: {exc}") from None


def app_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--app", "app", required=True, envvar="TASKITO_APP", metavar="MODULE:QUEUE",
                        help="Where your Queue lives, e.g. myapp.tasks:queue (env TASKITO_APP).")(fn)


def _split(value: str | None) -> list[str] | None:
    return [name.strip() for name in value.split(",") if name.strip()] if value else None


class Checked(click.ParamType):
    """A flag value parsed, then checked by taskito's own validation (click's FloatRange lets NaN and
    infinity through), so a bad value is a usage error naming the flag, exit status 2."""

    def __init__(self, name: str, parse: Callable[[str], Any], check: Callable[[str, Any], Any]) -> None:
        self.name = name
        self._parse = parse
        self._check = check

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            try:
                value = self._parse(value)
            except ValueError:
                self.fail(f"{value!r} is not {'a whole number' if self._parse is int else 'a number'}", param, ctx)
        try:
            return self._check(param.name if param and param.name else self.name, value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


SECONDS = Checked("seconds", float, validation.seconds)
CONCURRENCY = Checked("count", int, validation.concurrency)
LIMIT = Checked("count", int, lambda name, value: validation.count(name, value, minimum=1))
QUEUE_NAME = Checked("name", str, validation.name)


def _interval(name: str, value: Any) -> float | None:
    seconds = validation.seconds(name, value)
    if seconds is not None and seconds < 0.1:
        raise InvalidValueError(f"{name} must be at least 0.1 (seconds), got {value}")
    return seconds


def _queue_names(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    for name in _split(value) or ():
        problem = validation.name_problem(name)
        if problem:
            raise click.BadParameter(f"queue {problem}, got {validation.shown(name)}", ctx, param)
    return value


LOG_FORMAT_OPTION = click.option(
    "--log-format", type=click.Choice(LOG_FORMATS), default="text", show_default=True, envvar="TASKITO_LOG_FORMAT",
    help="text, or json: one JSON object per log line (time, level, logger, message, and job_id and task_name "
         "inside a job) for log shippers.")


def _log_format_chosen(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """--log-format of a command without --loglevel: its warnings and errors in that format."""
    if value is not None and value != "text":
        configure_logging("WARNING", value)


class LoggedGroup(click.Group):
    """A group whose every command takes --log-format (the worker's and dashboard's with their --loglevel);
    its subgroups are LoggedGroups too."""

    group_class = type  # click: the subgroups made by @group.group() are of this group's class

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not isinstance(cmd, click.Group) and not any(param.name == "log_format" for param in cmd.params):
            cmd.params.append(click.Option(["--log-format"], type=click.Choice(LOG_FORMATS), default=None,
                                           envvar="TASKITO_LOG_FORMAT", expose_value=False, is_eager=True,
                                           callback=_log_format_chosen,
                                           help="text (default), or json: one JSON object per log line."))
        super().add_command(cmd, name)


@click.group(cls=LoggedGroup)
@click.version_option(package_name="taskito")
def main() -> None:
    """taskito: a task queue that needs no broker."""


def worker_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The worker's flags, shared by ``taskito worker`` and the framework commands."""
    for option in reversed([
        click.option("--queues", callback=_queue_names,
                     help="Comma-separated queues to serve (default: every queue the tasks use)."),
        click.option("--exclude-queues", callback=_queue_names,
                     help="Comma-separated queues not to serve (taken out of --queues or of the default)."),
        click.option("--concurrency", type=CONCURRENCY, help="Worker threads (default: workers= / CPUs)."),
        click.option("--async-concurrency", type=CONCURRENCY,
                     help="async def tasks run at once on the worker's event loop (default: async_concurrency= / "
                          "TASKITO_ASYNC_CONCURRENCY / 100)."),
        click.option("--pool", type=click.Choice(["thread", "prefork"]), default="thread", show_default=True,
                     help="thread: jobs share the worker process; prefork: each runs in a child process "
                          "(CPU-bound tasks, hard timeouts that really stop the job)."),
        click.option("--drain-timeout", type=SECONDS,
                     help="Seconds to let running jobs finish on stop."),
        click.option("--cancel-grace", type=SECONDS,
                     help="Seconds a cancelled job under --pool prefork gets to stop before its process is killed "
                          "(default: cancel_grace= / TASKITO_CANCEL_GRACE / 10)."),
        click.option("--burst", is_flag=True, help="Run the jobs that are due, then exit (cron, CI)."),
        click.option("--max-tasks", type=LIMIT,
                     help="Stop after running this many jobs (a fresh process takes over: e.g. to bound memory)."),
        click.option("--loglevel", default="INFO", show_default=True,
                     type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False)),
        LOG_FORMAT_OPTION,
    ]):
        fn = option(fn)
    return fn


def wait_for_db_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--wait-for-db/--no-wait-for-db", default=True, show_default=True,
                        help="If the database is unreachable at start, keep retrying (a log line per attempt) "
                             "instead of exiting with status 2.")(fn)


def configure_logging(loglevel: str, log_format: str = "text") -> None:
    """Log lines of ``loglevel`` and above to stderr, as text or one JSON object per line."""
    logformat.configure_logging(loglevel, log_format)



def run_worker(queue: Queue, *, queues: str | None = None, exclude_queues: str | None = None,
               concurrency: int | None = None, pool: str = "thread", drain_timeout: float | None = None,
               burst: bool = False, max_tasks: int | None = None, async_concurrency: int | None = None,
               cancel_grace: float | None = None) -> None:
    """Run a worker on ``queue`` with the CLI's flag values; returns once it has drained."""
    served = _split(queues) or queue.default_queues()
    excluded = set(_split(exclude_queues) or ())
    if excluded:
        served = [name for name in served if name not in excluded]
        if not served:
            raise click.UsageError(f"--exclude-queues {exclude_queues} leaves no queue to serve: the worker would "
                                   "serve only these; give --queues or exclude fewer")
    if drain_timeout is not None:
        queue.drain_timeout = drain_timeout
    if cancel_grace is not None:
        queue.cancel_grace = cancel_grace
    queue.run_worker(queues=served, concurrency=concurrency, pool=pool, burst=burst, max_tasks=max_tasks,
                     async_concurrency=async_concurrency)


@contextlib.contextmanager
def worker_process() -> Iterator[None]:
    """Around a worker command, from before it imports --app: a signal while it starts is a clean stop.

    Until the worker runs (importing, connecting, registering), SIGINT/SIGTERM end the start-up at
    once; the command then exits 0 with one log line, as it would after a drain. Once it runs, the
    worker drains on the first signal and stops at once on a second.
    """
    with StopSignals():
        try:
            yield
        except StartupInterrupted as exc:
            logging.getLogger("taskito.worker").info("%s received while starting: stopped before claiming any job",
                                                     exc)


def wait_for_database(build: Callable[[], Queue]) -> Queue:
    """Call ``build`` until the database can be reached (containers start in any order).

    Logs one line per attempt, backing off up to 30 s. Run inside ``worker_process()``: a signal
    meanwhile ends the wait (``StartupInterrupted``).
    """
    log = logging.getLogger("taskito.worker")
    attempt = 0
    try:
        while True:
            try:
                return build()
            except (AppError, DatabaseUnavailableError) as exc:
                cause = exc if isinstance(exc, DatabaseUnavailableError) else exc.__context__
                if not isinstance(cause, DatabaseUnavailableError):
                    raise
                attempt += 1
                delay = min(2 ** (attempt - 1), 30)
                log.warning("waiting for the database (attempt %d): %s; retrying in %ds "
                            "(--no-wait-for-db exits instead)", attempt, cause, delay)
            time.sleep(delay)
    except StartupInterrupted:
        if attempt:
            log.info("stopped before the database became reachable")
        raise


@main.command()
@app_option
@worker_options
@wait_for_db_option
def worker(app: str, loglevel: str, log_format: str, wait_for_db: bool, **options: Any) -> None:
    """Run a worker until SIGINT/SIGTERM (drains running jobs, then exits 0)."""
    configure_logging(loglevel, log_format)
    with worker_process():
        run_worker(wait_for_database(lambda: load_queue(app)) if wait_for_db else load_queue(app), **options)


def _info(queue: Queue) -> dict[str, Any]:
    return {
        "stats": queue.stats(),
        "queues": queue.stats_all_queues(),
        "paused": queue.paused_queues(),
        "workers": queue.workers(),
    }


def _print_table(info: dict[str, Any]) -> None:
    columns = list(info["stats"])
    click.echo(f"{'queue':<20}" + "".join(f"{name:>11}" for name in columns))
    empty = dict.fromkeys(columns, 0)
    # A paused queue shows even with no jobs in it: pausing ahead of work is the usual case.
    queues = {**{name: empty for name in info["paused"]}, **info["queues"]}
    rows = [("all", info["stats"])] + sorted(queues.items())
    for name, counts in rows:
        label = f"{name} (paused)" if name in info["paused"] else name
        click.echo(f"{label:<20}" + "".join(f"{counts[c]:>11}" for c in columns))
    click.echo(f"\nworkers: {len(info['workers'])}")
    for w in info["workers"]:
        click.echo(f"  {w['id']}  queues={','.join(w['queues'])}  threads={w['concurrency']}  running={w['running']}")


def info_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)(fn)
    fn = click.option("--interval", type=Checked("seconds", float, _interval), default=2.0, show_default=True)(fn)
    return click.option("--watch", is_flag=True, help="Refresh until interrupted.")(fn)


def show_info(queue: Queue, watch: bool, interval: float, fmt: str) -> None:
    """Print counts, paused queues and workers once, or every ``interval`` seconds with ``watch``."""
    while True:
        data = _info(queue)
        if fmt == "json":
            click.echo(json.dumps(data, sort_keys=True))
        else:
            if watch:
                click.clear()
            _print_table(data)
        if not watch:
            return
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            return


@main.command()
@app_option
@info_options
def info(app: str, watch: bool, interval: float, fmt: str) -> None:
    """Show job counts per queue, paused queues and live workers."""
    show_info(load_queue(app), watch, interval, fmt)


def dashboard_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The dashboard's flags, shared by ``taskito dashboard`` and the framework commands."""
    for option in reversed([
        click.option("--host", default="127.0.0.1", show_default=True,
                     help="Address to listen on (0.0.0.0: every interface; then set --token)."),
        click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
                     help="Port to listen on (0: any free port, printed at start)."),
        click.option("--token", envvar="TASKITO_DASHBOARD_TOKEN", metavar="TOKEN",
                     help="Require this token on every page and API call (env TASKITO_DASHBOARD_TOKEN)."),
        click.option("--read-only", is_flag=True, help="Show the queue but refuse every change."),
        click.option("--loglevel", default="INFO", show_default=True,
                     type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False)),
        LOG_FORMAT_OPTION,
    ]):
        fn = option(fn)
    return fn


def run_dashboard(queue: Queue, host: str, port: int, token: str | None, read_only: bool) -> None:
    """Serve the dashboard of ``queue`` until SIGINT/SIGTERM."""
    from .dashboard import create_app, is_loopback, make_server
    from .dashboard.server import serve_until_stopped

    token = (token or "").strip() or None
    try:
        server = make_server(create_app(queue, token=token, read_only=read_only), host, port)
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
    if token is None and not is_loopback(host):
        click.echo(f"warning: the dashboard listens on {host} without a token: anyone who can reach port "
                   f"{server.server_port} can read job arguments and results and operate the queue. Set --token "
                   "(or TASKITO_DASHBOARD_TOKEN), or keep it behind an authenticating reverse proxy.", err=True)
    shown = f"[{host}]" if ":" in host else host
    mode = ("token required" if token else "no token") + (", read-only" if read_only else "")
    click.echo(f"taskito dashboard for {queue!r} serving on http://{shown}:{server.server_port}/ ({mode})")
    serve_until_stopped(server)


@main.command()
@app_option
@dashboard_options
def dashboard(app: str, host: str, port: int, token: str | None, read_only: bool, loglevel: str,
              log_format: str) -> None:
    """Serve the web dashboard and its JSON API (default http://127.0.0.1:8080/)."""
    configure_logging(loglevel, log_format)
    run_dashboard(load_queue(app), host, port, token, read_only)


@main.command()
@app_option
@click.argument("queue_name", type=QUEUE_NAME)
def pause(app: str, queue_name: str) -> None:
    """Stop workers from claiming QUEUE_NAME's jobs."""
    load_queue(app).pause(queue_name)
    click.echo(f"paused {queue_name}")


@main.command()
@app_option
@click.argument("queue_name", type=QUEUE_NAME)
def resume(app: str, queue_name: str) -> None:
    """Let workers claim QUEUE_NAME's jobs again."""
    load_queue(app).resume(queue_name)
    click.echo(f"resumed {queue_name}")


def purge_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--cancelled-older-than", type=SECONDS, metavar="SECONDS",
                      help="Delete cancelled (and expired) jobs this old.")(fn)
    fn = click.option("--dead-older-than", type=SECONDS, metavar="SECONDS",
                      help="Delete dead letters this old.")(fn)
    return click.option("--completed-older-than", type=SECONDS, metavar="SECONDS",
                        help="Delete completed jobs finished this long ago.")(fn)


PURGE_HELP = "Delete old finished jobs (all three kinds older than a day when no option is given)."


def purge_jobs(queue: Queue, completed_older_than: float | None = None, dead_older_than: float | None = None,
               cancelled_older_than: float | None = None) -> None:
    ages = (completed_older_than, dead_older_than, cancelled_older_than)
    if all(age is None for age in ages):
        ages = (86400, 86400, 86400)
    for age, purge, what in zip(ages, (queue.purge_completed, queue.purge_dead, queue.purge_cancelled),
                                ("completed job(s)", "dead letter(s)", "cancelled job(s)"), strict=True):
        if age is not None:
            click.echo(f"purged {purge(age)} {what}")


@main.command(help=PURGE_HELP)
@app_option
@purge_options
def purge(app: str, **ages: float | None) -> None:
    purge_jobs(load_queue(app), **ages)


class CountsDiffer(click.ClickException):
    """``check`` found counters that differ from the recount (and was not asked to repair them): exit status 1."""

    exit_code = 1


def check_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--repair", is_flag=True, help="Rebuild the counters from the recount.")(fn)


CHECK_HELP = ("Recount the jobs and compare with the counters behind stats(), the dashboard and /metrics "
              "(exit status 1 if they differ; --repair rebuilds them).")


def _difference(entry: dict[str, Any]) -> str:
    if entry["counter"] == "failures":
        return f"failed attempts of task {entry['task_name']!r}: counted {entry['counted']}, found {entry['actual']}"
    where = f"queue {entry['queue']!r}, task {entry['task_name']!r}, status {entry['status']!r}"
    if entry["runtime_le"] is not None:
        where += f", run time <= {entry['runtime_le']:g}s"
        if entry["counted"] == entry["actual"]:
            return (f"jobs of {where}: run times add up to {entry['counted_runtime_sum']:.3f}s counted, "
                    f"{entry['actual_runtime_sum']:.3f}s found")
    return f"jobs of {where}: counted {entry['counted']}, found {entry['actual']}"


def check_counts(queue: Queue, repair: bool) -> None:
    """Print the counters that differ from a recount; repair them, or exit with status 1."""
    differences = queue.check_counts(repair=repair)
    for entry in differences:
        click.echo(_difference(entry))
    if not differences:
        click.echo("counters match the jobs table")
    elif repair:
        click.echo(f"repaired {len(differences)} counter(s)")
    else:
        raise CountsDiffer(f"{len(differences)} counter(s) differ from the jobs table: run check again with "
                           "--repair to rebuild them")


@main.command(help=CHECK_HELP)
@app_option
@check_options
def check(app: str, repair: bool) -> None:
    check_counts(load_queue(app), repair)


@main.group()
def dead() -> None:
    """List and replay dead letters."""


def dead_list_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)(fn)
    return click.option("--limit", type=LIMIT, default=20, show_default=True)(fn)


def list_dead(queue: Queue, limit: int, fmt: str) -> None:
    jobs = [job.to_dict() for job in queue.dead_letters(limit=limit)]
    if fmt == "json":
        click.echo(json.dumps(jobs))
        return
    if not jobs:
        click.echo("no dead letters")
    for job in jobs:
        click.echo(f"{job['id']}  {job['task_name']}  attempts={job['retry_count'] + 1}  {job['error']}")


def retry_one_dead(queue: Queue, job_id: str) -> None:
    try:
        new_id = queue.retry_dead(job_id)
    except TaskitoError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{job_id} replayed as {new_id}")


def retry_all_dead(queue: Queue, task_name: str | None = None, queue_name: str | None = None) -> None:
    try:
        count = len(queue.retry_all_dead(task=task_name, queue=queue_name))
    except TaskitoError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"replayed {count} dead letter(s)")


@dead.command("list")
@app_option
@dead_list_options
def dead_list(app: str, limit: int, fmt: str) -> None:
    """Show the newest dead letters with their last error."""
    list_dead(load_queue(app), limit, fmt)


@dead.command("retry")
@app_option
@click.argument("job_id")
def dead_retry(app: str, job_id: str) -> None:
    """Replay one dead letter as a new job."""
    retry_one_dead(load_queue(app), job_id)


@dead.command("retry-all")
@app_option
@click.option("--task", "task_name", default=None, help="only the dead letters of this task")
@click.option("--queue", "queue_name", default=None, help="only the dead letters of this queue")
def dead_retry_all(app: str, task_name: str | None, queue_name: str | None) -> None:
    """Replay every dead letter (of --task / --queue, if given)."""
    retry_all_dead(load_queue(app), task_name, queue_name)


def _control(action: Callable[[], Any]) -> Any:
    """Run a control action; a bad name or id is one line on stderr (exit status 1), never a traceback."""
    try:
        return action()
    except TaskitoError as exc:
        raise click.ClickException(str(exc)) from None


@main.command("cancel")
@app_option
@click.argument("job_id")
def cancel(app: str, job_id: str) -> None:
    """Cancel JOB_ID: a waiting job at once, a running one as soon as its worker sees the request."""
    if not _control(lambda: load_queue(app).cancel_job(job_id)):
        raise click.ClickException(f"job {job_id} is finished or unknown: nothing to cancel")
    click.echo(f"cancellation of {job_id} requested")


@main.command("purge-queue")
@app_option
@click.argument("queue_name", type=QUEUE_NAME)
@click.confirmation_option("--yes", prompt="Cancel every waiting job of this queue?")
def purge_queue(app: str, queue_name: str) -> None:
    """Cancel every waiting job of QUEUE_NAME (running ones go on)."""
    count = _control(lambda: load_queue(app).purge_queue(queue_name))
    click.echo(f"cancelled {count} waiting job(s) of queue {queue_name}")


@main.command("revoke")
@app_option
@click.argument("task_name")
@click.confirmation_option("--yes", prompt="Cancel every waiting job of this task?")
def revoke(app: str, task_name: str) -> None:
    """Cancel every waiting job of task TASK_NAME (running ones go on)."""
    count = _control(lambda: load_queue(app).revoke_task(task_name))
    click.echo(f"cancelled {count} waiting job(s) of task {task_name}")


@main.command("replay")
@app_option
@click.argument("job_id")
def replay(app: str, job_id: str) -> None:
    """Enqueue a finished job again (same task, arguments and options) as a new job."""
    job = _control(lambda: load_queue(app).replay(job_id))
    click.echo(f"{job_id} replayed as {job.id}")


@main.group()
def periodic() -> None:
    """List, pause, resume and run periodic schedules."""


def periodic_list_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)(fn)


def list_schedules(queue: Queue, fmt: str) -> None:
    schedules = queue.periodic_schedules()
    if fmt == "json":
        click.echo(json.dumps(schedules))
        return
    if not schedules:
        click.echo("no periodic schedules")

    def when(value: float | None) -> str:
        return "-" if value is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))

    for item in schedules:
        state = "paused" if item["paused"] else "active"
        click.echo(f"{item['name']}  {item['task']}  cron={item['cron']!r}  tz={item['timezone'] or 'local'}  "
                   f"{state}  last={when(item['last_run'])}  next={when(item['next_run'])}")


def schedule_action(queue: Queue, action: str, name: str) -> None:
    """pause, resume or run one schedule (``taskito periodic`` and the Django and Flask commands)."""
    if action == "run":
        job = _control(lambda: queue.run_periodic_now(name))
        click.echo(f"schedule {name} enqueued job {job.id}")
        return
    _control(lambda: (queue.pause_periodic if action == "pause" else queue.resume_periodic)(name))
    click.echo(f"{'paused' if action == 'pause' else 'resumed'} schedule {name}")


@periodic.command("list")
@app_option
@periodic_list_options
def periodic_list(app: str, fmt: str) -> None:
    """Every schedule, with its last and next run and whether it is paused."""
    list_schedules(load_queue(app), fmt)


@periodic.command("pause")
@app_option
@click.argument("name")
def periodic_pause(app: str, name: str) -> None:
    """Stop firing schedule NAME on every worker (kept across restarts and deploys)."""
    schedule_action(load_queue(app), "pause", name)


@periodic.command("resume")
@app_option
@click.argument("name")
def periodic_resume(app: str, name: str) -> None:
    """Fire schedule NAME again from its next tick."""
    schedule_action(load_queue(app), "resume", name)


@periodic.command("run")
@app_option
@click.argument("name")
def periodic_run(app: str, name: str) -> None:
    """Enqueue one job of schedule NAME now."""
    schedule_action(load_queue(app), "run", name)


if __name__ == "__main__":
    main()
