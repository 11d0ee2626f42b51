"""A Django Tasks backend that runs ``@task`` functions on taskito workers.

    TASKS = {"default": {"BACKEND": "taskito_django.backends.TaskitoBackend"}}

Works with Django 6's ``django.tasks`` and with the ``django-tasks`` backport.
Every Django task is enqueued as a job of one taskito task, ``taskito_django.run_django_task``,
which imports the Django task by its module path on the worker and calls it; so taskito's
retries, timeouts, dead letters, admin pages and commands apply to Django tasks too.
The TaskResult id is the taskito job id.

Options (``OPTIONS`` of the backend): ``max_retries`` and ``timeout`` (seconds) for the
jobs of this backend, defaulting to ``TASKITO_DEFAULT_RETRY`` / ``TASKITO_DEFAULT_TIMEOUT``.
``ENQUEUE_ON_COMMIT: True`` (next to ``BACKEND``) enqueues when the current transaction
commits (never on rollback), at once outside a transaction.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterable
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import checks
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from taskito import validation
from taskito.context import current_job
from taskito.exceptions import TaskFailedError
from taskito.storage import JobRecord, Status

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


def _datetime(timestamp: float | None) -> datetime | None:
    if timestamp is None:
        return None
    value = datetime.fromtimestamp(timestamp, tz=dt_timezone.utc)
    return value if settings.USE_TZ else timezone.make_naive(value)


def _exception_path(error: str | None, tb: str | None) -> str:
    """The dotted path of the exception class, read back from the stored error and traceback."""
    name = (error or "Exception").split(":", 1)[0].strip() or "Exception"
    for line in reversed((tb or "").splitlines()):
        match = re.match(rf"^((?:[A-Za-z_][\w]*\.)*{re.escape(name)})(?::|$)", line)
        if match:
            path = match.group(1)
            return path if "." in path else f"builtins.{path}"
    return f"builtins.{name}" if name.isidentifier() else "builtins.Exception"


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _error_of(exc: BaseException) -> Any:
    return compat.TaskError(exception_class_path=f"{type(exc).__module__}.{type(exc).__qualname__}",
                            traceback=_traceback(exc))


def _import_task(module_path: str) -> Any:
    try:
        task = import_string(module_path)
    except ImportError as exc:
        raise ImportError(f"cannot import the Django task {module_path!r}: {exc}") from exc
    if not isinstance(task, compat.Task):
        raise TypeError(f"{module_path!r} is a {type(task).__name__}, not a Django task (decorate it with @task)")
    return task


def _task_for(module_path: str, record: JobRecord | None, alias: str, run_after: float | None) -> Any:
    """The Task as it was enqueued: its priority, queue, backend and run_after."""
    task = _import_task(module_path)
    changes: dict[str, Any] = {"backend": alias}
    if record is not None:
        changes.update(priority=record.priority, queue_name=record.queue)
    if run_after is not None:
        changes["run_after"] = _datetime(run_after)
    try:
        return task.using(**changes)
    except Exception:  # e.g. a queue no longer listed in QUEUES: describe it as declared
        return task


def _task_result(task: Any, job_id: str, record: JobRecord | None, alias: str, args: list[Any],
                 kwargs: dict[str, Any], errors: list[dict[str, Any]]) -> Any:
    status = _STATUS[record.status] if record is not None else compat.TaskResultStatus.READY
    task_errors = [compat.TaskError(exception_class_path=_exception_path(e["error"], e["traceback"]),
                                    traceback=e["traceback"] or e["error"] or "") for e in errors]
    if record is not None and record.status == Status.CANCELLED:
        task_errors.append(compat.TaskError(exception_class_path="taskito.exceptions.TaskCancelledError",
                                            traceback=record.error or "cancelled"))
    attempts = len(errors) + (1 if record is not None and record.status in (Status.RUNNING, Status.COMPLETE) else 0)
    worker = (record.worker_id if record is not None else None) or "taskito"
    result = compat.TaskResult(
        task=task, id=job_id, status=status,
        enqueued_at=_datetime(record.created_at) if record is not None else timezone.now(),
        started_at=_datetime(record.started_at) if record is not None else None,
        finished_at=_datetime(record.finished_at) if record is not None else None,
        last_attempted_at=_datetime(record.started_at) if record is not None else None,
        args=args, kwargs=kwargs, backend=alias, errors=task_errors, worker_ids=[worker] * attempts,
    )
    if record is not None and record.status == Status.COMPLETE and record.result is not None:
        object.__setattr__(result, "_return_value", queue.serializer.loads(record.result))
    return result


def run_django_task(module_path: str, args: list[Any], kwargs: dict[str, Any], backend: str = "default",
                    run_after: float | None = None) -> Any:
    """The taskito task behind every Django task: import it by path, run it, send the signals."""
    job_id = current_job.id
    job = queue.get_job(job_id)  # None in eager mode, where nothing is stored
    record = job.record if job is not None else None
    task = _task_for(module_path, record, backend, run_after)
    result = _task_result(task, job_id, record, backend, args, kwargs, queue.job_errors(job_id) if record else [])
    now = timezone.now()
    object.__setattr__(result, "status", compat.TaskResultStatus.RUNNING)
    object.__setattr__(result, "started_at", now)
    object.__setattr__(result, "last_attempted_at", now)
    worker = (record.worker_id if record else None) or "taskito"
    object.__setattr__(result, "worker_ids", [worker] * (len(result.errors) + 1))
    sender = type(compat.task_backends[backend])
    compat.task_started.send(sender=sender, task_result=result)
    try:
        if task.takes_context:
            value = task.call(compat.TaskContext(task_result=result), *args, **kwargs)
        else:
            value = task.call(*args, **kwargs)
        value = compat.normalize_json(value)
    except Exception as exc:
        runner = queue.tasks.get(RUNNER_NAME)
        # From the job's context, not its row: eager mode retries too, and stores nothing.
        retried = (current_job.retry_count < current_job.max_retries
                   and (runner is None or runner.options.should_retry(exc)))
        if not retried:
            object.__setattr__(result, "status", compat.TaskResultStatus.FAILED)
            object.__setattr__(result, "finished_at", timezone.now())
            result.errors.append(_error_of(exc))
            compat.task_finished.send(sender=sender, task_result=result)
        raise
    object.__setattr__(result, "status", compat.TaskResultStatus.SUCCESSFUL)
    object.__setattr__(result, "finished_at", timezone.now())
    object.__setattr__(result, "_return_value", value)
    compat.task_finished.send(sender=sender, task_result=result)
    return value


def register_runner() -> None:
    """Register ``run_django_task`` on the project queue (done by the app's ``ready()``)."""
    if RUNNER_NAME not in queue.tasks:
        queue.task(name=RUNNER_NAME)(run_django_task)


class TaskitoBackend(compat.BaseTaskBackend):
    """Run Django tasks on taskito workers (``manage.py taskito_worker``)."""

    supports_defer = True
    supports_priority = True
    supports_get_result = True
    supports_async_task = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.enqueue_on_commit = bool(params.get("ENQUEUE_ON_COMMIT", self.options.get("ENQUEUE_ON_COMMIT", False)))
        self.job_options = {key: self.options[key] for key in ("max_retries", "timeout") if key in self.options}

    def _delay(self, run_after: datetime | None) -> float | None:
        if run_after is None:
            return None
        now = timezone.now() if timezone.is_aware(run_after) else datetime.now()
        return max((run_after - now).total_seconds(), 0.0)

    def _job_for(self, task: Any, args: Any, kwargs: Any) -> tuple[Any, list[Any], dict[str, Any], dict[str, Any]]:
        """The TaskResult to return, and the runner job's arguments and options."""
        self.validate_task(task)
        args = compat.normalize_json(list(args))
        kwargs = compat.normalize_json(dict(kwargs))
        run_after = task.run_after.timestamp() if task.run_after is not None else None
        runner_args = [task.module_path, args, kwargs]
        runner_kwargs = {"backend": self.alias, "run_after": run_after}
        options = {"priority": task.priority, "queue": task.queue_name, "delay": self._delay(task.run_after),
                   **self.job_options}
        return _task_result(task, "", None, self.alias, args, kwargs, []), runner_args, runner_kwargs, options

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        pending, runner_args, runner_kwargs, options = self._job_for(task, args, kwargs)
        if queue.eager:
            return self._run_eagerly(task, pending, runner_args, runner_kwargs, options)
        if self.enqueue_on_commit:
            job = queue.prepare_job(RUNNER_NAME, runner_args, runner_kwargs, **options)
            object.__setattr__(pending, "id", job.id)

            def send() -> None:
                queue.enqueue_prepared(job)
                compat.task_enqueued.send(type(self), task_result=pending)

            transaction.on_commit(send)
            return pending
        job_result = queue.enqueue(RUNNER_NAME, args=runner_args, kwargs=runner_kwargs, **options)
        object.__setattr__(pending, "id", job_result.id)
        compat.task_enqueued.send(type(self), task_result=pending)
        return pending

    def _run_eagerly(self, task: Any, result: Any, runner_args: list[Any], runner_kwargs: dict[str, Any],
                     options: dict[str, Any]) -> Any:
        """TASKITO_EAGER: run inline now, like Django's ImmediateBackend, and return the finished result
        (with the retries a worker would make: OPTIONS' max_retries applies)."""
        compat.task_enqueued.send(type(self), task_result=result)
        eager = queue.enqueue(RUNNER_NAME, args=runner_args, kwargs=runner_kwargs, **options)
        object.__setattr__(result, "id", eager.id)
        object.__setattr__(result, "worker_ids", ["eager"])
        object.__setattr__(result, "finished_at", timezone.now())
        try:
            value = eager.result()
        except TaskFailedError as failure:
            exc = failure.__cause__ or failure
            object.__setattr__(result, "status", compat.TaskResultStatus.FAILED)
            result.errors.append(_error_of(exc))
            return result
        object.__setattr__(result, "status", compat.TaskResultStatus.SUCCESSFUL)
        object.__setattr__(result, "_return_value", value)
        return result

    async def aenqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        """``enqueue()`` from async code, through taskito's async API (no thread per call).

        With ENQUEUE_ON_COMMIT, and in eager mode, it is ``enqueue()`` in Django's thread for sync code,
        where the transaction lives (and where an eager async Django task can run to completion).
        """
        if queue.eager or self.enqueue_on_commit:
            return await sync_to_async(self.enqueue, thread_sensitive=True)(task, args, kwargs)
        pending, runner_args, runner_kwargs, options = self._job_for(task, args, kwargs)
        job_result = await queue.aenqueue(RUNNER_NAME, args=runner_args, kwargs=runner_kwargs, **options)
        object.__setattr__(pending, "id", job_result.id)
        if hasattr(compat.task_enqueued, "asend"):  # Django 5.0+: sync receivers run off the loop
            await compat.task_enqueued.asend(type(self), task_result=pending)
        else:
            compat.task_enqueued.send(type(self), task_result=pending)
        return pending

    def get_result(self, result_id: str) -> Any:
        job = queue.get_job(str(result_id))
        if job is None or job.record.task_name != RUNNER_NAME:
            raise compat.TaskResultDoesNotExist(result_id)
        return self._result_of(job.record, queue.job_errors(job.id))

    async def aget_result(self, result_id: str) -> Any:
        """``get_result()`` from async code (``TaskResult.arefresh()`` too), through taskito's async API."""
        job = await queue.aget_job(str(result_id))
        if job is None or job.record.task_name != RUNNER_NAME:
            raise compat.TaskResultDoesNotExist(result_id)
        return self._result_of(job.record, await queue.ajob_errors(job.id))

    def _result_of(self, record: JobRecord, errors: list[dict[str, Any]]) -> Any:
        """The Django TaskResult of a runner job's row and its error history."""
        payload = queue.serializer.loads(record.payload)
        module_path, args, kwargs = payload["args"][:3]
        runner_kwargs = payload.get("kwargs") or {}
        task = _task_for(module_path, record, runner_kwargs.get("backend", self.alias), runner_kwargs.get("run_after"))
        return _task_result(task, record.id, record, self.alias, args, kwargs, errors)

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
        check = {"max_retries": validation.count, "timeout": validation.timeout}
        for key, value in self.job_options.items():
            try:
                check[key](key, value)
            except ValueError as exc:
                yield checks.Error(
                    f"TASKS[{self.alias!r}]['OPTIONS'][{key!r}] is {value!r}: {exc}",
                    hint="Use a whole number of retries (0 or more) for max_retries and seconds (more than 0) "
                         "for timeout.", id="taskito.E012",
                )
