"""The Django Tasks backend: ``@task`` functions enqueued on taskito and run by ``manage.py taskito_worker``."""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.utils import timezone

from taskito_django import compat, queue
from tests.django.conftest import effects, finish_all, manage, start_django_worker
from tests.support import Process, wait_until

if not compat.AVAILABLE:  # pragma: no cover - the django extra installs the backport where needed
    pytest.skip("neither django.tasks nor django_tasks is installed", allow_module_level=True)

from taskito_django.backends import RUNNER_NAME, TaskitoBackend  # noqa: E402

Status = compat.TaskResultStatus


def finished(result: Any, timeout: float = 30) -> Any:
    def done() -> bool:
        result.refresh()
        return result.is_finished

    wait_until(done, timeout, interval=0.05, message=f"Django task {result.id} to finish")
    return result


# -- in process -----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_enqueue_makes_a_taskito_job_and_a_ready_result() -> None:
    from djapp.jobs import multiply, send_email

    assert isinstance(compat.task_backends["default"], TaskitoBackend)
    result = multiply.enqueue(6, 7)
    assert result.status == Status.READY and result.backend == "default"
    job = queue.get_job(result.id).to_dict()
    assert job["task_name"] == RUNNER_NAME
    assert job["args"] == ["djapp.jobs.multiply", [6, 7], {}]
    assert (job["queue"], job["priority"], job["max_retries"]) == ("default", 0, 1)  # OPTIONS max_retries
    fetched = multiply.get_result(result.id)
    assert (fetched.status, fetched.args, fetched.task.func) == (Status.READY, [6, 7], multiply.func)

    email = send_email.enqueue("ann@example.com")
    job = queue.get_job(email.id).to_dict()
    assert (job["queue"], job["priority"]) == ("emails", 5)
    assert send_email.get_result(email.id).task.priority == 5


@pytest.mark.django_db
def test_run_after_defers_the_job() -> None:
    from djapp.jobs import multiply

    when = timezone.now() + timedelta(minutes=5)
    result = multiply.using(run_after=when).enqueue(1, 2)
    job = queue.get_job(result.id).to_dict()
    assert abs(job["scheduled_at"] - when.timestamp()) < 2
    assert abs((multiply.get_result(result.id).task.run_after - when).total_seconds()) < 1


@pytest.mark.django_db
def test_task_enqueued_signal_is_sent() -> None:
    from djapp.jobs import multiply

    seen: list[Any] = []

    def receiver(sender: Any, task_result: Any, **kwargs: Any) -> None:
        seen.append((sender, task_result.id, task_result.status))

    compat.task_enqueued.connect(receiver)
    try:
        result = multiply.enqueue(2, 2)
    finally:
        compat.task_enqueued.disconnect(receiver)
    assert seen == [(TaskitoBackend, result.id, Status.READY)]


@pytest.mark.django_db
def test_unknown_ids_and_bad_tasks_are_refused() -> None:
    from djapp.jobs import multiply

    with pytest.raises(compat.TaskResultDoesNotExist):
        multiply.get_result("nope")
    plain = queue.enqueue("djapp.tasks.add", args=(1, 2))  # a taskito job, not a Django task
    with pytest.raises(compat.TaskResultDoesNotExist):
        compat.task_backends["default"].get_result(plain.id)
    with pytest.raises(compat.InvalidTask, match="Queue 'nowhere' is not valid"):
        multiply.using(queue_name="nowhere")


@pytest.mark.django_db
def test_states_map_to_django_statuses() -> None:
    from djapp.jobs import broken, multiply

    retrying = broken.enqueue("x")
    [claimed] = queue.storage.claim("hand", ["default"], 1, 30)
    queue.storage.fail(claimed.id, claimed.attempt, "KeyError: 'x'", "Traceback...\nKeyError: 'x'", 60.0)
    result = broken.get_result(retrying.id)
    assert result.status == Status.READY and len(result.errors) == 1  # waits for its retry
    assert result.errors[0].exception_class_path == "builtins.KeyError"

    cancelled = multiply.enqueue(1, 1)
    queue.cancel_job(cancelled.id)
    result = multiply.get_result(cancelled.id)
    assert result.status == Status.FAILED
    assert result.errors[-1].exception_class_path == "taskito.exceptions.TaskCancelledError"

    done = multiply.enqueue(1, 1)
    finish_all()
    result = multiply.get_result(done.id)
    assert (result.status, result.return_value, result.attempts) == (Status.SUCCESSFUL, "done", 1)
    assert result.finished_at is not None and result.finished_at.tzinfo is not None


@pytest.mark.django_db(transaction=True)
def test_enqueue_on_commit_option(settings: Any) -> None:
    from djapp.jobs import multiply, send_email

    settings.TASKS = {"default": {"BACKEND": "taskito_django.backends.TaskitoBackend", "ENQUEUE_ON_COMMIT": True,
                                  "QUEUES": ["default", "emails"], "OPTIONS": {"max_retries": 2}}}
    with transaction.atomic():
        result = send_email.enqueue("cy@example.com")
        assert queue.get_job(result.id) is None
    job = queue.get_job(result.id).to_dict()
    assert (job["status"], job["queue"], job["priority"], job["max_retries"]) == ("pending", "emails", 5, 2)
    assert job["args"] == ["djapp.jobs.send_email", ["cy@example.com"], {}]
    assert send_email.get_result(result.id).status == Status.READY
    with pytest.raises(RuntimeError), transaction.atomic():
        rolled_back = multiply.enqueue(4, 4)
        raise RuntimeError
    assert queue.get_job(rolled_back.id) is None
    at_once = multiply.enqueue(5, 5)  # outside a transaction
    assert queue.get_job(at_once.id) is not None


