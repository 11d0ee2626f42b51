"""The Queue facade as users call it, in-process (workers are tested as subprocesses elsewhere)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest

from taskito import (
    ConfigurationError,
    JobNotFoundError,
    MaxRetriesExceededError,
    Queue,
    SerializationError,
    TaskCancelledError,
    TaskFailedError,
    WorkerLostError,
    current_job,
)
from taskito.storage import Completion
from tests.support import wait_until


def run_worker_thread(queue: Queue, **kwargs) -> threading.Thread:
    thread = threading.Thread(target=queue.run_worker, kwargs=kwargs, daemon=True)
    thread.start()
    wait_until(lambda: queue._worker is not None, message="the worker to start")
    return thread


def stop_worker(queue: Queue, thread: threading.Thread) -> None:
    queue.shutdown()
    thread.join(15)
    assert not thread.is_alive()


def test_defaults_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKITO_DB_PATH", str(tmp_path / "env" / "q.db"))
    monkeypatch.setenv("TASKITO_DEFAULT_RETRY", "7")
    monkeypatch.setenv("TASKITO_RESULT_TTL", "60")
    q = Queue()
    assert q.db_path == str(tmp_path / "env" / "q.db")
    assert (tmp_path / "env" / "q.db").exists()
    assert (q.default_retry, q.result_ttl, q.drain_timeout) == (7, 60.0, 30.0)
    assert Queue(db_path=str(tmp_path / "explicit.db"), default_retry=1).default_retry == 1


def test_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, db_path: str) -> None:
    monkeypatch.setenv("TASKITO_WORKERS", "many")
    with pytest.raises(ConfigurationError, match="TASKITO_WORKERS='many'"):
        Queue(db_path=db_path)


def test_missing_database_directory_is_created(tmp_path: Path) -> None:
    q = Queue(db_path=str(tmp_path / "a" / "b" / "jobs.db"))
    assert (tmp_path / "a" / "b" / "jobs.db").exists()
    q.close()


def test_unwritable_path_raises_configuration_error_naming_it(tmp_path: Path) -> None:
    # /sys refuses new files even to root, so this holds for every user running the suite.
    with pytest.raises(ConfigurationError, match="'/sys/taskito.db'"):
        Queue(db_path="/sys/taskito.db")
    with pytest.raises(ConfigurationError, match="/proc/taskito"):
        Queue(db_path="/proc/taskito/q.db")


def test_path_under_a_file_raises_configuration_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(ConfigurationError, match="not-a-dir"):
        Queue(db_path=str(blocker / "q.db"))


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigurationError, match="bogus.db"):
        Queue(db_path=str(bogus))


def test_unknown_backend_and_missing_postgres_url(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKITO_DB_URL", raising=False)
    with pytest.raises(ConfigurationError, match="unknown backend 'mysql'"):
        Queue(db_path=db_path, backend="mysql")
    with pytest.raises(ConfigurationError, match="TASKITO_DB_URL"):
        Queue(backend="postgres")


@pytest.mark.parametrize("kwargs", [{"result_ttl": -1}, {"drain_timeout": -5}, {"default_timeout": -1}])
def test_negative_settings_raise_value_error(db_path: str, kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Queue(db_path=db_path, **kwargs)


def test_negative_delay_and_timeout_raise_value_error(queue: Queue) -> None:
    @queue.task()
    def noop() -> None: ...

    with pytest.raises(ValueError, match="delay"):
        noop.apply_async(delay=-1)
    with pytest.raises(ValueError, match="timeout"):
        noop.apply_async(timeout=-0.5)
    with pytest.raises(ValueError, match="timeout"):
        queue.task(timeout=-1)(lambda: None)
    assert queue.stats()["pending"] == 0


@pytest.mark.parametrize("value", [0, 0.0, float("inf")])
def test_a_zero_or_endless_timeout_is_refused_rather_than_meaning_no_timeout(
        queue: Queue, db_path: str, monkeypatch: pytest.MonkeyPatch, value: float) -> None:
    @queue.task()
    def noop() -> None: ...

    shown = f"got {value!r}"
    with pytest.raises(ValueError, match=f"timeout must be .* greater than 0, {shown}"):
        queue.task(timeout=value)(lambda: None)
    with pytest.raises(ValueError, match=f"timeout must be .* greater than 0, {shown}"):
        noop.apply_async(timeout=value)
    with pytest.raises(ValueError, match=f"timeout must be .* greater than 0, {shown}"):
        queue.enqueue("by.name", timeout=value)
    with pytest.raises(ValueError, match=f"default_timeout must be .* greater than 0, {shown}"):
        Queue(db_path=db_path, default_timeout=value)
    monkeypatch.setenv("TASKITO_DEFAULT_TIMEOUT", str(value))
    with pytest.raises(ConfigurationError, match=f"invalid TASKITO_DEFAULT_TIMEOUT='{value}'"):
        Queue(db_path=db_path)
    assert queue.stats()["pending"] == 0


def test_unserializable_argument_is_named_and_nothing_is_written(queue: Queue) -> None:
    @queue.task(name="store")
    def store(a, b=None) -> None: ...

    with pytest.raises(SerializationError, match=r"argument 1 \(set\) of task 'store'"):
        store.delay(1, {2, 3})
    with pytest.raises(SerializationError, match=r"keyword argument 'b' \(object\)"):
        store.delay(1, b=object())
    with pytest.raises(SerializationError):
        store.map([(1,), (object(),)])
    assert queue.stats() == dict.fromkeys(queue.stats(), 0)


def test_bad_cron_fails_at_decoration(queue: Queue) -> None:
    with pytest.raises(ValueError, match="invalid cron expression 'every minute'"):
        queue.periodic(cron="every minute")
    with pytest.raises(ValueError, match="unknown timezone 'Mars/Olympus'"):
        queue.periodic(cron="0 * * * * *", timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="rate_limit"):
        queue.task(rate_limit="fast")


def test_plain_call_runs_the_function(queue: Queue) -> None:
    @queue.task()
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, 3) == 5
    assert add.name.endswith("add") and queue.stats()["pending"] == 0


def test_enqueue_options_and_map(queue: Queue) -> None:
    @queue.task(queue="emails", priority=3, max_retries=5, timeout=12)
    def send(to: str) -> str:
        return to

    job = send.delay("a@b")
    record = job.record
    assert (record.queue, record.priority, record.max_retries, record.timeout) == ("emails", 3, 5, 12)
    custom = send.apply_async(args=("x",), priority=9, queue="urgent", max_retries=0, timeout=1)
    assert (custom.record.queue, custom.record.priority, custom.record.max_retries) == ("urgent", 9, 0)
    jobs = send.map([("a",), ("b",), ("c",)])
    assert len({j.id for j in jobs}) == 3
    by_name = queue.enqueue("somewhere.else.task", args=(1,))
    assert by_name.record.task_name == "somewhere.else.task" and by_name.record.queue == "default"
    many = queue.enqueue_many(send.name, [("d",), ("e",)], kwargs_list=[None, None])
    assert len(many) == 2
    assert queue.stats_by_queue("emails")["pending"] == 6
    assert queue.default_queues() == ["default", "emails"]


def test_round_trip_with_in_process_worker(queue: Queue) -> None:
    @queue.task()
    def add(a: int, b: int) -> int:
        current_job.update_progress(50)
        return a + b

    thread = run_worker_thread(queue)
    try:
        job = add.delay(2, 3)
        assert job.result(timeout=10) == 5
        assert job.status == "complete" and job.progress == 50
        data = job.to_dict()
        assert data["args"] == [2, 3] and data["result"] == 5 and data["status"] == "complete"
    finally:
        stop_worker(queue, thread)


def test_result_errors(queue: Queue) -> None:
    @queue.task(max_retries=1, retry_backoff=0.01)
    def always_fails() -> None:
        raise RuntimeError("nope")

    @queue.task(dont_retry_on=[KeyError])
    def fails_once() -> None:
        raise KeyError("k")

    @queue.task()
    def slow() -> None: ...

    queue.pause("default")
    pending = slow.delay()
    with pytest.raises(TimeoutError, match="still pending"):
        pending.result(timeout=0.05)
    assert queue.cancel_job(pending.id)
    with pytest.raises(TaskCancelledError):
        pending.result(timeout=1)
    queue.resume("default")
    thread = run_worker_thread(queue)
    try:
        with pytest.raises(MaxRetriesExceededError, match="RuntimeError: nope") as info:
            always_fails.delay().result(timeout=10)
        assert len(queue.job_errors(info.value.job_id)) == 2
        with pytest.raises(TaskFailedError, match="KeyError") as info:
            fails_once.delay().result(timeout=10)
        assert not isinstance(info.value, MaxRetriesExceededError)
        assert len(queue.job_errors(info.value.job_id)) == 1
    finally:
        stop_worker(queue, thread)


def test_retry_on_limits_which_errors_retry(queue: Queue) -> None:
    calls: list[str] = []

    @queue.task(max_retries=3, retry_backoff=0.01, retry_on=[ConnectionError])
    def flaky(kind: str) -> str:
        calls.append(kind)
        if kind == "conn" and calls.count("conn") < 3:
            raise ConnectionError("try again")
        if kind == "value":
            raise ValueError("bad input")
        return "ok"

    thread = run_worker_thread(queue)
    try:
        assert flaky.delay("conn").result(timeout=10) == "ok"
        assert calls.count("conn") == 3
        with pytest.raises(TaskFailedError):
            flaky.delay("value").result(timeout=10)
        assert calls.count("value") == 1
    finally:
        stop_worker(queue, thread)


def test_hooks_fire_in_order(queue: Queue) -> None:
    events: list[tuple] = []
    queue.before_task(lambda name, args, kwargs: events.append(("before", args)))
    queue.after_task(lambda name, args, kwargs, result, error: events.append(("after", result, type(error))))
    queue.on_success(lambda name, args, kwargs, result: events.append(("success", result)))
    queue.on_failure(lambda name, args, kwargs, error: events.append(("failure", str(error))))

    @queue.task(max_retries=0)
    def double(x: int) -> int:
        if x < 0:
            raise ValueError("negative")
        return 2 * x

    thread = run_worker_thread(queue, concurrency=1)
    try:
        double.delay(4).result(timeout=10)
        with pytest.raises(TaskFailedError):
            double.delay(-1).result(timeout=10)
    finally:
        stop_worker(queue, thread)
    assert events == [("before", (4,)), ("after", 8, type(None)), ("success", 8),
                      ("before", (-1,)), ("after", None, ValueError), ("failure", "negative")]


def test_soft_timeout_and_current_job(queue: Queue) -> None:
    seen: dict = {}

    @queue.task(soft_timeout=0.01, max_retries=0)
    def careful() -> str:
        seen.update(id=current_job.id, task=current_job.task_name, queue=current_job.queue_name,
                    retry=current_job.retry_count)
        wait_until(lambda: current_job.elapsed > 0.02, message="the soft timeout to pass")
        current_job.check_timeout()
        return "not reached"

    thread = run_worker_thread(queue)
    try:
        job = careful.delay()
        with pytest.raises(TaskFailedError, match="SoftTimeLimitExceeded"):
            job.result(timeout=10)
    finally:
        stop_worker(queue, thread)
    assert seen == {"id": job.id, "task": careful.name, "queue": "default", "retry": 0}


def test_eager_mode_runs_inline(db_path: str) -> None:
    q = Queue(db_path=db_path, eager=True)

    @q.task()
    def add(a: int, b: int) -> int:
        return a + b

    @q.task()
    def broken() -> None:
        raise ValueError("eager boom")

    job = add.delay(2, 3)
    assert job.status == "complete" and job.result() == 5
    failed = broken.delay()
    assert failed.status == "dead"
    with pytest.raises(TaskFailedError, match="eager boom"):
        failed.result()
    assert [j.result() for j in add.map([(1, 1), (2, 2)])] == [2, 4]
    with pytest.raises(SerializationError):
        add.delay({1}, 2)
    assert q.stats()["pending"] == 0


def test_unknown_job_ids(queue: Queue) -> None:
    assert queue.get_job("nope") is None
    with pytest.raises(JobNotFoundError):
        queue.enqueue("x", depends_on="nope")
    from taskito import JobResult

    with pytest.raises(JobNotFoundError):
        JobResult(queue, "nope").refresh()


def test_unique_key_and_depends_on_through_the_api(queue: Queue) -> None:
    @queue.task()
    def step(n: int) -> int:
        return n

    first = step.apply_async(args=(1,), unique_key="k")
    again = step.apply_async(args=(2,), unique_key="k")
    assert first == again
    child = step.apply_async(args=(3,), depends_on=first)
    assert child.record.depends_on == [first.id]
    assert queue.cancel_job(first.id)
    assert child.status == "cancelled"


def test_a_timed_out_attempt_that_returns_late_leaves_its_retry_alone(db_path: str) -> None:
    q = Queue(db_path=db_path, lease_seconds=0.6)
    events: list[str] = []
    q.on_success(lambda name, args, kwargs, result: events.append(f"success {result}"))
    q.on_failure(lambda name, args, kwargs, error: events.append(f"failure {type(error).__name__}"))
    first_returned = threading.Event()

    @q.task(timeout=1.0, max_retries=2, retry_backoff=0.01)
    def slow_then_fast() -> str:
        if current_job.retry_count == 0:
            wait_until(lambda: current_job.elapsed > 1.3, message="the first attempt to outlive its timeout")
            first_returned.set()
            return "late"
        assert first_returned.wait(5)  # the stale attempt returns while the retry runs
        wait_until(lambda: current_job.elapsed > 0.8, message="the retry to outlive a lease period")
        return "retry"

    thread = run_worker_thread(q, concurrency=1)
    try:
        job = slow_then_fast.delay()
        assert job.result(timeout=15) == "retry"
        assert [e["error"] for e in job.errors] == ["TimeoutError: timed out after 1s"]
        assert q.enqueue(slow_then_fast.name, max_retries=0, timeout=5).status in ("pending", "running", "complete")
    finally:
        stop_worker(q, thread)
    assert events[:2] == ["failure TimeoutError", "success retry"], events
    q.close()


def test_a_task_raising_system_exit_fails_its_attempt(queue: Queue) -> None:
    @queue.task(max_retries=0)
    def quits() -> None:
        raise SystemExit(3)

    thread = run_worker_thread(queue)
    try:
        with pytest.raises(TaskFailedError, match="SystemExit: 3"):
            quits.delay().result(timeout=10)
    finally:
        stop_worker(queue, thread)


class Abort(BaseException):
    """A library's own control-flow signal: a BaseException, not an Exception."""


