"""TaskitoBackend against what Django's Tasks framework promises (Django 6's django.tasks, the backport).

Written for taskito from the behaviour Django documents for its own backends (ImmediateBackend,
the database backend): the same TaskResult whoever asks, signals for every ending, eager mode as
ImmediateBackend, the worker's command-line options. Jobs run on ``manage.py taskito_worker``.
Every test runs with the queue on SQLite, then on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import SuspiciousOperation
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from taskito_django import compat, queue
from tests.conftest import PG_URL
from tests.django.conftest import start_django_worker
from tests.support import Process, wait_until

if not compat.AVAILABLE:  # pragma: no cover - the django extra installs the backport where needed
    pytest.skip("neither django.tasks nor django_tasks is installed", allow_module_level=True)

from taskito_django.backends import RUNNER_NAME  # noqa: E402

Status = compat.TaskResultStatus
BACKEND = "taskito_django.backends.TaskitoBackend"


@pytest.fixture(autouse=True, params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The project queue on SQLite (the test's file), then in a fresh PostgreSQL schema; workers too."""
    if request.param == "postgres":
        chosen = {"TASKITO_BACKEND": "postgres", "TASKITO_DB_URL": PG_URL,
                  "TASKITO_SCHEMA": request.getfixturevalue("pg_schema")}
        for name, value in chosen.items():
            setattr(settings, name, value)
            monkeypatch.setenv(name, value)
    assert queue.backend == request.param
    yield request.param
    if queue._is_built:  # type: ignore[attr-defined]
        queue.close()  # its connections: the next settings change builds a new queue


@pytest.fixture
def plain_tasks(settings: Any) -> None:
    """TASKS as a Django project writes it: no OPTIONS (tasks run once, as on Django's backends)."""
    settings.TASKS = {"default": {"BACKEND": BACKEND, "QUEUES": ["default", "emails", "other"]},
                      "second": {"BACKEND": BACKEND, "QUEUES": ["second"]}}


@pytest.fixture
def signals() -> Iterator[list[tuple[str, Any, Any]]]:
    """Every task_enqueued/started/finished as (signal, id, status), in order."""
    seen: list[tuple[str, Any, Any]] = []
    receivers = {}
    for name in ("task_enqueued", "task_started", "task_finished"):
        def receiver(sender: Any, task_result: Any, _name: str = name, **kwargs: Any) -> None:
            seen.append((_name, task_result.id, task_result.status))

        receivers[name] = receiver
        getattr(compat, name).connect(receiver)
    yield seen
    for name, receiver in receivers.items():
        getattr(compat, name).disconnect(receiver)


def burst_worker(*args: str) -> str:
    """``manage.py taskito_worker --burst ARGS`` in this process; returns what it printed."""
    out = StringIO()
    call_command("taskito_worker", "--burst", "--concurrency", "1", *args, stdout=out, stderr=out)
    return out.getvalue()


# -- 1. A result is the same object whoever asks ----------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_enqueue_returns_what_get_result_and_refresh_give(plain_tasks: None) -> None:
    from djapp.jobs import multiply, noop, send_email

    soon = timezone.now() + timedelta(hours=1)
    for result in (noop.enqueue(1, two=3), send_email.enqueue("ann@example.com"),
                   multiply.using(priority=7, run_after=soon, queue_name="other").enqueue(2, 3)):
        assert result.enqueued_at is not None and result.status == Status.READY
        assert result == result.task.get_result(result.id)
        assert result == compat.task_backends["default"].get_result(result.id)
        before = dataclasses.asdict(result)
        result.refresh()
        assert dataclasses.asdict(result) == before


@pytest.mark.django_db(transaction=True)
def test_async_enqueue_get_result_and_refresh_agree(plain_tasks: None) -> None:
    from djapp.jobs import noop, noop_async

    async def scenario() -> None:
        for task in (noop, noop_async):
            result = await task.aenqueue(5)
            assert result == await task.aget_result(result.id)
            before = dataclasses.asdict(result)
            await result.arefresh()
            assert dataclasses.asdict(result) == before

    asyncio.run(scenario())


@pytest.mark.django_db(transaction=True)
def test_enqueue_on_commit_result_is_complete_once_committed(settings: Any, signals: list[Any]) -> None:
    from djapp.jobs import noop

    settings.TASKS = {"default": {"BACKEND": BACKEND, "ENQUEUE_ON_COMMIT": True}}
    with transaction.atomic():
        result = noop.enqueue()
        assert result.enqueued_at is None and queue.get_job(result.id) is None and signals == []
    assert signals == [("task_enqueued", result.id, Status.READY)]
    assert result.enqueued_at is not None and result == noop.get_result(result.id)


