"""Bad values fail loudly, the same on both engines: taskito's own error naming the value, nothing
written, and the queue as usable afterwards (never a RecursionError, an OverflowError, a
UnicodeEncodeError or a database driver's error)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from taskito import (
    ConfigurationError,
    InvalidValueError,
    JobNotFoundError,
    JobResult,
    Queue,
    SerializationError,
    TaskitoError,
    current_job,
)
from taskito import config as taskito_config
from taskito.storage import JobRecord
from taskito.testing import run_jobs
from taskito.validation import MAX_NAME_LENGTH
from taskito.worker.retry import MAX_BACKOFF, retry_delay
from tests.support import run_cli
from tests.worker.conftest import APPS

NAN, INF = float("nan"), float("inf")
PYTHONPATH = os.pathsep.join(filter(None, [str(APPS), os.environ.get("PYTHONPATH")]))  # this tree's taskito too
HUGE = 2**70
MEGABYTE = "x" * 1_000_000
BAD_NAMES = {"NUL": "a\x00b", "lone surrogate": "a\ud800", "1 MB": MEGABYTE, "empty": ""}


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def assert_nothing_written(queue: Queue) -> None:
    assert queue.stats() == dict.fromkeys(queue.stats(), 0)
    assert queue.list_jobs() == [] and queue.paused_queues() == []


def assert_still_usable(queue: Queue) -> None:
    job = queue.enqueue("t", args=(1,), unique_key="after", priority=5)
    assert queue.get_job(job.id).to_dict()["args"] == [1]
    assert queue.cancel_job(job.id) and job.status == "cancelled"


# Each: what it does (enqueue, enqueue_many and apply_async-style options), what it must raise, and a
# piece of the message naming the value.
BAD_ENQUEUES: list[tuple[str, Callable[[Queue], Any], type[TaskitoError], str]] = [
    ("list nested 100,000 deep", lambda q: q.enqueue("t", args=(nested(100_000),)), SerializationError,
     r"argument 0 \(list\) of task 't'.*nest more than 200 levels"),
    ("list nested 250 deep", lambda q: q.enqueue("t", kwargs={"tree": nested(250)}), SerializationError,
     "keyword argument 'tree'.*nest more than 200 levels"),
    ("lone surrogate argument", lambda q: q.enqueue("t", args=("ok", "\ud800")), SerializationError,
     r"argument 1 \(str\).*surrogates not allowed"),
    ("integer of 5000 digits", lambda q: q.enqueue("t", args=(10**5000,)), SerializationError,
     r"argument 0 \(int\).*integer string conversion"),
    ("NaN argument", lambda q: q.enqueue("t", args=(NAN,)), SerializationError, "not JSON compliant"),
    *[(f"{label} task name", lambda q, v=value: q.enqueue(v), InvalidValueError, "task name")
      for label, value in BAD_NAMES.items()],
    *[(f"{label} queue", lambda q, v=value: q.enqueue("t", queue=v), InvalidValueError, "queue")
      for label, value in BAD_NAMES.items()],
    *[(f"{label} unique key", lambda q, v=value: q.enqueue("t", unique_key=v), InvalidValueError, "unique_key")
      for label, value in BAD_NAMES.items()],
    *[(f"{option}={value!r}", lambda q, o=option, v=value: q.enqueue("t", **{o: v}), InvalidValueError, option)
      for option in ("priority", "max_retries", "delay", "timeout", "expires") for value in (NAN, INF, -INF, HUGE)],
    ("priority=2**31", lambda q: q.enqueue("t", priority=2**31), InvalidValueError, "priority"),
    ("max_retries=2**31", lambda q: q.enqueue("t", max_retries=2**31), InvalidValueError, "max_retries"),
    *[(f"{label} dependency", lambda q, v=value: q.enqueue("t", depends_on=[v]), JobNotFoundError, "not a job id")
      for label, value in BAD_NAMES.items() if value],
    ("arguments as a string", lambda q: q.enqueue("t", args="abc"), InvalidValueError, "args must be a list"),
    ("keyword arguments as a list", lambda q: q.enqueue("t", kwargs=[("a", 1)]), InvalidValueError,
     "kwargs a dict"),
    ("a batch with one bad argument", lambda q: q.enqueue_many("t", [(1,), (nested(300),)]), SerializationError,
     "nest more than 200 levels"),
    ("a batch with a huge priority", lambda q: q.enqueue_many("t", [(1,), (2,)], priority=HUGE), InvalidValueError,
     "priority"),
]


def test_bad_enqueues_raise_taskito_s_error_and_write_nothing(engine_queue: Queue) -> None:
    for label, enqueue, error, message in BAD_ENQUEUES:
        with pytest.raises(error, match=message) as raised:
            enqueue(engine_queue)
        assert len(str(raised.value)) < 600, label  # a 1 MB value is named by its start, not quoted whole
        assert_nothing_written(engine_queue)
    assert_still_usable(engine_queue)


def test_a_huge_integer_argument_and_result_round_trip_exactly(engine_queue: Queue) -> None:
    """JSON holds integers of any size and taskito stores the JSON as bytes: nothing is lost."""
    @engine_queue.task()
    def double(value: int, tree: dict[str, Any]) -> list[Any]:
        return [value * 2, tree]

    tree = {"big": -(2**200), "deep": nested(150), "text": "[[[{{{" * 100}  # brackets in strings are text
    job = double.delay(HUGE, tree)
    assert engine_queue.get_job(job.id).to_dict()["args"] == [HUGE, tree]
    assert run_jobs(engine_queue) == 1
    assert job.result(timeout=5) == [2 * HUGE, tree]


def test_a_result_nested_too_deep_ends_the_job_dead_with_the_reason(engine_queue: Queue) -> None:
    @engine_queue.task(max_retries=3)
    def deep() -> list[Any]:
        return nested(100_000)

    job = deep.delay()
    assert run_jobs(engine_queue) == 1
    assert job.status == "dead" and "nest more than 200 levels" in job.error
    assert len(job.errors) == 1  # the same result would fail again: not retried
    assert_after = engine_queue.enqueue("t")
    assert engine_queue.get_job(assert_after.id).status == "pending"


BAD_IDS = {**BAD_NAMES, "uppercase": "0123456789ABCDEF0123456789ABCDEF", "short": "0123abcd"}


def test_a_malformed_job_id_finds_nothing(engine_queue: Queue) -> None:
    kept = engine_queue.enqueue("t")
    for label, bad in BAD_IDS.items():
        assert engine_queue.get_job(bad) is None, label
        assert engine_queue.cancel_job(bad) is False, label
        assert engine_queue.job_errors(bad) == [], label
        assert engine_queue.delete_dead(bad) is False, label
        with pytest.raises(JobNotFoundError):
            engine_queue.retry_dead(bad)
        with pytest.raises(JobNotFoundError):
            JobResult(engine_queue, bad).result(timeout=0)
    for not_a_string in (kept, None, 12345):  # a mistake in the calling code, not an id that finds nothing
        for lookup in (engine_queue.get_job, engine_queue.cancel_job, engine_queue.retry_dead):
            with pytest.raises(InvalidValueError, match="a job id is a string"):
                lookup(not_a_string)
    assert [job.id for job in engine_queue.list_jobs()] == [kept.id] and kept.status == "pending"


def test_names_no_queue_can_have_find_nothing_and_cannot_be_paused(engine_queue: Queue) -> None:
    engine_queue.enqueue("t")
    for label, bad in BAD_NAMES.items():
        assert engine_queue.list_jobs(queue=bad) == [] and engine_queue.list_jobs(task_name=bad) == [], label
        assert engine_queue.stats_by_queue(bad) == dict.fromkeys(engine_queue.stats(), 0), label
        for operate in (engine_queue.pause, engine_queue.resume):
            with pytest.raises(InvalidValueError, match="queue"):
                operate(bad)
    assert engine_queue.paused_queues() == [] and engine_queue.stats()["pending"] == 1
    longest = "q" * MAX_NAME_LENGTH  # the limit itself is fine
    engine_queue.pause(longest)
    assert engine_queue.paused_queues() == [longest]


def test_bad_numbers_for_waits_purges_and_limits_are_refused(engine_queue: Queue) -> None:
    job = engine_queue.enqueue("t")
    for bad in (NAN, INF, -INF, HUGE, -1):
        with pytest.raises(InvalidValueError, match="timeout"):
            job.result(timeout=bad)
        for purge in (engine_queue.purge_completed, engine_queue.purge_dead, engine_queue.purge_cancelled):
            with pytest.raises(InvalidValueError, match="older_than"):
                purge(older_than=bad)
    for option in ("limit", "offset"):
        for bad in (HUGE, -1, NAN, 1.5):
            with pytest.raises(InvalidValueError, match=option):
                engine_queue.list_jobs(**{option: bad})
    assert engine_queue.get_job(job.id).status == "pending"


def test_progress_must_be_a_number_from_0_to_100(engine_queue: Queue) -> None:
    refused: list[str] = []

    @engine_queue.task()
    def report() -> None:
        for bad in (NAN, INF, -INF, HUGE, 101, -1, "50", True):
            try:
                current_job.update_progress(bad)
            except InvalidValueError as exc:
                refused.append(str(exc))
        current_job.update_progress(42)

    job = report.delay()
    assert run_jobs(engine_queue) == 1
    assert job.status == "complete" and job.progress == 42
    assert len(refused) == 8 and all(text.startswith("progress must be a number between 0 and 100")
                                     for text in refused)


# -- declarations: decorators and periodic schedules ----------------------------------------------
BAD_DECLARATIONS: list[tuple[str, Callable[[Queue], Any], type[TaskitoError], str]] = [
    *[(f"task {option}={value!r}", lambda q, o=option, v=value: q.task(**{o: v}), InvalidValueError, option)
      for option in ("timeout", "soft_timeout", "expires", "retry_backoff", "priority", "max_retries")
      for value in (NAN, INF, HUGE)],
    *[(f"{label} task name", lambda q, v=value: q.task(name=v)(lambda: None), InvalidValueError, "task name")
      for label, value in BAD_NAMES.items() if value],
    *[(f"{label} task queue", lambda q, v=value: q.task(queue=v), InvalidValueError, "queue")
      for label, value in BAD_NAMES.items()],
    *[(f"rate_limit {rate}", lambda q, r=rate: q.task(rate_limit=r), InvalidValueError, "rate_limit")
      for rate in ("nan/s", "inf/m", "1e999/h", "-inf/s")],
    *[(f"{label} periodic name", lambda q, v=value: q.periodic("* * * * * *", name=v), InvalidValueError,
       "periodic name") for label, value in BAD_NAMES.items() if value],
    *[(f"{label} periodic queue", lambda q, v=value: q.periodic("* * * * * *", queue=v), InvalidValueError, "queue")
      for label, value in BAD_NAMES.items()],
    *[(f"timezone {label}", lambda q, v=value: q.periodic("* * * * * *", timezone=v), InvalidValueError,
       "unknown timezone") for label, value in {**BAD_NAMES, "number": 5}.items()],
    ("periodic arguments nested too deep", lambda q: q.periodic("* * * * * *", args=(nested(100_000),))(
        lambda _tree: None), SerializationError, "nest more than 200 levels"),
]


def test_bad_declarations_are_refused_and_register_nothing(queue: Queue) -> None:
    for label, declare, error, message in BAD_DECLARATIONS:
        with pytest.raises(error, match=message):
            declare(queue)
        assert queue.periodic_tasks == [], label


def test_a_worker_refuses_bad_concurrency_and_queue_names_before_starting(queue: Queue) -> None:
    for options in ({"concurrency": NAN}, {"concurrency": HUGE}, {"concurrency": 0}, {"concurrency": 2.5},
                    {"queues": ["ok", "a\x00b"]}, {"queues": [MEGABYTE]}, {"queues": ["\udcff"]}):
        with pytest.raises(InvalidValueError):
            queue.run_worker(burst=True, **options)
    assert queue.workers() == []


def test_the_retry_backoff_of_a_job_with_thousands_of_retries_stays_finite() -> None:
    record = JobRecord(id="0" * 32, task_name="t", queue="default", status="running", priority=0, payload=b"",
                       retry_count=5000, max_retries=2**31 - 1)
    assert 0 < retry_delay(record, None, None) <= 1.5 * MAX_BACKOFF


# -- settings: environment variables, Queue(...) arguments, Django settings / Flask config ---------------
NUMERIC_SETTINGS = [setting for setting in taskito_config.SETTINGS if setting.parse not in (str, bool)
                    and setting.kwarg != "eager"]  # every setting read as a number


def test_the_numeric_settings_are_the_ones_expected() -> None:
    assert {setting.kwarg for setting in NUMERIC_SETTINGS} == {
        "workers", "default_retry", "default_timeout", "default_priority", "result_ttl", "drain_timeout",
        "pool_size", "lease_seconds", "async_concurrency", "cancel_grace", "max_log_lines", "metrics_retention"}


@pytest.mark.parametrize("setting", NUMERIC_SETTINGS, ids=lambda setting: setting.env)
def test_numeric_settings_refuse_nan_infinity_and_huge_values(setting: taskito_config.Setting, db_path: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    for raw in ("nan", "NaN", "inf", "-inf", "1e999", str(HUGE)):
        monkeypatch.setenv(setting.env, raw)
        with pytest.raises(ConfigurationError, match=f"invalid {setting.env}='{raw}'"):
            Queue(db_path=db_path)
        with pytest.raises(ConfigurationError, match=setting.env):  # Django settings, Flask config
            taskito_config.queue_kwargs_from({setting.env: raw})
    monkeypatch.delenv(setting.env)
    for value in (NAN, INF, -INF, HUGE):
        with pytest.raises(InvalidValueError, match=setting.kwarg):
            Queue(db_path=db_path, **{setting.kwarg: value})
        with pytest.raises(ConfigurationError, match=setting.env):
            taskito_config.queue_kwargs_from({setting.env: value})
    assert not Path(db_path).exists()  # refused before the database was opened


def test_database_locations_no_driver_can_use_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match="db_path must not contain a NUL character"):
        Queue(db_path=str(tmp_path / "a\x00b.db"))
    with pytest.raises(ConfigurationError, match="File name too long"):
        Queue(db_path=str(tmp_path / ("x" * 5000)))
    for url, reason in [("postgresql://h/te\x00st", "NUL"), ("postgresql://h/te\ud800st", "surrogate")]:
        with pytest.raises(ConfigurationError, match=f"invalid PostgreSQL URL .*{reason}"):
            Queue(backend="postgres", db_url=url)
    assert list(tmp_path.iterdir()) == []


def test_a_nan_lease_stops_the_worker_at_start_with_one_line(tmp_path: Path) -> None:
    """A NaN lease once started a worker whose jobs, were it killed, stayed running for ever."""
    env = {"TASKITO_DB_PATH": str(tmp_path / "taskito.db"), "PYTHONPATH": PYTHONPATH, "TASKITO_LEASE_SECONDS": "nan"}
    Queue(db_path=env["TASKITO_DB_PATH"]).enqueue("worker_app.add", args=(1, 2))
    result = run_cli("worker", "--burst", "--app", "worker_app:queue", cwd=APPS, env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: --app 'worker_app:queue': invalid TASKITO_LEASE_SECONDS='nan': "
        "lease_seconds must be a finite number of seconds, got nan"]
    assert Queue(db_path=env["TASKITO_DB_PATH"]).stats()["pending"] == 1


@pytest.mark.parametrize(("args", "message"), [
    (["worker", "--drain-timeout", "nan"], "Invalid value for '--drain-timeout': drain_timeout must be a finite"),
    (["worker", "--concurrency", str(HUGE)], "Invalid value for '--concurrency': concurrency must be at most 10000"),
    (["worker", "--queues", "mail,\udcff"], "Invalid value for '--queues': queue must be valid Unicode text"),
    (["purge", "--dead-older-than", "inf"], "Invalid value for '--dead-older-than': dead_older_than must be a finite"),
    (["info", "--interval", "1e999"], "Invalid value for '--interval': interval must be a finite"),
    (["dead", "list", "--limit", str(HUGE)], "Invalid value for '--limit': limit must be at most 2147483647"),
])
def test_bad_numeric_flags_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    env = {"TASKITO_DB_PATH": str(tmp_path / "taskito.db"), "PYTHONPATH": PYTHONPATH}
    result = run_cli(*args, "--app", "worker_app:queue", cwd=APPS, env=env)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
