"""Observability costs the same at any table size: counted database work, not time (as test_cost_at_scale)."""
# ruff: noqa: F811 - the costed fixture is imported from the storage cost tests and named as an argument

from __future__ import annotations

import time

import pytest

from taskito import Queue
from taskito.storage import Completion, Started
from tests.conftest import PG_URL
from tests.storage.test_cost_at_scale import (  # noqa: F401 - costed is a fixture
    Costed,
    _jobs,
    costed,
    explained_connections,
)


def test_queue_and_task_figures_read_a_few_rows_whatever_the_backlog(costed: Costed) -> None:
    queue = costed.queue
    queue.storage.enqueue(_jobs("default", 40))
    queue.storage.enqueue(_jobs("default", 5, delay=3600))
    figures = {"queue_stats": queue.queue_stats, "task_stats": lambda: queue.task_stats(since=7 * 86400)}
    for call in figures.values():
        call()  # first calls prepare statements and plans
    alone = {name: min(costed.cost(call) for _ in range(3)) for name, call in figures.items()}
    oldest = queue.queue_stats()["default"]["oldest_due_age"]
    # 6,000 more due jobs (of several priorities) behind them, and 6,000 finished ones.
    for priority in (0, 1, 2):
        queue.storage.enqueue(_jobs("default", 2000))
        costed._sql(f"UPDATE taskito_jobs SET priority = {priority} WHERE priority = 0 AND status = 'pending' "
                    "AND id NOT IN (SELECT id FROM taskito_jobs ORDER BY seq LIMIT 45)")
    costed.insert_completed(6000, "elsewhere", "tasks.other")
    among_many = {name: min(costed.cost(call) for _ in range(3)) for name, call in figures.items()}
    for name in figures:
        assert among_many[name] <= 3 * alone[name] + 200, (name, alone, among_many)
    assert queue.queue_stats()["default"]["oldest_due_age"] >= oldest  # still the first job's wait


def test_recording_a_large_batch_of_outcomes_costs_its_size_not_its_square(
        pg_schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The task-minutes trigger's plan, cached on a batch of one, must not match each row of a batch of
    1,000 against all of them."""
    plans = explained_connections(monkeypatch, settings=(
        "plan_cache_mode = force_generic_plan", "auto_explain.log_nested_statements = on",
        "auto_explain.log_analyze = on"))
    queue = Queue(backend="postgres", db_url=PG_URL, schema=pg_schema, pool_size=1)
    try:
        storage = queue.connect().storage
        storage.enqueue(_jobs("default", 1))
        [first] = storage.claim("w", ["default"], 1, 30)
        storage.complete([Completion(first.id, first.attempt, b"null", started_at=time.time())])
        storage.enqueue(_jobs("default", 1000))
        held = storage.claim("w", ["default"], 1000, 30)
        storage.start([Started(record.id, record.attempt, time.time()) for record in held])
        plans.clear()
        storage.complete([Completion(record.id, record.attempt, b"null") for record in held])
        recorded = [plan for plan in plans if "taskito_task_minutes" in plan and "Insert" in plan]
        assert recorded, plans
        for plan in recorded:
            assert "Nested Loop" not in plan and "Join Filter" not in plan, plan
        assert queue.task_stats()["tasks.noop"]["counts"]["complete"] == 1001
    finally:
        queue.close()
