"""Caps and rate limits hold for the whole cluster: three worker processes, what actually ran at once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from taskito import InvalidValueError, Queue
from tests.control.conftest import APP, APPS, lines
from tests.support import Process, start_worker, wait_until


@contextmanager
def three_workers(env: dict[str, str], *extra: str) -> Iterator[list[Process]]:
    workers = [start_worker(APP, APPS, "--concurrency", "4", *extra, env=env) for _ in range(3)]
    try:
        yield workers
    finally:
        for worker in workers:
            worker.stop()


def spans(tmp_path: Path) -> dict[str, list[tuple[float, float, int]]]:
    by_tag: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for line in lines(tmp_path, "spans.log"):
        tag, start, end, pid = line.split()
        by_tag[tag].append((float(start), float(end), int(pid)))
    return by_tag


def peak(intervals: list[tuple[float, float, int]]) -> int:
    """The most intervals that overlap at any instant."""
    events = sorted([(start, 1) for start, _, _ in intervals] + [(end, -1) for _, end, _ in intervals])
    running = highest = 0
    for _, change in events:  # at equal times an end (-1) sorts before a start: touching is not overlapping
        running += change
        highest = max(highest, running)
    return highest


def all_done(client: Queue, jobs: list) -> bool:
    return all(client.get_job(job.id).status == "complete" for job in jobs)


def test_max_concurrent_caps_the_task_over_three_workers_without_blocking_other_tasks(
        client: Queue, engine_env: dict[str, str], tmp_path: Path) -> None:
    with three_workers(engine_env) as workers:  # all three are up before the jobs come: they compete for them
        capped = [client.enqueue("control_app.capped", args=(i,), priority=5) for i in range(14)]
        free = [client.enqueue("control_app.free", args=(i,)) for i in range(10)]
        wait_until(lambda: all_done(client, capped + free), 60, message="every job to complete")
    # The capped jobs come first by priority and take a fraction of the 12 threads; the others ran
    # meanwhile, long before the capped backlog was through (read from the jobs' own times, which a loaded
    # machine does not blur as polling their statuses would).
    assert max(job.to_dict()["finished_at"] for job in free) < max(job.to_dict()["started_at"] for job in capped)
    ran = spans(tmp_path)["capped"]
    assert len(ran) == 14
    assert peak(ran) == 2  # never more than max_concurrent=2, and the cap was used
    assert len({pid for _, _, pid in ran}) > 1  # spread over several workers, still capped as one
    assert all(worker.wait() == 0 for worker in workers)


def test_concurrency_key_caps_each_tenant_on_its_own(client: Queue, engine_env: dict[str, str],
                                                      tmp_path: Path) -> None:
    jobs = [client.enqueue("control_app.per_tenant", args=(tenant, i)) for i in range(5) for tenant in "abc"]
    assert {job.to_dict()["concurrency_key"] for job in jobs} == {"a", "b", "c"}
    with three_workers(engine_env):
        wait_until(lambda: all_done(client, jobs), 60, message="every tenant's jobs to complete")
    ran = spans(tmp_path)
    for tenant in "abc":
        assert len(ran[tenant]) == 5
        assert peak(ran[tenant]) == 1  # one at a time per tenant
    assert peak([span for tenant in "abc" for span in ran[tenant]]) > 1  # tenants ran side by side


def test_a_key_given_per_call_overrides_the_task_function(client: Queue) -> None:
    job = client.enqueue("control_app.per_tenant", args=("a", 1), concurrency_key="shared")
    assert job.to_dict()["concurrency_key"] == "shared"


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_bad_max_concurrent_is_refused_at_declaration(client: Queue, bad: object) -> None:
    with pytest.raises(InvalidValueError, match="max_concurrent"):
        client.task(name="bad_cap", max_concurrent=bad)(lambda: None)
    assert "bad_cap" not in client.tasks


def test_a_key_function_that_fails_names_the_task_and_writes_nothing(client: Queue) -> None:
    with pytest.raises(InvalidValueError, match="concurrency_key function of task 'control_app.per_tenant'"):
        client.enqueue("control_app.per_tenant", args=("only one argument",))
    with pytest.raises(InvalidValueError, match="concurrency_key"):
        client.enqueue("control_app.free", args=(1,), concurrency_key="")
    assert client.stats()["pending"] == 0


def test_rate_limit_holds_for_the_cluster_not_per_worker(client: Queue, engine_env: dict[str, str],
                                                         tmp_path: Path) -> None:
    jobs = client.enqueue_many("control_app.limited", [(i,) for i in range(31)])
    with three_workers(engine_env):
        wait_until(lambda: all_done(client, jobs), 60, message="the rate-limited jobs to complete")
    starts = sorted(float(line) for line in lines(tmp_path, "starts.log"))
    assert len(starts) == 31
    rate = (len(starts) - 1) / (starts[-1] - starts[0])
    assert 4.5 <= rate <= 5.5  # rate_limit="5/s" over three workers (per worker it would be 15/s)
    busiest = max(sum(1 for t in starts if first <= t < first + 1.0) for first in starts)
    assert busiest <= 7  # no burst: slots are 0.2 s apart (a late start can bunch with the next one)