@pytest.mark.parametrize("raised", [asyncio.CancelledError, GeneratorExit, Abort])
def test_eager_mode_fails_and_retries_a_task_raising_any_base_exception(queue: Queue,
                                                                        raised: type[BaseException]) -> None:
    events: list[str] = []
    queue.after_task(lambda name, args, kwargs, result, error: events.append(f"after {type(error).__name__}"))
    queue.on_failure(lambda name, args, kwargs, error: events.append(f"failure {type(error).__name__}"))

    @queue.task(max_retries=1)
    def stops() -> None:
        raise raised("stop")

    @queue.task()
    def hooked() -> str:
        return "done"

    def hook(name: str, *_: object) -> None:
        if name == hooked.name:
            raise raised("hook")

    queue.eager = True
    job = stops.delay()  # as in a worker: the attempt fails, nothing escapes to the caller
    assert job.status == "dead" and [e["error"] for e in job.errors] == [f"{raised.__name__}: stop"] * 2
    with pytest.raises(MaxRetriesExceededError, match=f"{raised.__name__}: stop"):
        job.result()
    assert events == [f"after {raised.__name__}", f"failure {raised.__name__}"] * 2
    for kind in ("before_task", "after_task", "on_success"):
        getattr(queue, kind)(hook)
    assert hooked.delay().result() == "done"  # a hook's error does not fail the job


