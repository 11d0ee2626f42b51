"""A claim's work does not grow with jobs it cannot take, PostgreSQL's claim plan cannot go bad, and a
page of a job list reads about as many rows as it shows.

The work of a database call is counted, not timed: SQLite virtual-machine instructions (a progress
handler on every connection of the storage), PostgreSQL shared buffers touched (auto_explain on the
storage's connection reports each statement's plan with its buffers).
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from taskito import Queue
from taskito.storage.base import Completion, NewJob, Started, new_job_id
from taskito.storage.postgres import PostgresStorage
from taskito.storage.sqlite import SQLiteStorage
from tests.conftest import PG_URL

pytestmark = pytest.mark.serial  # VACUUM and plans see other tests' transactions: alone

BACKLOG = 3000
SERVED = ["default", "held"]  # "held" is paused


class Costed:
    """A queue whose database work is counted; ``cost(call)`` is the work ``call`` made."""

    def __init__(self, queue: Queue, counted: Callable[[], int], sql: Callable[[str], None], numbers: str) -> None:
        self.queue = queue
        self._counted = counted
        self._sql = sql  # runs a statement on a connection of its own (not counted)
        self._numbers = numbers  # a table expression of n = 1..:count in the engine's SQL

    def cost(self, call: Callable[[], Any]) -> int:
        before = self._counted()
        call()
        return self._counted() - before

    def insert_completed(self, count: int, queue: str, task: str) -> None:
        """Completed jobs written as such (no update leaves dead index entries behind on PostgreSQL)."""
        self._sql(
            "INSERT INTO taskito_jobs (id, task_name, queue, status, payload, created_at, scheduled_at, finished_at) "
            f"SELECT 'ee' || substr('000000000000000000000000000000' || n, -30), '{task}', '{queue}', 'complete', "
            f"'', 1, 1, 1 FROM {self._numbers.format(count=count)}")
        self._sql("ANALYZE taskito_jobs")  # as autovacuum would on PostgreSQL; SQLite's plans need no statistics


@pytest.fixture(params=["sqlite", "postgres"])
def costed(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Costed]:
    if request.param == "sqlite":
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0

        connect = SQLiteStorage._connect

        def counting_connect(self: SQLiteStorage) -> sqlite3.Connection:
            conn = connect(self)
            conn.set_progress_handler(count, 10)
            return conn

        monkeypatch.setattr(SQLiteStorage, "_connect", counting_connect)
        queue = Queue(db_path=str(tmp_path / "taskito.db"))

        def sqlite_sql(statement: str) -> None:
            with sqlite3.connect(tmp_path / "taskito.db") as conn:
                conn.execute(statement)

        yield Costed(queue, lambda: steps[0], sqlite_sql,
                     "(WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {count}) "
                     "SELECT n FROM c)")
    else:
        import psycopg

        plans = explained_connections(monkeypatch, analyze=True)
        schema = request.getfixturevalue("pg_schema")
        queue = Queue(backend="postgres", db_url=PG_URL, schema=schema, pool_size=1)

        def postgres_sql(statement: str) -> None:
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'SET search_path TO "{schema}"')
                conn.execute(statement)

        yield Costed(queue, lambda: sum(_buffers(plan) for plan in plans), postgres_sql,
                     "generate_series(1, {count}) AS n")
    queue.close()


def explained_connections(monkeypatch: pytest.MonkeyPatch, analyze: bool = False,
                          settings: tuple[str, ...] = ()) -> list[str]:
    """Make every new PostgreSQL connection of the storage report its statements' plans; returns the list
    they are appended to (top-level statements with analyze, every nested one without)."""
    plans: list[str] = []
    configure = PostgresStorage._configure

    def explaining_configure(self: PostgresStorage, conn: Any) -> None:
        configure(self, conn)
        conn.execute("LOAD 'auto_explain'")
        for setting in ("auto_explain.log_min_duration = 0", "auto_explain.log_level = notice",
                        f"auto_explain.log_nested_statements = {'off' if analyze else 'on'}",
                        f"auto_explain.log_analyze = {'on' if analyze else 'off'}", "auto_explain.log_buffers = on",
                        "auto_explain.log_timing = off", *settings):
            conn.execute(f"SET {setting}")
        conn.add_notice_handler(lambda diagnostic: plans.append(diagnostic.message_primary or ""))

    monkeypatch.setattr(PostgresStorage, "_configure", explaining_configure)
    return plans


def _buffers(plan: str) -> int:
    """Shared buffers the statement touched (its top node's count, which includes everything below)."""
    match = re.search(r"Buffers: shared ([^\n]*)", plan)
    if not match:
        return 0
    return sum(int(n) for n in re.findall(r"(?:hit|read)=(\d+)", match.group(1)))


def _jobs(queue: str, count: int, delay: float = 0.0, task: str = "tasks.noop") -> list[NewJob]:
    return [NewJob(id=new_job_id(), task_name=task, payload=b'{"args":[],"kwargs":{}}', queue=queue,
                   delay=delay) for _ in range(count)]


def test_an_idle_claim_reads_nothing_of_other_queues_paused_queues_or_later_jobs(costed: Costed) -> None:
    storage = costed.queue.storage
    costed.queue.pause("held")

    def idle_round() -> None:  # what an idle worker does each time it wakes
        assert storage.claim("w", SERVED, 10, 30) == []
        storage.next_due(SERVED)

    for _ in range(3):  # first calls prepare statements and plans
        idle_round()
    empty = min(costed.cost(idle_round) for _ in range(3))
    storage.enqueue(_jobs("held", BACKLOG) + _jobs("elsewhere", BACKLOG) + _jobs("default", BACKLOG, delay=86400))
    with_backlog = min(costed.cost(idle_round) for _ in range(3))
    # Three backlogs of 3,000 jobs: a claim that walked them would do a hundred times the work.
    assert with_backlog <= 2 * empty + 20, (empty, with_backlog)

    [due] = storage.enqueue(_jobs("default", 1))
    assert [record.id for record in storage.claim("w", SERVED, 10, 30)] == [due]
    assert abs(storage.next_due(SERVED) - (time.time() + 86400)) < 60
    costed.queue.resume("held")
    assert {record.queue for record in storage.claim("w", SERVED, 10, 30)} == {"held"}


def test_when_a_queue_s_oldest_due_job_became_due_reads_no_delayed_backlog(costed: Costed) -> None:
    """The queues page, /api/queues and /metrics read it for every queue: 100,000 jobs delayed by a day made
    each read take 10-20 ms on SQLite, walking them all for the earliest."""
    storage = costed.queue.storage
    storage.enqueue(_jobs("default", 2))

    def oldest() -> float | None:
        return storage.oldest_due("default", time.time())

    for _ in range(3):  # first calls prepare statements and plans
        due_since = oldest()
    few = min(costed.cost(oldest) for _ in range(3))
    storage.enqueue(_jobs("default", BACKLOG, delay=86400))
    assert min(costed.cost(oldest) for _ in range(3)) <= 2 * few + 20
    assert oldest() == due_since
    assert len(storage.claim("w", ["default"], 10, 30)) == 2
    assert oldest() is None  # the delayed jobs are not due yet


def test_claim_plan_keeps_its_index_after_the_worker_started_on_an_emptied_table(
        pg_schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """force_generic_plan: the plan a worker's connection makes at its first claim serves every later one.

    Its choice must not rest on the planner's estimates at that moment: besides the empty table's, the
    session prices random reads high (whether the plan is made before the flood, or again after it when
    the server drops cached plans, an estimate-led claim would then scan and sort).
    """
    import psycopg

    plans = explained_connections(monkeypatch, settings=("plan_cache_mode = force_generic_plan",
                                                         "random_page_cost = 100"))
    # Connected now: the test writes to the tables itself before the queue first uses them.
    queue = Queue(backend="postgres", db_url=PG_URL, schema=pg_schema, pool_size=1).connect()
    try:
        # The table is empty but has been large (rows purged, or here a big batch rolled back, which
        # vacuum can clear at once whatever else the server runs): vacuum cut the table to nothing,
        # its indexes keep their size. The planner then prices a sequential scan and a sort lowest.
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{pg_schema}"')
            conn.execute("ALTER TABLE taskito_jobs SET (autovacuum_enabled = off)")  # the test's VACUUM, not its own
            with conn.transaction(force_rollback=True):
                conn.execute("INSERT INTO taskito_jobs (id, task_name, queue, status, payload, created_at, "
                             "scheduled_at) SELECT md5(n::text), 'tasks.noop', 'default', 'pending', '', 0, 0 "
                             "FROM generate_series(1, 5000) AS n")
            conn.execute("VACUUM ANALYZE taskito_jobs")
            assert conn.execute("SELECT relpages FROM pg_class WHERE oid = 'taskito_jobs'::regclass").fetchone() == (0,)
        for _ in range(3):  # the worker starts idle: its claims run, and cache their plans, on the empty table
            queue.storage.claim("w", ["default"], 18, 30)
        queue.storage.enqueue(_jobs("default", 20000))  # then the flood
        plans.clear()
        assert len(queue.storage.claim("w", ["default"], 18, 30)) == 18
        # No cap or rate limit applies here: the claim takes its plain path, one statement.
        [claim_plan] = [plan for plan in plans if "SET status = 'claimed'" in plan]
        assert "Seq Scan on taskito_jobs" not in claim_plan, claim_plan
        assert "Index Scan using taskito_jobs_ready on taskito_jobs" in claim_plan, claim_plan
    finally:
        queue.close()


def test_a_claim_that_counts_caps_and_takes_rate_slots_walks_indexes_only(
        pg_schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The controlled path of taskito_claim() (capped jobs wait, a rate limit applies) on a large table:
    every statement of it walks an index, none reads the table through."""
    plans = explained_connections(monkeypatch, settings=("plan_cache_mode = force_generic_plan",))
    queue = Queue(backend="postgres", db_url=PG_URL, schema=pg_schema, pool_size=1).connect()
    try:
        queue.storage.enqueue(_jobs("default", 20000))
        capped = [NewJob(id=new_job_id(), task_name="tasks.capped", payload=b'{"args":[],"kwargs":{}}',
                         max_concurrent=2, concurrency_key="k", priority=5) for _ in range(5)]
        queue.storage.enqueue(capped)
        plans.clear()
        claimed = queue.storage.claim("w", ["default"], 18, 30, {"tasks.noop": 1000.0})
        assert [record.task_name for record in claimed].count("tasks.capped") == 2  # its cap, first by priority
        assert all(record.start_after is not None for record in claimed if record.task_name == "tasks.noop")
        steps = [plan for plan in plans if "taskito_jobs" in plan]
        assert any("SET status = 'claimed'" in plan for plan in steps)
        for plan in steps:
            assert "Seq Scan on taskito_jobs" not in plan, plan
    finally:
        queue.close()


def test_a_job_list_page_reads_about_as_many_rows_as_it_shows(costed: Costed, monkeypatch: pytest.MonkeyPatch) -> None:
    import taskito.storage.sqlbase

    monkeypatch.setattr(taskito.storage.sqlbase, "TEXT_SEARCH_ROWS", 100)  # a text search reads at most this many
    queue = costed.queue
    queue.storage.enqueue(_jobs("default", 40))
    prefix = queue.list_jobs(limit=1)[0].id[:8]
    listings = {  # name: (listing, rows it reads)
        "newest": (lambda: queue.list_jobs(limit=20), 20),
        "pending": (lambda: queue.list_jobs(status="pending", limit=20), 20),
        "pending, second page": (lambda: queue.list_jobs(status="pending", limit=20, offset=20), 40),
        "a status no job has": (lambda: queue.list_jobs(status="dead"), 0),
        "queue": (lambda: queue.list_jobs(queue="default", limit=20), 20),
        "task": (lambda: queue.list_jobs(task_name="tasks.noop", limit=20), 20),
        "status and queue": (lambda: queue.list_jobs(status="pending", queue="default", limit=20), 20),
        "id prefix": (lambda: queue.list_jobs(id_prefix=prefix, limit=20), 20),
        "by task": (lambda: queue.list_jobs(order_by="task", limit=20), 20),
        "text": (lambda: queue.list_jobs(text="nowhere", limit=20), 100),
        "text of a status": (lambda: queue.list_jobs(status="pending", text="nowhere", limit=20), 100),
    }
    for listing, _ in listings.values():  # first calls prepare statements and plans
        listing()
    alone = {name: min(costed.cost(listing) for _ in range(3)) for name, (listing, _) in listings.items()}
    # Newer than them, and in none of the lists but the first: 6,000 completed jobs of another task and queue.
    costed.insert_completed(6000, "elsewhere", "tasks.other")
    among_many = {name: min(costed.cost(listing) for _ in range(3)) for name, (listing, _) in listings.items()}
    for name, (_, rows) in listings.items():
        # A plan may read a few rows through an index where it scanned one page before; never the 6,000.
        assert among_many[name] <= 2 * alone[name] + 2 * rows + 20, (name, alone, among_many)
    assert [job.id for job in queue.list_jobs(status="pending", limit=20, offset=20)] == [
        job.id for job in queue.list_jobs(queue="default", limit=40)][20:]


def test_start_marks_and_completions_read_their_own_jobs_only(
        pg_schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's batch of start marks or completions reads the same whatever other workers hold: its jobs
    are found by id. Plans that walked the held jobs instead (the statistics chose how) read every claimed
    and running job of every worker, and every such row version left since the last VACUUM."""
    plans = explained_connections(monkeypatch, settings=(
        "plan_cache_mode = force_generic_plan", "auto_explain.log_nested_statements = on",
        "auto_explain.log_analyze = on"))
    queue = Queue(backend="postgres", db_url=PG_URL, schema=pg_schema, pool_size=1)
    try:
        storage = queue.connect().storage

        def reads() -> tuple[int, int]:
            """The buffers that 18 jobs' start marks and completions read to find their jobs."""
            storage.enqueue(_jobs("default", 18))
            held = storage.claim("w", ["default"], 18, 30)
            assert len(held) == 18
            plans.clear()
            storage.start([Started(record.id, record.attempt, time.time()) for record in held])
            storage.complete([Completion(record.id, record.attempt, b"null") for record in held])
            [start, complete] = [_read_buffers(plan) for plan in plans if "Update on taskito_jobs j" in plan]
            return start, complete

        reads()  # plans made on an empty table, as by a worker started before any job came
        storage.enqueue(_jobs("other", 3000))
        alone = reads()
        assert len(storage.claim("w2", ["other"], 3000, 30)) == 3000  # another worker's prefetch
        beside = reads()
        for name, before, after in zip(("start marks", "completions"), alone, beside, strict=True):
            # Walking the other worker's 3,000 jobs reads seventy buffers and more per batch.
            assert after <= before + 5, (name, alone, beside)
        assert queue.stats()["completed"] == 54
    finally:
        queue.close()


def test_after_a_vacuum_a_claim_on_a_large_table_steps_over_no_claimed_jobs(
        pg_schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A claim walks its queue's claim-index entries from the head, where those of the jobs claimed before
    lie until a VACUUM cleans the indexes. PostgreSQL's VACUUM skips a table's indexes when under 2 % of
    its pages hold dead rows, as after a few thousand jobs on a table of millions: not this table's."""
    import psycopg

    plans = explained_connections(monkeypatch, settings=("auto_explain.log_nested_statements = on",
                                                         "auto_explain.log_analyze = on"))
    queue = Queue(backend="postgres", db_url=PG_URL, schema=pg_schema, pool_size=1).connect()
    try:
        storage = queue.storage
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{pg_schema}"')
            # A large table, cheaply: 60,000 finished jobs of 2 kB fill 15,000 pages, leaving no room in them.
            conn.execute("INSERT INTO taskito_jobs (id, task_name, queue, status, payload, error, created_at, "
                         "scheduled_at, finished_at) SELECT 'ee' || lpad(n::text, 30, '0'), 'tasks.old', 'old', "
                         "'complete', '', repeat('x', 1850), 1, 1, 1 FROM generate_series(1, 60000) AS n")

            def vacuumed_claim_cost() -> int:
                """Buffers of the claim index a claim of 18 jobs reads right after a VACUUM of the jobs table."""
                conn.execute("VACUUM taskito_jobs")
                storage.enqueue(_jobs("default", 18))
                plans.clear()
                held = storage.claim("w", ["default"], 18, 30)
                assert len(held) == 18
                [walk] = [plan.split("Index Scan using taskito_jobs_ready", 1)[1] for plan in plans
                          if "SET status = 'claimed'" in plan]
                storage.complete([Completion(record.id, record.attempt, b"null") for record in held])
                return _buffers(walk)

            vacuumed_claim_cost()  # plans made
            before = vacuumed_claim_cost()
            storage.enqueue(_jobs("default", 3000))
            while held := storage.claim("w", ["default"], 100, 30):
                storage.complete([Completion(record.id, record.attempt, b"null") for record in held])
            after = vacuumed_claim_cost()
        # The 3,000 claimed entries left at the head of the queue cover some twenty index pages.
        assert after <= before + 2, (before, after)
    finally:
        queue.close()


def _read_buffers(plan: str) -> int:
    """Buffers an UPDATE of jobs read to find its rows: those of the node under its Update node (the
    Update's own count adds the writing of the new row versions)."""
    below = plan[plan.index("Update on taskito_jobs j"):].split("->", 1)[1]
    return _buffers(below)


def test_a_batch_of_completions_or_start_marks_costs_its_size_not_its_square(
        pg_schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plans cached while the table was empty must not match each job of a batch against the whole
    batch: 1,000 completions then cost a million comparisons (a quarter of a second), completions that
    fall behind fall further behind, and leases run out (jobs run twice)."""
    plans = explained_connections(monkeypatch, settings=(
        "plan_cache_mode = force_generic_plan", "auto_explain.log_nested_statements = on",
        "auto_explain.log_analyze = on"))
    queue = Queue(backend="postgres", db_url=PG_URL, schema=pg_schema, pool_size=1)
    try:
        storage = queue.connect().storage
        storage.enqueue(_jobs("default", 1))
        [first] = storage.claim("w", ["default"], 1, 30)
        storage.start([Started(first.id, first.attempt, time.time())])
        storage.complete([Completion(first.id, first.attempt, b"null")])  # plans made on an empty table
        storage.enqueue(_jobs("default", 1000))
        held = storage.claim("w", ["default"], 1000, 30)
        assert len(held) == 1000
        plans.clear()
        storage.start([Started(record.id, record.attempt, time.time()) for record in held])
        storage.complete([Completion(record.id, record.attempt, b"null") for record in held])
        updates = [plan for plan in plans if "Update on taskito_jobs" in plan and "unnest" in plan]
        assert len(updates) == 2, plans
        for update in updates:
            removed = [int(n) for n in re.findall(r"Rows Removed by Join Filter: (\d+)", update)]
            assert sum(removed) < 1000, update
            assert not re.search(r"Function Scan on \w+ .*loops=(?!1\))", update), update
        assert queue.stats()["completed"] == 1001
    finally:
        queue.close()
