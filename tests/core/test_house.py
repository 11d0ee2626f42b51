"""One house: a lazy Queue, work declared once in a Registry, one options schema, adapters on the public API."""

from __future__ import annotations

import ast
import sqlite3
import time
from pathlib import Path

import pytest

from taskito import ConfigurationError, DatabaseUnavailableError, JobOptions, Queue, Registry
from taskito.testing import run_jobs
from tests.conftest import require_postgres

ROOT = Path(__file__).resolve().parents[2]


def tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


# -- a lazy Queue -----------------------------------------------------------------------------------
def test_building_a_sqlite_queue_and_declaring_on_it_creates_no_schema_until_first_use(tmp_path: Path) -> None:
    db = tmp_path / "lazy" / "taskito.db"
    queue = Queue(db_path=db)

    @queue.periodic(cron="0 0 * * * *")
    @queue.task(max_retries=1)
    def nightly() -> None: ...

    assert tables(db) == set()  # the location is checked, but nothing is opened or created in it
    assert queue.stats()["pending"] == 0  # the first use opens the database and creates the schema
    assert "taskito_jobs" in tables(db)
    queue.close()


def test_building_a_postgres_queue_needs_no_server_and_each_use_tries_again() -> None:
    require_postgres()
    queue = Queue(backend="postgres", db_url="postgresql://postgres@127.0.0.1:1/test")

    @queue.task(name="lazy.add")
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, 3) == 5 and "lazy.add" in queue.tasks
    for _ in range(2):  # a failed open is not remembered
        with pytest.raises(DatabaseUnavailableError, match="127.0.0.1:1"):
            add.delay(2, 3)
    queue.close()  # nothing was opened: nothing to close, no error


# -- one place to declare work --------------------------------------------------------------------
def test_work_declared_once_on_a_registry_runs_on_every_queue_that_takes_it_in(tmp_path: Path) -> None:
    registry = Registry()
    seen: list[str] = []

    @registry.task(name="shared.double", max_retries=1)
    def double(x: int) -> int:
        return 2 * x

    @registry.periodic(cron="0 0 * * * *", args=(4,))
    def tick(n: int) -> int:
        return n

    @registry.on_success
    def record(task_name: str, args: tuple, kwargs: dict, result: object) -> None:
        seen.append(f"{task_name}={result}")

    stored = Queue(db_path=tmp_path / "a.db", registry=registry, default_priority=5, default_timeout=30)
    eager = Queue(db_path=tmp_path / "b.db", registry=registry, eager=True)
    assert double(4) == 8  # still the plain function
    assert set(stored.tasks) == set(eager.tasks) == {"shared.double", tick.name}
    assert [spec.name for spec in stored.periodic_tasks] == [tick.name]
    # Each queue applies its own defaults to what the declaration left unset.
    assert (stored.tasks["shared.double"].options.priority, stored.tasks["shared.double"].options.timeout) == (5, 30)
    assert (eager.tasks["shared.double"].options.priority, eager.tasks["shared.double"].options.timeout) == (0, 300)
    assert stored.tasks["shared.double"].options.max_retries == eager.tasks["shared.double"].options.max_retries == 1

    job = stored.tasks["shared.double"].delay(21)
    assert (job.status, stored.get_job(job.id).record.priority) == ("pending", 5)
    assert eager.tasks["shared.double"].delay(21).result() == 42
    assert seen == ["shared.double=42"]  # the hook ran where the task ran
    assert eager.get_job(job.id) is None  # two queues, two databases

    @registry.task(name="shared.late")  # declared after both queues were built: both see it
    def late() -> str:
        return "late"

    assert eager.tasks["shared.late"].delay().result() == "late"
    assert stored.tasks["shared.late"].queue is stored
    stored.close()
    eager.close()