def test_on_failure_hears_about_lost_workers(db_path: str) -> None:
    q = Queue(db_path=db_path, lease_seconds=0.3)
    errors: list[BaseException] = []
    q.on_failure(lambda name, args, kwargs, error: errors.append(error))

    @q.task(max_retries=1)
    def orphan(x: int) -> int:
        return x

    job = orphan.delay(7)
    q.storage.claim("a-worker-that-died", ["default"], 1, lease_seconds=0.01)  # claimed, then never heard of
    thread = run_worker_thread(q)
    try:
        assert job.result(timeout=15) == 7
    finally:
        stop_worker(q, thread)
    assert len(errors) == 1 and isinstance(errors[0], WorkerLostError)
    assert "a-worker-that-died" in job.errors[0]["error"]
    q.close()


def test_rate_limit_spaces_jobs_out(queue: Queue) -> None:
    ran_at: list[float] = []

    @queue.task(rate_limit="20/s")
    def limited(i: int) -> int:
        ran_at.append(time.monotonic())
        return i

    jobs = limited.map([(i,) for i in range(6)])
    thread = run_worker_thread(queue, concurrency=2)
    try:
        for job in jobs:
            job.result(timeout=10)
    finally:
        stop_worker(queue, thread)
    # Six jobs at 20/s take five intervals of 50 ms, whatever the thread count; unlimited, they would all run
    # within a few ms. A first job started late (a loaded machine: 30 ms seen) shortens the span by as much.
    assert max(ran_at) - min(ran_at) >= 5 * 0.05 * 0.6, ran_at