# -- 2. Signals for every ending ---------------------------------------------------------------------
@pytest.mark.django_db
def test_task_enqueued_carries_the_job_id(plain_tasks: None, settings: Any, signals: list[Any]) -> None:
    from djapp.jobs import noop

    result = noop.enqueue()
    assert signals == [("task_enqueued", result.id, Status.READY)]
    settings.TASKITO_EAGER = True
    signals.clear()
    eager = noop.enqueue()
    assert eager.id and signals[0] == ("task_enqueued", eager.id, Status.READY)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("kind", "exception_path"), [
    ("value", "builtins.ValueError"), ("exit", "builtins.SystemExit"), ("halt", "djapp.jobs.Halt"),
])
def test_every_failure_on_a_worker_is_finished_and_failed(plain_tasks: None, signals: list[Any], kind: str,
                                                           exception_path: str) -> None:
    from djapp.jobs import noop, raise_named

    failing, after = raise_named.enqueue(kind), noop.enqueue()
    burst_worker()
    assert ("task_finished", failing.id, Status.FAILED) in signals
    assert signals.count(("task_finished", failing.id, Status.FAILED)) == 1
    failing.refresh()
    assert failing.status == Status.FAILED and failing.is_finished
    assert [error.exception_class_path for error in failing.errors] == [exception_path]
    assert failing.errors[0].traceback.rstrip().endswith(f"failed due to {exception_path.rsplit('.', 1)[1]}")
    assert failing.started_at >= failing.enqueued_at and failing.finished_at >= failing.started_at
    assert noop.get_result(after.id).status == Status.SUCCESSFUL  # the worker went on


# -- 3. Eager mode is ImmediateBackend's equal -------------------------------------------------------
@pytest.mark.django_db
def test_eager_results_are_finished_like_immediate_backends(plain_tasks: None, settings: Any,
                                                            signals: list[Any]) -> None:
    from djapp.jobs import multiply, noop_async, own_id, raise_named, unserializable_result

    settings.TASKITO_EAGER = True
    for task, args, status in ((multiply, (6, 7), Status.SUCCESSFUL), (noop_async, (), Status.SUCCESSFUL),
                               (raise_named, ("exit",), Status.FAILED), (raise_named, ("halt",), Status.FAILED),
                               (unserializable_result, (), Status.FAILED)):
        result = task.enqueue(*args)
        assert result.status == status and result.is_finished
        assert result.started_at is not None and result.last_attempted_at is not None
        assert result.enqueued_at <= result.started_at <= result.finished_at
        assert result.attempts == 1
    assert multiply.enqueue(6, 7).return_value == 42
    identified = own_id.enqueue()
    assert identified.return_value == identified.id
    assert [name for name, _, _ in signals[:3]] == ["task_enqueued", "task_started", "task_finished"]


@pytest.mark.django_db
def test_eager_keyboard_interrupt_propagates_unreported(plain_tasks: None, settings: Any, signals: list[Any],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    from djapp.jobs import raise_named

    settings.TASKS = {"default": {"BACKEND": BACKEND, "OPTIONS": {"max_retries": 3}}}
    settings.TASKITO_EAGER = True
    with caplog.at_level(logging.ERROR), pytest.raises(KeyboardInterrupt):
        raise_named.enqueue("interrupt")
    assert [name for name, _, _ in signals] == ["task_enqueued", "task_started"]  # not retried, not finished
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("django")]


@pytest.mark.django_db
def test_eager_mode_says_results_cannot_be_fetched(plain_tasks: None, settings: Any) -> None:
    from djapp.jobs import multiply

    settings.TASKITO_EAGER = True
    backend = compat.task_backends["default"]
    assert backend.supports_get_result is False
    result = multiply.enqueue(1, 2)
    for fetch in (lambda: backend.get_result(result.id), result.refresh, lambda: asyncio.run(result.arefresh())):
        with pytest.raises(NotImplementedError, match="does not support retrieving or refreshing results"):
            fetch()
    settings.TASKITO_EAGER = False
    assert compat.task_backends["default"].supports_get_result is True


# -- 4. Fields mean what Django says -----------------------------------------------------------------
@pytest.fixture
def worker(transactional_db: None, effects_file: Path) -> Iterator[Process]:
    process = start_django_worker("--concurrency", "2")
    yield process
    process.stop()


