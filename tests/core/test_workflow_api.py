"""Workflows in one process, on both engines: bad input refused before anything is written, completions
counted once in batches (the storage side of exactly-once), eager mode, run_jobs, the async API,
the JSON view and purging."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from taskito import (
    InvalidValueError,
    Queue,
    SerializationError,
    TaskFailedError,
    WorkflowResult,
    chain,
    chord,
    chunks,
    group,
    starmap,
)
from taskito.storage import Completion
from taskito.testing import run_jobs


def declare(queue: Queue) -> SimpleNamespace:
    ran: list[tuple[str, tuple[object, ...]]] = []

    @queue.task()
    def add(a: int, b: int) -> int:
        ran.append(("add", (a, b)))
        return a + b

    @queue.task()
    def total(values: list[int]) -> int:
        ran.append(("total", (values,)))
        return sum(values)

    @queue.task(max_retries=0)
    def boom(*args: object) -> None:
        raise ValueError("boom")

    @queue.task()
    def on_error(job_id: str, error: str, tag: str) -> str:
        ran.append(("on_error", (job_id, error, tag)))
        return tag

    return SimpleNamespace(add=add, total=total, boom=boom, on_error=on_error, ran=ran)


@pytest.fixture
def t(engine_queue: Queue) -> SimpleNamespace:
    return declare(engine_queue)


def nothing_written(queue: Queue) -> bool:
    return queue.list_jobs() == [] and sum(queue.stats().values()) == 0


def test_bad_input_is_refused_at_once_and_writes_nothing(engine_queue: Queue, t: SimpleNamespace) -> None:
    queue = engine_queue
    with pytest.raises(InvalidValueError, match=r"unknown task 'nope'.*registered: .*add"):
        queue.signature("nope", (1,))
    with pytest.raises(SerializationError, match=r"argument 0 \(object\) of task .*add"):
        chord([t.add.s(1, 2), t.add.s(object(), 2)], t.total.s()).delay()
    with pytest.raises(SerializationError, match=r"keyword argument 'tag' \(set\)"):
        chain(t.add.s(1, 2), t.add.s(1), on_error=t.on_error.s(tag={1})).delay()
    with pytest.raises(InvalidValueError, match=r"cannot take depends_on="):
        chain(t.add.s(1, 2), t.add.s(1).set(depends_on="0" * 32)).delay()
    with pytest.raises(InvalidValueError, match=r"cannot take expires="):
        group(t.add.s(1, 2)).apply_async(expires=10)
    with pytest.raises(InvalidValueError, match=r"invalid priority|priority"):
        t.add.s(1, 2).set(priority="high")
    with pytest.raises(InvalidValueError, match="needs at least one signature"):
        group([])
    with pytest.raises(InvalidValueError, match="chain or group inside a group"):
        group(chain(t.add.s(1, 2), t.add.s(1)))
    with pytest.raises(InvalidValueError, match=r"takes signatures .* got 42"):
        chain(t.add.s(1, 2), 42)
    with pytest.raises(InvalidValueError, match="n of at least 1"):
        chunks(t.add, [(1, 2)], 0)
    with pytest.raises(InvalidValueError, match="list of argument tuples"):
        starmap(t.add, [1, 2])
    with pytest.raises(InvalidValueError, match="give it to the outermost one"):
        chain(t.add.s(1, 2), group(t.add.s(1), on_error=t.on_error.s("inner"))).delay()
    with pytest.raises(InvalidValueError, match="on_error takes a signature"):
        chain(t.add.s(1, 2), on_error="t.on_error")
    other = Queue(db_path=str(queue.db_path) + ".other")
    try:
        stranger = declare(other)
        with pytest.raises(InvalidValueError, match="must be a task of one queue"):
            chain(t.add.s(1, 2), stranger.add.s(1)).delay()
    finally:
        other.close()
    assert nothing_written(queue)


def test_a_batch_of_completions_counts_each_member_once(engine_queue: Queue, t: SimpleNamespace) -> None:
    """The worker writes completions in batches: all of a chord's members in one batch release the
    callback once, and the same batch written again (a retry after a lost answer) changes nothing."""
    queue = engine_queue
    workflow = chord([t.add.s(i, i) for i in range(5)], t.total.s()).delay()
    storage = queue.storage
    members = storage.claim("w1", ["default"], 100, 30)
    assert len(members) == 5  # the callback waits for them
    batch = [Completion(job.id, job.attempt, str(2 * i).encode(), workflow_id=job.workflow_id)
             for i, job in enumerate(sorted(members, key=lambda job: job.wf_member or 0))]
    storage.complete(batch)
    storage.complete(batch)
    [callback] = storage.claim("w1", ["default"], 100, 30)
    assert callback.task_name == t.total.name
    assert storage.claim("w1", ["default"], 100, 30) == []
    assert [stage[2] for stage in storage.get_workflow(workflow.id).stages] == [0, 1]
    storage.complete([Completion(callback.id, callback.attempt, b"20", workflow_id=callback.workflow_id)])
    assert workflow.result(timeout=5) == 20 and workflow.status == "complete"


def test_a_stale_attempt_neither_counts_nor_releases(engine_queue: Queue, t: SimpleNamespace) -> None:
    queue = engine_queue
    workflow = chain(t.add.s(1, 2), t.add.s(1)).delay()
    [first] = queue.storage.claim("w1", ["default"], 10, 30)
    queue.storage.complete([Completion(first.id, first.attempt + 1, b"3", workflow_id=first.workflow_id)])
    assert queue.storage.claim("w1", ["default"], 10, 30) == []
    assert workflow.status == "pending"


def test_run_jobs_runs_every_form_and_the_view_shows_its_steps(engine_queue: Queue, t: SimpleNamespace) -> None:
    queue = engine_queue
    nested = chain(t.add.s(1, 1), group(t.add.s(1), t.add.s(2)), t.total.s(), t.add.si(5, 5)).delay()
    failing = chain(t.add.s(1, 1), t.boom.s(), t.add.s(1), on_error=t.on_error.s("x")).delay()
    assert isinstance(nested, WorkflowResult) and nested.status == "pending"
    run_jobs(queue)
    assert nested.result(timeout=0) == 10
    with pytest.raises(TaskFailedError, match="failed: step .* died: ValueError: boom"):
        failing.result(timeout=0)
    found = queue.get_workflow(nested.id)
    assert found is not None
    view = found.to_dict()
    assert view["kind"] == "chain" and view["status"] == "complete" and view["on_error"] is None
    assert [[job["status"] for job in stage["jobs"]] for stage in view["stages"]] == [
        ["complete"], ["complete", "complete"], ["complete"], ["complete"]]
    assert [stage["group"] for stage in view["stages"]] == [False, True, False, False]
    assert [job.id for job in found.jobs] == [job["id"] for stage in view["stages"] for job in stage["jobs"]]
    failed = failing.to_dict()
    assert failed["status"] == "failed" and failed["on_error"]["status"] == "complete"
    assert failed["failed_job_id"] == failed["stages"][1]["jobs"][0]["id"]
    assert [name for name, _ in t.ran].count("on_error") == 1


def test_purging_finished_jobs_purges_their_workflows(engine_queue: Queue, t: SimpleNamespace) -> None:
    queue = engine_queue
    running = chord([t.add.s(1, 1), t.add.s(2, 2)], t.total.s()).delay()
    [member] = queue.storage.claim("w1", ["default"], 1, 30)
    queue.storage.complete([Completion(member.id, member.attempt, b"2", workflow_id=member.workflow_id)])
    assert queue.purge_completed(older_than=0) == 0  # its callback will read that result
    run_jobs(queue)
    assert running.result(timeout=0) == 6
    workflow = chain(t.add.s(1, 1), t.add.s(1)).delay()
    run_jobs(queue)
    assert workflow.result(timeout=0) == 3
    assert queue.purge_completed(older_than=0) == 5  # both workflows ended: every job goes
    assert queue.get_workflow(workflow.id) is None and queue.get_workflow(running.id) is None


def test_eager_mode_runs_workflows_inline(tmp_path) -> None:
    queue = Queue(db_path=str(tmp_path / "eager.db"), eager=True)
    t = declare(queue)
    assert chain(t.add.s(1, 2), t.add.s(10), t.add.si(1, 1)).delay().result() == 2
    assert group(t.add.s(i, i) for i in range(3)).delay().result() == [0, 2, 4]
    assert chord([t.add.s(1, 1), t.add.s(2, 2)], t.total.s()).delay().result() == 6
    assert chain(t.add.s(1, 1), chord([t.add.s(1), t.add.s(2)], t.total.s())).delay().result() == 7
    assert chunks(t.add, [(1, 1), (2, 2), (3, 3)], 2).delay().result() == [[2, 4], [6]]
    assert starmap(t.add, [(1, 1), (2, 2)]).delay().result() == [2, 4]
    failing = chain(t.add.s(1, 1), t.boom.s(), t.add.s(1), on_error=t.on_error.s("eager")).delay()
    assert failing.status == "failed"
    with pytest.raises(TaskFailedError, match="boom"):
        failing.result()
    [(_, (dead_id, error, tag))] = [entry for entry in t.ran if entry[0] == "on_error"]
    assert (dead_id, error, tag) == (failing.jobs[1].id, "ValueError: boom", "eager")
    assert not (tmp_path / "eager.db").exists() or queue.list_jobs() == []


def test_async_send_and_wait(engine_queue: Queue, t: SimpleNamespace) -> None:
    queue = engine_queue

    async def send() -> WorkflowResult:
        return await chord([t.add.s(1, 1), t.add.s(2, 2)], t.total.s()).adelay()

    workflow = asyncio.run(send())
    run_jobs(queue)

    async def wait() -> tuple[int, WorkflowResult | None]:
        return await workflow.aresult(timeout=5), await queue.aget_workflow(workflow.id)

    value, found = asyncio.run(wait())
    assert value == 6 and found is not None and found.status == "complete"


@pytest.fixture
def big_queue(engine_settings: dict[str, str]) -> Iterator[Queue]:
    queue = Queue(**engine_settings)
    yield queue
    queue.close()


def test_a_chord_of_ten_thousand_members_is_written_at_once(big_queue: Queue) -> None:
    t = declare(big_queue)
    workflow = chord((t.add.s(i, i) for i in range(10_000)), t.total.s()).delay()
    record = big_queue.storage.get_workflow(workflow.id)
    assert record is not None and [stage[1:] for stage in record.stages] == [(10_000, 10_000, True), (1, 1, False)]
    assert big_queue.stats()["pending"] == 10_001
    claimed = big_queue.storage.claim("w", ["default"], 20_000, 60)
    assert len(claimed) == 10_000  # the callback waits for the last member


def test_cancelling_a_pending_step_cancels_its_workflow(engine_queue: Queue, t: SimpleNamespace) -> None:
    queue = engine_queue

    @queue.task(expires=0.01)
    def hurried(value: int) -> int:
        return value

    workflow = chain(t.add.s(1, 1), hurried.s(), t.add.s(1), on_error=t.on_error.s("never")).delay()
    second = workflow.jobs[1]
    assert queue.cancel_job(second.id) is True
    assert workflow.status == "cancelled"
    assert [job.status for job in workflow.jobs] == ["cancelled"] * 3
    assert run_jobs(queue) == 0 and t.ran == []  # nothing runs, no error callback
    assert workflow.cancel() is False


def test_a_task_declared_with_expires_still_runs_as_a_later_step(engine_queue: Queue, t: SimpleNamespace) -> None:
    queue = engine_queue

    @queue.task(expires=0.01)
    def hurried(value: int) -> int:
        return value * 10

    workflow = chain(t.add.s(1, 1), hurried.s()).delay()
    time.sleep(0.05)  # past the task's expiry: a step waits its turn whatever its task's expires says
    run_jobs(queue)
    assert workflow.result(timeout=0) == 20


def test_many_async_waiters_wait_together_while_a_worker_runs(engine_queue: Queue, t: SimpleNamespace) -> None:
    """aresult() holds no thread while it waits: fifty waiters on one loop all see their workflow end."""
    queue = engine_queue
    workflows = [chain(t.add.s(i, 1), t.add.s(1)).delay() for i in range(50)]

    async def wait_all() -> list[int]:
        waiting = asyncio.gather(*(workflow.aresult(timeout=60) for workflow in workflows))
        await asyncio.sleep(0)  # every waiter is waiting before any job runs
        await asyncio.get_running_loop().run_in_executor(None, run_jobs, queue)
        return await waiting

    assert asyncio.run(wait_all()) == [i + 2 for i in range(50)]


def test_writing_a_workflow_again_after_a_lost_answer_adds_nothing(engine_queue: Queue, t: SimpleNamespace) -> None:
    from taskito.workflow import _plan

    plan = _plan(chord([t.add.s(1, 1), t.add.s(2, 2)], t.total.s()), None, {})
    engine_queue.storage.create_workflow(plan.workflow)
    engine_queue.storage.create_workflow(plan.workflow)  # the retry of a commit whose answer was lost
    assert engine_queue.stats()["pending"] == 3
    run_jobs(engine_queue)
    assert WorkflowResult(engine_queue, plan.workflow.id).result(timeout=0) == 6


def test_async_tasks_are_steps_like_any_other(engine_queue: Queue, t: SimpleNamespace) -> None:
    queue = engine_queue

    @queue.task()
    async def double(value: int) -> int:
        await asyncio.sleep(0)
        return 2 * value

    workflows = [chain(t.add.s(1, 2), double.s(), group(double.s(), t.add.s(1)), t.total.s()).delay(),
                 chunks(double, [(i,) for i in range(5)], 2).delay(),
                 starmap(double, [(1,), (2,)]).delay()]
    run_jobs(queue)
    assert [workflow.result(timeout=0) for workflow in workflows] == [19, [[0, 2], [4, 6], [8]], [2, 4]]


def test_a_step_cancelled_while_it_runs_ends_its_workflow_cancelled(engine_queue: Queue, t: SimpleNamespace) -> None:
    queue = engine_queue
    workflow = chain(t.add.s(1, 1), t.add.s(1), on_error=t.on_error.s("never")).delay()
    [first] = queue.storage.claim("w1", ["default"], 10, 30)
    assert queue.cancel_job(first.id) is True  # a request to the worker holding it
    assert queue.storage.finish_cancelled(first.id, first.attempt, "cancelled while running", None)
    assert workflow.status == "cancelled"
    assert [job.status for job in workflow.jobs] == ["cancelled", "cancelled"]
    assert run_jobs(queue) == 0 and t.ran == []


def test_stored_and_eager_workflows_both_answer_what_workflow_handle_promises(tmp_path) -> None:
    from taskito import WorkflowHandle
    from taskito.workflow import EagerWorkflowResult

    promised = {name for name in dir(WorkflowHandle) if not name.startswith("_")}
    assert promised == {"id", "status", "jobs", "refresh", "cancel", "result", "aresult"}
    queue = Queue(db_path=str(tmp_path / "t.db"), eager=True)
    t = declare(queue)
    ran = chain(t.add.s(1, 2), t.add.s(3)).delay()
    assert isinstance(ran, EagerWorkflowResult) and promised <= set(dir(ran))
    assert promised <= set(dir(WorkflowResult(queue, ran.id)))
    assert (ran.status, ran.result(), [job.status for job in ran.jobs], ran.cancel()) == (
        "complete", 6, ["complete", "complete"], False)