# -- one job-options schema -------------------------------------------------------------------------
def test_per_call_options_reach_the_row_the_same_way_through_every_enqueue(queue: Queue) -> None:
    @queue.task(name="opts.t", expires=600)
    def t(x: int) -> int:
        return x

    options = {"priority": 7, "queue": "mail", "max_retries": 2, "timeout": 9.0, "delay": 30.0}
    before = time.time()
    prepared = queue.prepare_job("opts.t", (0,), None, unique_key="k-prepared", **options)
    jobs = [t.apply_async(args=(1,), unique_key="k-async", **options),
            queue.enqueue("opts.t", args=(2,), unique_key="k-enqueue", **options),
            *t.map([(3,)], **options),
            t.s(4).apply_async(**options),
            queue.enqueue_prepared(prepared)]
    assert jobs[-1].id == prepared.id  # the id of a prepared job is known before it is written
    for job in jobs:
        record = job.record
        assert (record.priority, record.queue, record.max_retries, record.timeout) == (7, "mail", 2, 9.0), record
        assert before + 30 <= record.scheduled_at <= time.time() + 30
        assert before + 600 <= record.expires_at <= time.time() + 600  # the task's own option
    assert queue.enqueue_prepared(prepared).id == prepared.id and queue.stats()["pending"] == len(jobs)
    with pytest.raises(TypeError, match="'retries'.*its options are: concurrency_key, delay, depends_on, expires"):
        t.apply_async(retries=1)
    with pytest.raises(TypeError, match="'unique_key'.*its options are:.*retry_backoff"):
        queue.task(unique_key="per call only")
    assert JobOptions.for_call({"priority": None, "delay": 1}) == {"delay": 1.0}


def test_a_replayed_dead_letter_keeps_its_options(queue: Queue) -> None:
    job = queue.enqueue("opts.gone", priority=3, queue="mail", max_retries=0, timeout=5.0)
    [claimed] = queue.storage.claim("w", ["mail"], 1, 30)
    queue.storage.fail(claimed.id, claimed.attempt, "KeyError: x", None, None)
    replay = queue.get_job(queue.retry_dead(job.id)).record
    assert (replay.priority, replay.queue, replay.max_retries, replay.timeout) == (3, "mail", 0, 5.0)


# -- adapters use the public Queue API --------------------------------------------------------------
def test_throughput_and_task_metrics_are_public_queue_methods(queue: Queue) -> None:
    @queue.task(name="metrics.t")
    def t() -> None: ...

    start = time.time()
    t.delay()
    assert run_jobs(queue) == 1
    assert queue.throughput(start - 1, 3600) == {0: {"completed": 1, "dead": 0, "failed": 0}}
    metrics = queue.task_metrics([60.0])["metrics.t"]
    assert (metrics["counts"]["completed"], metrics["failures"], metrics["runtime"]["count"]) == (1, 0, 1)


ADAPTERS = ["taskito_django", "taskito_flask", "taskito/contrib", "taskito/dashboard", "taskito/cli.py",
            "taskito/testing.py"]


def test_adapters_never_reach_around_the_queue_to_its_storage() -> None:
    """DESIGN.md: the frameworks, the CLI and the dashboard use public Queue methods only."""
    offenders = []
    for entry in ADAPTERS:
        path = ROOT / entry
        for source in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            for node in ast.walk(ast.parse(source.read_text(), str(source))):
                if isinstance(node, ast.Attribute) and (node.attr == "storage" or node.attr.startswith("_get_")):
                    offenders.append(f"{source.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    assert offenders == []


# -- storage engines are registered in storage/ -------------------------------------------------------
def test_storage_never_imports_the_settings_layer() -> None:
    """Arrows point down: config asks storage which engines exist, never the other way round."""
    upward = []
    for source in sorted((ROOT / "taskito" / "storage").rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] == "config":
                upward.append(f"{source.relative_to(ROOT)}:{node.lineno}")
    assert upward == []


def test_an_engine_registered_in_storage_is_a_backend_everywhere(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from taskito import storage

    with pytest.raises(ConfigurationError, match="unknown backend 'lite'"):
        Queue(db_path=tmp_path / "a.db", backend="lite")
    monkeypatch.setitem(storage.ENGINES, "lite", storage.ENGINES["sqlite"])  # one entry registers an engine
    queue = Queue(db_path=tmp_path / "a.db", backend="LITE")
    assert queue.enqueue("house.t").status == "pending" and "taskito_jobs" in tables(tmp_path / "a.db")
    queue.close()