def test_waiting_for_a_rate_limit_does_not_count_towards_the_timeout(queue: Queue) -> None:
    calls: list[int] = []

    @queue.task(rate_limit="4/s", timeout=0.3, max_retries=0)
    def limited(i: int) -> int:
        calls.append(i)
        return i

    jobs = limited.map([(i,) for i in range(4)])  # the last one waits ~0.75 s for its token
    thread = run_worker_thread(queue, concurrency=4)
    try:
        assert [job.result(timeout=10) for job in jobs] == [0, 1, 2, 3]
    finally:
        stop_worker(queue, thread)
    assert sorted(calls) == [0, 1, 2, 3]  # each ran once: no attempt was given up while it waited


def test_a_rate_limited_backlog_does_not_starve_other_tasks(queue: Queue) -> None:
    """Jobs a rate limit holds back stay in the queue until their slot comes, instead of filling the worker."""
    @queue.task(rate_limit="1/m")
    def limited(i: int) -> int:
        return i

    @queue.task()
    def urgent() -> str:
        return "done"

    backlog = limited.map([(i,) for i in range(30)])
    thread = run_worker_thread(queue, concurrency=2)
    try:
        wait_until(lambda: queue.stats()["completed"] == 1, 10, message="the first limited job")
        assert urgent.delay().result(timeout=10) == "done"
    finally:
        stop_worker(queue, thread)
    waiting = [job.refresh().record for job in backlog if job.status == "pending"]
    assert len(waiting) == 29 and all(record.worker_id is None for record in waiting)  # never claimed early