@pytest.mark.django_db
def test_eager_mode_runs_django_tasks_inline(settings: Any) -> None:
    from djapp.jobs import broken, multiply

    settings.TASKITO_EAGER = True
    result = multiply.enqueue(6, 7)
    assert (result.status, result.return_value) == (Status.SUCCESSFUL, 42)
    finished_signals: list[str] = []

    def on_finished(sender: Any, task_result: Any, **kwargs: Any) -> None:
        finished_signals.append(task_result.status)

    compat.task_finished.connect(on_finished)
    try:
        failed = broken.enqueue("nope")  # OPTIONS max_retries=1: retried at once, as a worker would
    finally:
        compat.task_finished.disconnect(on_finished)
    assert failed.status == Status.FAILED
    assert failed.errors[0].exception_class_path == "builtins.KeyError"
    assert "KeyError: 'nope'" in failed.errors[0].traceback
    assert finished_signals == [Status.FAILED]  # once, when it gave up; not for the retried attempt
    assert queue.stats()["pending"] == 0


# -- on a real worker -------------------------------------------------------------------------------
@pytest.fixture
def worker(transactional_db: None, effects_file: Path) -> Any:
    process = start_django_worker("--concurrency", "2")
    yield process
    process.stop()


def test_tasks_run_on_the_worker_with_results_context_and_signals(worker: Process, effects_file: Path) -> None:
    from djapp.jobs import async_double, attempt_number, multiply, send_email

    product, context, doubled, email = (multiply.enqueue(6, 7), attempt_number.enqueue(), async_double.enqueue(21),
                                        send_email.enqueue("bob@example.com"))
    assert finished(product).status == Status.SUCCESSFUL and product.return_value == 42
    assert finished(context).return_value == 1
    assert finished(doubled).return_value == 42
    assert finished(email).return_value == {"sent_to": "bob@example.com"}  # on the "emails" queue
    assert product.started_at <= product.finished_at and product.worker_ids and product.attempts == 1
    lines = effects(effects_file)
    assert f"started {product.id} RUNNING TaskitoBackend" in lines
    assert f"finished {product.id} SUCCESSFUL" in lines


def test_failures_are_retried_then_failed_with_tracebacks_and_a_dead_letter(worker: Process,
                                                                             effects_file: Path) -> None:
    from djapp.jobs import broken

    result = finished(broken.enqueue("no such key"), timeout=40)
    assert result.status == Status.FAILED
    assert len(result.errors) == 2  # OPTIONS max_retries=1: two attempts
    assert {error.exception_class_path for error in result.errors} == {"builtins.KeyError"}
    assert result.errors[0].exception_class is KeyError
    assert "raise KeyError(message)" in result.errors[-1].traceback
    assert queue.get_job(result.id).status == "dead"
    assert [line for line in effects(effects_file) if line.startswith("finished")] == \
        [f"finished {result.id} FAILED"]  # once, when it gave up; not for the attempt that was retried
    replayed = queue.retry_dead(result.id)
    assert finished(broken.get_result(replayed), timeout=40).status == Status.FAILED


def test_timeouts_of_the_backend_options_apply(worker: Process) -> None:
    from djapp.jobs import slow

    started = time.monotonic()
    result = finished(slow.using(backend="short").enqueue(3), timeout=20)
    assert result.status == Status.FAILED and time.monotonic() - started < 3
    assert result.errors[0].exception_class_path == "builtins.TimeoutError"
    assert "timed out after 1s" in result.errors[0].traceback


@pytest.mark.parametrize("path", ["djapp.forged_import.payload", "os.system", "djapp.jobs.time"])
def test_a_forged_row_runs_nothing_and_imports_nothing(transactional_db: None, tmp_path: Path, path: str) -> None:
    """A job naming any dotted path (a module never imported, or something that is not a Django
    task) ends dead with an error saying why, and the worker imports nothing."""
    marker = tmp_path / "imported"
    forged = queue.enqueue(RUNNER_NAME, args=[path, [f"touch {marker}"], {}], kwargs={"backend": "default"})
    done = manage("taskito_worker", "--burst", env={"FORGED_MARKER": str(marker)})
    assert done.returncode == 0, done.stderr
    assert not marker.exists()
    job = queue.get_job(forged.id)
    assert job.status == "dead"
    assert "SuspiciousOperation" in job.error and repr(path) in job.error
    assert len(job.errors) == 1  # refused at once, not retried
    with pytest.raises(SuspiciousOperation, match="does not name a Django task"):
        compat.task_backends["default"].get_result(forged.id)
    assert "djapp.forged_import" not in sys.modules
