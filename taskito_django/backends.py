"""A Django Tasks backend that runs ``@task`` functions on taskito workers.

    TASKS = {"default": {"BACKEND": "taskito_django.backends.TaskitoBackend"}}

Works with Django 6's ``django.tasks`` and with the ``django-tasks`` backport.
Every Django task is enqueued as a job of one taskito task, ``taskito_django.run_django_task``,
which finds the Django task by its module path on the worker and calls it; so taskito's
retries, timeouts, dead letters, admin pages and commands apply to Django tasks too.
The TaskResult id is the taskito job id.

A job names its task by path, and the path is only looked up among the modules the process
has already imported (each app's ``tasks`` module is autodiscovered): a job row never makes
a worker import anything, so the queue database is never a way to run code.

Options (``OPTIONS`` of the backend): ``max_retries`` (default 0: a Django task runs once, as
on Django's own backends) and ``timeout`` (seconds, default ``TASKITO_DEFAULT_TIMEOUT``).
``ENQUEUE_ON_COMMIT: True`` (next to ``BACKEND``) enqueues when the current transaction
commits (never on rollback), at once outside a transaction.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import checks
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.utils import timezone

from taskito import validation
from taskito.context import current_job
from taskito.eager import run_eagerly
from taskito.storage import JobRecord, NewJob, Status

from . import compat
from .project import RUNNER_NAME, queue

if not compat.AVAILABLE:
    raise ImportError("taskito_django.backends needs Django 6's django.tasks or the django-tasks backport: "
                      "pip install 'taskito[django]' (or django-tasks)")

logger = logging.getLogger("taskito.django.tasks")

_STATUS = {
    Status.PENDING: compat.TaskResultStatus.READY,
    Status.FAILED: compat.TaskResultStatus.READY,  # a failed attempt waiting for its retry
    Status.RUNNING: compat.TaskResultStatus.RUNNING,
    Status.COMPLETE: compat.TaskResultStatus.SUCCESSFUL,
    Status.DEAD: compat.TaskResultStatus.FAILED,
    Status.CANCELLED: compat.TaskResultStatus.FAILED,
}

# Eager mode: the TaskResult that enqueue() returns, filled in by the runner as it runs inline.
_eager_result: ContextVar[Any] = ContextVar("taskito_django_eager_result", default=None)
EAGER_WORKER_ID = "eager"
NO_RESULTS_WHEN_EAGER = (
    "This backend does not support retrieving or refreshing results. (TASKITO_EAGER is on: tasks run inline "
    "at enqueue and nothing is stored; use the TaskResult that enqueue() returned.)"
)


def _datetime(timestamp: float | None) -> datetime | None:
    if timestamp is None:
        return None
    value = datetime.fromtimestamp(timestamp, tz=dt_timezone.utc)
    return value if settings.USE_TZ else timezone.make_naive(value)


def _timestamp(value: datetime) -> float:
    """Seconds since the epoch; a naive datetime (USE_TZ = False) is in Django's TIME_ZONE."""
    return (value if timezone.is_aware(value) else timezone.make_aware(value)).timestamp()


def _exception_path(error: str | None, tb: str | None) -> str:
    """The dotted path of the exception class, read back from the stored error and traceback."""
    name = (error or "Exception").split(":", 1)[0].strip() or "Exception"
    for line in reversed((tb or "").splitlines()):
        match = re.match(rf"^((?:[A-Za-z_][\w]*\.)*{re.escape(name)})(?::|$)", line)
        if match:
            path = match.group(1)
            return path if "." in path else f"builtins.{path}"
    return f"builtins.{name}" if name.isidentifier() else "builtins.Exception"