def test_a_job_that_expires_while_waiting_in_the_worker_is_cancelled_not_run(queue: Queue) -> None:
    ran: list[str] = []

    @queue.task()
    def work(tag: str, seconds: float) -> None:
        ran.append(tag)
        time.sleep(seconds)

    busy = work.delay("busy", 0.6)
    stale = work.apply_async(args=("stale", 0), expires=0.2)  # claimed with `busy`, waits behind it
    thread = run_worker_thread(queue, concurrency=1)
    try:
        busy.result(timeout=10)
        with pytest.raises(TaskCancelledError):
            stale.result(timeout=10)
    finally:
        stop_worker(queue, thread)
    assert stale.status == "cancelled" and "expired" in stale.error
    assert ran == ["busy"]


def test_a_higher_priority_job_claimed_later_starts_before_the_waiting_ones(queue: Queue) -> None:
    order: list[str] = []
    first_started = threading.Event()

    @queue.task()
    def step(tag: str) -> None:
        order.append(tag)
        if tag == "first":
            first_started.set()
            time.sleep(0.3)

    step.delay("first")
    low = [step.delay(f"low{i}") for i in range(3)]
    thread = run_worker_thread(queue, concurrency=1)
    try:
        assert first_started.wait(10)  # the worker now holds the low-priority jobs, waiting
        urgent = step.apply_async(args=("urgent",), priority=9)
        for job in [urgent, *low]:
            job.result(timeout=10)
    finally:
        stop_worker(queue, thread)
    assert order == ["first", "urgent", "low0", "low1", "low2"]