def test_started_at_is_the_first_attempt_and_last_attempted_at_moves(worker: Process) -> None:
    from djapp.jobs import fail_first_attempt

    result = fail_first_attempt.enqueue()  # the test project's OPTIONS: max_retries 1

    def attempts(count: int) -> bool:
        result.refresh()
        return result.attempts >= count and result.last_attempted_at is not None

    wait_until(lambda: attempts(1), 20, interval=0.05, message="the first attempt")
    first = result.started_at
    wait_until(lambda: result.refresh() or result.status == Status.SUCCESSFUL, 30, interval=0.05,
               message="the retry to succeed")
    assert result.return_value == 2 and result.attempts == 2 and len(result.errors) == 1
    assert result.started_at == first
    assert result.last_attempted_at > result.started_at
    assert result.finished_at >= result.last_attempted_at


@pytest.mark.django_db
def test_a_job_naming_no_task_is_a_suspicious_operation(plain_tasks: None) -> None:
    from djapp.jobs import noop

    for path in ("djapp.jobs.Halt", "djapp.jobs.no_such_task", "subprocess.check_output", "missing.module.func"):
        forged = queue.enqueue(RUNNER_NAME, args=[path, [], {}], kwargs={"backend": "default"})
        with pytest.raises(SuspiciousOperation, match=f"{path!r} does not name a Django task"):
            compat.task_backends["default"].get_result(forged.id)
    wrong_backend = queue.enqueue(RUNNER_NAME, args=[noop.module_path, [], {}], kwargs={"backend": "nowhere"})
    with pytest.raises(SuspiciousOperation, match="'nowhere', which is not a TaskitoBackend"):
        compat.task_backends["default"].get_result(wrong_backend.id)


@pytest.mark.django_db(transaction=True)
def test_past_run_after_orders_by_run_after(plain_tasks: None, signals: list[Any]) -> None:
    from djapp.jobs import own_id

    now = timezone.now()
    late = own_id.using(run_after=now - timedelta(minutes=1)).enqueue()
    early = own_id.using(run_after=now - timedelta(minutes=10)).enqueue()
    plain = own_id.enqueue()
    urgent = own_id.using(priority=10, run_after=now - timedelta(seconds=1)).enqueue()
    future = own_id.using(run_after=now + timedelta(hours=1)).enqueue()
    burst_worker()  # one thread: jobs start in the order they are claimed
    started = [job_id for name, job_id, _ in signals if name == "task_started"]
    assert started == [urgent.id, early.id, late.id, plain.id]
    assert own_id.get_result(future.id).status == Status.READY


# -- 5. Worker options ---------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_worker_backend_option_serves_that_backends_queues(plain_tasks: None) -> None:
    from djapp.jobs import noop

    first, second = noop.enqueue(), noop.using(backend="second", queue_name="second").enqueue()
    burst_worker("--backend", "second")
    assert (noop.get_result(first.id).status, noop.get_result(second.id).status) == (Status.READY,
                                                                                      Status.SUCCESSFUL)


@pytest.mark.django_db(transaction=True)
def test_worker_exclude_queues(plain_tasks: None) -> None:
    from djapp.jobs import noop, send_email

    plain, email = noop.enqueue(), send_email.enqueue("x@example.com")
    burst_worker("--exclude-queues", "emails,nothing")
    assert noop.get_result(plain.id).status == Status.SUCCESSFUL
    assert send_email.get_result(email.id).status == Status.READY


@pytest.mark.django_db(transaction=True)
def test_worker_max_tasks_stops_after_that_many(plain_tasks: None) -> None:
    from djapp.jobs import noop

    results = [noop.enqueue(n) for n in range(5)]
    burst_worker("--max-tasks", "2")
    statuses = [noop.get_result(r.id).status for r in results]
    assert statuses.count(Status.SUCCESSFUL) == 2 and statuses.count(Status.READY) == 3


def test_worker_max_tasks_stops_a_running_worker(transactional_db: None, effects_file: Path) -> None:
    from djapp.jobs import noop

    process = start_django_worker("--max-tasks", "3", "--concurrency", "2")
    try:
        results = [noop.enqueue(n) for n in range(5)]
        assert process.wait(timeout=30) == 0
    finally:
        process.stop()
    statuses = [noop.get_result(r.id).status for r in results]
    assert statuses.count(Status.SUCCESSFUL) == 3 and statuses.count(Status.READY) == 2


@pytest.mark.django_db
@pytest.mark.parametrize(("args", "message"), [
    (["--backend", "nowhere"], "The connection 'nowhere' doesn't exist"),
    (["--backend", "immediate"], "Backend 'immediate' is not a TaskitoBackend"),
    (["--max-tasks", "0"], "--max-tasks"),
    (["--exclude-queues", "default,emails,other,reports,second"], "leaves no queue to serve"),
])
def test_worker_refuses_bad_options(plain_tasks: None, settings: Any, args: list[str], message: str) -> None:
    from django.core.management import CommandError

    settings.TASKS = {**settings.TASKS, "immediate": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    with pytest.raises(CommandError, match=message):
        burst_worker(*args)