def _error_of(exc: BaseException) -> Any:
    return compat.TaskError(exception_class_path=f"{type(exc).__module__}.{type(exc).__qualname__}",
                            traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


def imported_task(module_path: Any) -> Any:
    """The Django task at ``module_path`` if this process has imported its module; nothing is imported.

    Importing what a job row names would run the top-level code of any module for whoever can
    write to the queue database; tasks are known once the project imports them (autodiscovery).
    """
    module_name, _, name = str(module_path).rpartition(".")
    module = sys.modules.get(module_name)
    # vars(), not getattr(): a module-level __getattr__ could run code of its own.
    task = vars(module).get(name) if module is not None else None
    if not isinstance(task, compat.Task) or task.module_path != module_path:
        raise SuspiciousOperation(
            f"{module_path!r} does not name a Django task that this process has imported: define @task "
            f"functions in an installed app's tasks module (imported at startup) or import them from it"
        )
    return task


def _taskito_backend(alias: Any) -> TaskitoBackend:
    try:
        backend = compat.task_backends[alias]
    except (compat.InvalidTaskBackend, KeyError, TypeError):
        backend = None
    if not isinstance(backend, TaskitoBackend):
        raise SuspiciousOperation(f"the job names the TASKS backend {alias!r}, which is not a TaskitoBackend "
                                  f"of this project (TASKS: {', '.join(map(repr, settings.TASKS))})")
    return backend


def _task_for(module_path: Any, alias: Any, priority: int, queue_name: str, run_after: float | None) -> Any:
    """The Task as it was enqueued (priority, queue, backend, run_after), found among imported tasks."""
    task = imported_task(module_path)
    _taskito_backend(alias)
    changes: dict[str, Any] = {"backend": alias, "priority": priority, "queue_name": queue_name}
    if run_after is not None:
        changes["run_after"] = _datetime(run_after)
    try:
        return task.using(**changes)
    except compat.InvalidTask:  # e.g. a queue no longer listed in QUEUES: describe it as declared
        return task


def _unpack(record: JobRecord) -> tuple[Any, Any, Any, Any, Any]:
    """module path, args, kwargs, backend alias and run_after of a stored Django task job."""
    try:
        payload = queue.serializer.loads(record.payload)
        module_path, args, kwargs = payload["args"][:3]
        runner_kwargs = payload.get("kwargs") or {}
        return module_path, args, kwargs, runner_kwargs.get("backend", "default"), runner_kwargs.get("run_after")
    except Exception as exc:
        raise SuspiciousOperation(f"job {record.id} is not a Django task job its backend wrote: {exc!r}") from None


def _new_result(task: Any, job_id: str, args: list[Any], kwargs: dict[str, Any], alias: str) -> Any:
    """A TaskResult of a job not yet run (READY); enqueued_at is set once the row is written."""
    return compat.TaskResult(
        task=task, id=job_id, status=compat.TaskResultStatus.READY, enqueued_at=None, started_at=None,
        finished_at=None, last_attempted_at=None, args=args, kwargs=kwargs, backend=alias, errors=[], worker_ids=[],
    )


def _stored_result(task: Any, record: JobRecord, args: list[Any], kwargs: dict[str, Any], alias: str,
                   errors: list[dict[str, Any]]) -> Any:
    """The TaskResult of a stored job, as every reader (get_result, refresh, the worker) sees it."""
    task_errors = [compat.TaskError(exception_class_path=_exception_path(e["error"], e["traceback"]),
                                    traceback=e["traceback"] or e["error"] or "") for e in errors]
    if record.status == Status.CANCELLED:
        task_errors.append(compat.TaskError(exception_class_path="taskito.exceptions.TaskCancelledError",
                                            traceback=record.error or "cancelled"))
    attempts = len(errors) + (1 if record.status in (Status.RUNNING, Status.COMPLETE) else 0)
    result = compat.TaskResult(
        task=task, id=record.id, status=_STATUS[record.status], enqueued_at=_datetime(record.created_at),
        started_at=_datetime(record.first_started_at), finished_at=_datetime(record.finished_at),
        last_attempted_at=_datetime(record.started_at), args=args, kwargs=kwargs, backend=alias,
        errors=task_errors, worker_ids=[record.worker_id or "taskito"] * attempts,
    )
    if record.status == Status.COMPLETE and record.result is not None:
        object.__setattr__(result, "_return_value", queue.serializer.loads(record.result))
    return result


def _stored_job(job_id: str) -> JobRecord | None:
    """The job's whole row, or None when it is not (or no longer) stored."""
    job = queue.get_job(job_id)
    return job.record if job is not None else None


def run_django_task(module_path: str, args: list[Any], kwargs: dict[str, Any], backend: str = "default",
                    run_after: float | None = None) -> Any:
    """The taskito task behind every Django task: find it among imported tasks, run it, send the signals."""
    job_id = current_job.id
    result = _eager_result.get()
    eager = result is not None and result.id == job_id
    if eager:
        task, worker = result.task, EAGER_WORKER_ID
    else:  # on a worker: the job as stored
        record = _stored_job(job_id)
        if record is None:
            raise SuspiciousOperation(f"job {job_id} is gone from the queue database")
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise SuspiciousOperation(f"job {job_id} is not a Django task job its backend wrote")
        task = _task_for(module_path, backend, record.priority, record.queue, run_after)
        result = _stored_result(task, record, args, kwargs, backend, queue.job_errors(job_id))
        worker = record.worker_id or "taskito"
    now = timezone.now()
    object.__setattr__(result, "status", compat.TaskResultStatus.RUNNING)
    if result.started_at is None or current_job.retry_count == 0:
        object.__setattr__(result, "started_at", now)  # the first attempt's start, kept across retries
    object.__setattr__(result, "last_attempted_at", now)
    object.__setattr__(result, "worker_ids", [*result.worker_ids[:len(result.errors)], worker])
    sender = type(compat.task_backends[backend])
    compat.task_started.send(sender=sender, task_result=result)
    try:
        if task.takes_context:
            value = task.call(compat.TaskContext(task_result=result), *args, **kwargs)
        else:
            value = task.call(*args, **kwargs)
        value = compat.normalize_json(value)
    except KeyboardInterrupt:
        if not eager:  # inline, it is the user stopping the program: nothing to report, as Django does
            _attempt_failed(result, sender)
        raise
    except BaseException:
        _attempt_failed(result, sender)
        raise
    object.__setattr__(result, "status", compat.TaskResultStatus.SUCCESSFUL)
    object.__setattr__(result, "finished_at", timezone.now())
    object.__setattr__(result, "_return_value", value)
    compat.task_finished.send(sender=sender, task_result=result)
    return value


def _attempt_failed(result: Any, sender: type) -> None:
    """Called inside the except block of a failed attempt: record the error, and report the
    task finished (FAILED) unless the attempt will be retried."""
    exc = sys.exc_info()[1]
    assert exc is not None
    result.errors.append(_error_of(exc))
    runner = queue.tasks.get(RUNNER_NAME)
    # From the job's context, not its row: eager mode retries too, and stores nothing.
    if current_job.retry_count < current_job.max_retries and (runner is None or runner.options.should_retry(exc)):
        object.__setattr__(result, "status", compat.TaskResultStatus.READY)
        return
    object.__setattr__(result, "status", compat.TaskResultStatus.FAILED)
    object.__setattr__(result, "finished_at", timezone.now())
    compat.task_finished.send(sender=sender, task_result=result)  # Django's receiver logs it with exc_info


def register_runner() -> None:
    """Register ``run_django_task`` on the project queue (done by the app's ``ready()``).

    A job naming no task this worker imported is refused for good: a retry would not change it.
    """
    if RUNNER_NAME not in queue.tasks:
        queue.task(name=RUNNER_NAME, dont_retry_on=[SuspiciousOperation])(run_django_task)


class TaskitoBackend(compat.BaseTaskBackend):
    """Run Django tasks on taskito workers (``manage.py taskito_worker``)."""

    supports_defer = True
    supports_priority = True
    supports_async_task = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.enqueue_on_commit = bool(params.get("ENQUEUE_ON_COMMIT", self.options.get("ENQUEUE_ON_COMMIT", False)))
        self.job_options = {"max_retries": 0, **{key: self.options[key] for key in ("max_retries", "timeout")
                                                 if key in self.options}}

    @property
    def supports_get_result(self) -> bool:
        """False in eager mode (TASKITO_EAGER), where nothing is stored, as for Django's ImmediateBackend."""
        return not queue.eager

    def _prepare(self, task: Any, args: Any, kwargs: Any) -> tuple[NewJob, Any]:
        """The runner job of one call of a Django task, and the READY TaskResult that enqueue returns."""
        self.validate_task(task)
        args = compat.normalize_json(list(args))
        kwargs = compat.normalize_json(dict(kwargs))
        run_after = _timestamp(task.run_after) if task.run_after is not None else None
        job = queue.prepare_job(RUNNER_NAME, [task.module_path, args, kwargs],
                                {"backend": self.alias, "run_after": run_after},
                                priority=task.priority, queue=task.queue_name, **self.job_options)
        result = _new_result(task, job.id, args, kwargs, self.alias)
        if run_after is not None and not queue.eager:
            # The job's place in line is run_after itself, even one in the past: among equal
            # priorities an earlier run_after runs first (a delay of zero would mean "now").
            job = dataclasses.replace(job, delay=run_after - time.time())
        return job, result

    @staticmethod
    def _written(result: Any, record: JobRecord | None) -> Any:
        """The stored enqueue time, so that the result enqueue returns equals what get_result() gives."""
        object.__setattr__(result, "enqueued_at", _datetime(record.created_at) if record else timezone.now())
        return result

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        job, result = self._prepare(task, args, kwargs)
        if queue.eager:
            return self._run_eagerly(job, result)

        def write() -> None:
            queue.enqueue_prepared(job)
            compat.task_enqueued.send(type(self), task_result=self._written(result, _stored_job(job.id)))

        if self.enqueue_on_commit:
            transaction.on_commit(write)  # at once outside a transaction
        else:
            write()
        return result

    async def aenqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        """``enqueue()`` from async code, through taskito's async API (no thread per call): the same job,
        result and signal.

        With ENQUEUE_ON_COMMIT, and in eager mode, it is ``enqueue()`` in Django's thread for sync code,
        where the transaction lives (and where an eager async Django task can run to completion).
        """
        if queue.eager or self.enqueue_on_commit:
            return await sync_to_async(self.enqueue, thread_sensitive=True)(task, args, kwargs)
        job, result = self._prepare(task, args, kwargs)
        await queue.aenqueue_prepared(job)
        stored = await queue.aget_job(job.id)
        self._written(result, stored.record if stored is not None else None)
        if hasattr(compat.task_enqueued, "asend"):  # Django 5.0+: sync receivers run off the loop
            await compat.task_enqueued.asend(type(self), task_result=result)
        else:
            compat.task_enqueued.send(type(self), task_result=result)
        return result

    def _run_eagerly(self, job: Any, result: Any) -> Any:
        """TASKITO_EAGER: run inline now, like Django's ImmediateBackend, and return the finished result
        (with the retries a worker would make: OPTIONS' max_retries applies)."""
        object.__setattr__(result, "enqueued_at", timezone.now())
        compat.task_enqueued.send(type(self), task_result=result)
        token = _eager_result.set(result)
        try:
            run_eagerly(queue, job)  # the runner fills in ``result``; KeyboardInterrupt propagates
        finally:
            _eager_result.reset(token)
        return result

    def get_result(self, result_id: str) -> Any:
        if queue.eager:
            raise NotImplementedError(NO_RESULTS_WHEN_EAGER)
        record = _stored_job(str(result_id))
        if record is None or record.task_name != RUNNER_NAME:
            raise compat.TaskResultDoesNotExist(result_id)
        return self._result_of(record, queue.job_errors(record.id))

    async def aget_result(self, result_id: str) -> Any:
        """``get_result()`` from async code (``TaskResult.arefresh()`` too), through taskito's async API."""
        if queue.eager:
            raise NotImplementedError(NO_RESULTS_WHEN_EAGER)
        job = await queue.aget_job(str(result_id))
        if job is None or job.record.task_name != RUNNER_NAME:
            raise compat.TaskResultDoesNotExist(result_id)
        return self._result_of(job.record, await queue.ajob_errors(job.id))

    @staticmethod
    def _result_of(record: JobRecord, errors: list[dict[str, Any]]) -> Any:
        """The TaskResult of a stored runner job and its error history."""
        module_path, args, kwargs, alias, run_after = _unpack(record)
        task = _task_for(module_path, alias, record.priority, record.queue, run_after)
        return _stored_result(task, record, args, kwargs, alias, errors)

    def check(self, **kwargs: Any) -> Iterable[checks.CheckMessage]:
        from django.apps import apps

        if not apps.is_installed("taskito_django"):
            yield checks.Error(
                f"TASKS[{self.alias!r}] uses taskito_django.backends.TaskitoBackend but 'taskito_django' is not "
                "in INSTALLED_APPS, so workers cannot run its tasks",
                hint="Add 'taskito_django' to INSTALLED_APPS.", id="taskito.E010",
            )
        unknown = set(self.options) - {"max_retries", "timeout", "ENQUEUE_ON_COMMIT"}
        if unknown:
            yield checks.Error(
                f"TASKS[{self.alias!r}]['OPTIONS'] has unknown key(s) {', '.join(sorted(unknown))}",
                hint="TaskitoBackend understands OPTIONS 'max_retries' and 'timeout'.", id="taskito.E011",
            )
        check: dict[str, Callable[[str, Any], object]] = {"max_retries": validation.count,
                                                          "timeout": validation.timeout}
        for key, value in self.job_options.items():
            try:
                check[key](key, value)
            except ValueError as exc:
                yield checks.Error(
                    f"TASKS[{self.alias!r}]['OPTIONS'][{key!r}] is {value!r}: {exc}",
                    hint="Use a whole number of retries (0 or more) for max_retries and seconds (more than 0) "
                         "for timeout.", id="taskito.E012",
                )