def test_a_result_that_cannot_be_serialized_fails_with_the_failure_hooks(queue: Queue) -> None:
    events: list[str] = []
    queue.on_success(lambda name, args, kwargs, result: events.append("success"))
    queue.on_failure(lambda name, args, kwargs, error: events.append(f"failure: {error}"))

    @queue.task(max_retries=2)
    def makes_a_set() -> set[int]:
        return {1, 2}

    thread = run_worker_thread(queue, concurrency=1)
    try:
        job = makes_a_set.delay()
        with pytest.raises(TaskFailedError, match="cannot be serialized"):
            job.result(timeout=10)
    finally:
        stop_worker(queue, thread)
    assert job.status == "dead" and len(job.errors) == 1  # retrying would fail the same way
    assert len(events) == 1 and events[0].startswith("failure: the result of ") and "set" in events[0]


def test_an_error_message_no_database_can_store_as_is_is_kept_escaped(
        engine_queue: Queue, caplog: pytest.LogCaptureFixture) -> None:
    """NUL (PostgreSQL text refuses it) and lone surrogates (not UTF-8) in an error: the failure is
    still recorded, with its traceback, not lost until the lease runs out."""
    from taskito.testing import run_jobs

    caplog.set_level(logging.CRITICAL, logger="taskito")  # pytest-xdist cannot ship a lone surrogate in a report

    @engine_queue.task(max_retries=0)
    def odd_failure() -> None:
        raise ValueError("header b'\x00\x01' in file \udcff.txt")

    job = odd_failure.delay()
    assert run_jobs(engine_queue) == 1
    assert job.status == "dead"
    [error] = job.errors
    assert error["error"] == "ValueError: header b'\\x00\x01' in file \\udcff.txt"
    assert "odd_failure" in error["traceback"]


@pytest.mark.parametrize(("options", "message"), [
    ({"priority": "high"}, "priority must be a whole number"),
    ({"priority": True}, "priority must be a whole number"),
    ({"priority": 2**40}, "priority must be a whole number"),
    ({"delay": float("nan")}, "delay must be a finite number of seconds"),
    ({"delay": float("inf")}, "delay must be a finite number of seconds"),
    ({"delay": "5"}, "delay must be a finite number of seconds"),
    ({"expires": float("nan")}, "expires must be a finite number of seconds"),
    ({"max_retries": 1.5}, "max_retries must be a whole number"),
    ({"unique_key": 123}, "unique_key must be a non-empty string"),
    ({"unique_key": ""}, "unique_key must be a non-empty string"),
    ({"queue": ""}, "queue must be a non-empty string"),
    ({"depends_on": 123}, "depends_on takes job ids or JobResults"),
])
def test_bad_options_are_named_and_nothing_is_written(engine_queue: Queue, options: dict, message: str) -> None:
    """The same clear error on both engines (a priority of "high" once stalled every SQLite claim)."""
    with pytest.raises(ValueError, match=message):
        engine_queue.enqueue("t", **options)
    with pytest.raises(ValueError, match=message):
        engine_queue.enqueue_many("t", [(1,), (2,)], **options)
    assert engine_queue.stats()["pending"] == 0


def test_explicit_settings_are_checked_like_the_environment_s(db_path: str) -> None:
    assert Queue(db_path=db_path, eager="false").eager is False
    with pytest.raises(ValueError, match="default_priority"):
        Queue(db_path=db_path, default_priority="x")


def test_a_nan_timeout_is_refused_rather_than_waiting_for_ever(queue: Queue) -> None:
    with pytest.raises(ValueError, match="timeout"):
        queue.enqueue("t").result(timeout=float("nan"))


def test_status_filters_take_the_stats_spelling_too(queue: Queue) -> None:
    job = queue.enqueue("t")
    [record] = queue.storage.claim("w", ["default"], 1, 30)
    queue.storage.complete([Completion(job.id, record.attempt, b"1")])
    assert [j.id for j in queue.list_jobs(status="completed")] == [job.id] == [
        j.id for j in queue.list_jobs(status="complete")]
    with pytest.raises(ValueError, match="unknown status 'done'"):
        queue.list_jobs(status="done")


def test_to_dict_reads_the_job_as_it_is_now(queue: Queue) -> None:
    job = queue.enqueue("t")
    assert job.to_dict()["status"] == "pending"
    assert queue.cancel_job(job.id)
    assert job.to_dict()["status"] == "cancelled"


def test_eager_mode_runs_a_job_the_way_a_worker_does(queue: Queue) -> None:
    calls: list[object] = []

    @queue.task(max_retries=2)
    def flaky(mapping: dict) -> None:
        calls.append(mapping)
        raise ConnectionError("down")

    @queue.task()
    def returns_an_object() -> object:
        return object()

    @queue.task()
    def pair() -> tuple[int, int]:
        return (1, 2)

    keys = set(queue.enqueue("t").to_dict())
    queue.eager = True
    job = flaky.delay({1: "x"})
    assert calls == [{"1": "x"}] * 3  # arguments as a worker decodes them; two retries
    with pytest.raises(MaxRetriesExceededError):
        job.result()
    assert job.status == "dead" and len(job.errors) == 3
    with pytest.raises(TaskFailedError, match="cannot be serialized"):
        returns_an_object.delay().result()
    done = pair.delay()
    assert done.result() == [1, 2]  # as a worker's result comes back
    assert set(done.to_dict()) == keys
    with pytest.raises(ValueError, match="delay"):
        pair.apply_async(delay=-1)
    assert pair.apply_async(depends_on=done).result() == [1, 2]  # as in production code; no effect here
    assert pair.map([()], depends_on=[done])[0].status == "complete"


def test_two_schedules_of_one_task_need_two_names(queue: Queue) -> None:
    @queue.periodic(cron="*/2 * * * * *", name="every-two-seconds", args=(2,))
    @queue.periodic(cron="* * * * * *", args=(1,))
    def tick(n: int) -> int:
        return n

    assert [(spec.name, spec.args) for spec in queue.periodic_tasks] == [
        (tick.name, (1,)), ("every-two-seconds", (2,))]
    with pytest.raises(ValueError, match="is declared already"):
        queue.periodic(cron="0 * * * * *")(tick)


def test_periodic_arguments_json_cannot_hold_fail_at_declaration(queue: Queue) -> None:
    import datetime

    with pytest.raises(SerializationError):
        @queue.periodic(cron="0 0 * * * *", args=(datetime.date(2026, 1, 1),))
        def report(day: object) -> None: ...


def test_a_schedule_removed_from_the_code_is_not_fired(queue: Queue) -> None:
    from taskito.storage import PeriodicDef
    from taskito.worker.scheduler import Scheduler

    @queue.periodic(cron="* * * * * *")
    def kept() -> None: ...

    now = time.time()
    payload = queue.encode_payload("old.task", (), {})
    for name in ("old.task", kept.name):  # "old.task": declared by an earlier release, due now
        queue.storage.register_periodic(PeriodicDef(name, name, "* * * * * *", payload, "default", None, now - 1))
    Scheduler(queue).fire_due()
    assert [job.task_name for job in queue.list_jobs()] == [kept.name]


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def test_an_exception_whose_str_raises_is_an_ordinary_failed_attempt(queue: Queue) -> None:
    @queue.task(max_retries=1, retry_backoff=0.01)
    def fails_oddly() -> None:
        raise UnprintableError()

    thread = run_worker_thread(queue, concurrency=1)
    try:
        job = fails_oddly.delay()
        with pytest.raises(TaskFailedError):
            job.result(timeout=10)
        assert [e["error"] for e in job.errors] == ["UnprintableError: <its str() raised>"] * 2
        assert job.status == "dead"
    finally:
        stop_worker(queue, thread)


@pytest.mark.parametrize("name, value, reason", [
    ("TASKITO_WORKERS", "-1", "workers must be a whole number, zero or more"),
    ("TASKITO_DEFAULT_RETRY", "-1", "default_retry must be a whole number, zero or more"),
    ("TASKITO_RESULT_TTL", "-5", "result_ttl must be a finite number of seconds, zero or more"),
    ("TASKITO_LEASE_SECONDS", "0", "lease_seconds must be greater than 0"),
    ("TASKITO_POOL_SIZE", "0", "pool_size must be a whole number, 1 or more"),
    ("TASKITO_SERIALIZER", "yaml", "unknown serializer 'yaml'"),
    ("TASKITO_BACKEND", "mysql", "unknown backend 'mysql'"),
    ("TASKITO_SCHEMA", "Bad-Name", "is not a plain identifier"),
    ("TASKITO_EAGER", "maybe", "expected a boolean"),
])
def test_a_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, db_path: str, name: str,
                                                    value: str, reason: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=f"invalid {name}='{value}': .*{reason}"):
        Queue(db_path=db_path)
