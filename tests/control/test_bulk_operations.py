"""Bulk operations: purge a queue, revoke a task, retry every dead letter, replay a finished job."""

from __future__ import annotations

import pytest

from taskito import InvalidValueError, JobNotFoundError, Queue
from taskito.storage import Completion
from tests.control.conftest import APP, APPS
from tests.support import run_cli

WORKER = "test-worker"


def finish(client: Queue, queue_name: str, dead: bool) -> str:
    """Claim the one waiting job of ``queue_name`` and complete it, or fail it for good."""
    [record] = client.storage.claim(WORKER, [queue_name], 1, 30)
    if dead:
        client.storage.fail(record.id, record.attempt, "ValueError: boom", None, None)
    else:
        client.storage.complete([Completion(record.id, record.attempt, client.serializer.dumps(record.id[:4]))])
    return record.id


def test_purge_queue_cancels_its_waiting_jobs_and_their_dependents_only(client: Queue) -> None:
    held = client.enqueue("control_app.free", args=(0,), queue="bulk")
    [record] = client.storage.claim(WORKER, ["bulk"], 1, 30)  # a worker holds it: it goes on
    assert record.id == held.id
    retrying = client.enqueue("control_app.free", args=(9,), queue="bulk")
    [record] = client.storage.claim(WORKER, ["bulk"], 1, 30)
    client.storage.fail(record.id, record.attempt, "ValueError: once", None, 60)  # waits for its retry
    waiting = [client.enqueue("control_app.free", args=(i,), queue="bulk") for i in range(3)]
    other = client.enqueue("control_app.free", args=(1,))
    dependent = client.enqueue("control_app.after", args=("x",), depends_on=waiting[1])
    assert client.purge_queue("bulk") == 4
    assert {client.get_job(job.id).status for job in [*waiting, retrying]} == {"cancelled"}
    assert client.get_job(dependent.id).status == "cancelled"  # of another queue, but it depended on one
    assert client.get_job(other.id).status == "pending"
    assert client.get_job(held.id).status == "pending" and client.get_job(held.id).record.worker_id == WORKER
    assert client.purge_queue("bulk") == 0
    assert client.purge_queue("no-such-queue") == 0
    with pytest.raises(InvalidValueError, match="queue"):
        client.purge_queue("")


def test_revoke_task_cancels_its_waiting_jobs_and_leaves_it_usable(client: Queue) -> None:
    doomed = [client.enqueue("control_app.free", args=(i,)) for i in range(3)]
    kept = client.enqueue("control_app.capped", args=(1,))
    assert client.revoke_task("control_app.free") == 3
    assert {client.get_job(job.id).status for job in doomed} == {"cancelled"}
    assert client.get_job(kept.id).status == "pending"
    assert client.enqueue("control_app.free", args=(5,)).status == "pending"  # later jobs are not revoked


def test_retry_all_dead_filters_by_task_and_queue_and_returns_the_new_ids(client: Queue) -> None:
    client.enqueue("control_app.free", args=(1,), queue="a")
    a_free = finish(client, "a", dead=True)
    client.enqueue("control_app.capped", args=(1,), queue="a")
    a_capped = finish(client, "a", dead=True)
    client.enqueue("control_app.free", args=(2,), queue="b")
    b_free = finish(client, "b", dead=True)
    assert client.retry_all_dead(task="control_app.free", queue="a") != []
    assert client.get_job(a_free) is None  # replaced by its replay
    assert {client.get_job(job_id) is not None for job_id in (a_capped, b_free)} == {True}
    new_ids = client.retry_all_dead()
    assert len(new_ids) == 2 and all(client.get_job(job_id).status == "pending" for job_id in new_ids)
    assert client.stats()["dead"] == 0 and client.retry_all_dead() == []


def test_replay_copies_task_arguments_and_options_of_a_finished_job(client: Queue) -> None:
    client.enqueue("control_app.per_tenant", args=("t1", 3), queue="replays", priority=7, max_retries=5)
    done = finish(client, "replays", dead=False)
    copy = client.replay(done)
    assert copy.id != done and client.get_job(done).status == "complete"
    original, replayed = client.get_job(done).to_dict(), copy.to_dict()
    for key in ("task_name", "args", "kwargs", "queue", "priority", "max_retries", "concurrency_key"):
        assert replayed[key] == original[key], key
    assert replayed["status"] == "pending"
    waiting = client.enqueue("control_app.free", args=(1,))
    with pytest.raises(InvalidValueError, match="only a finished job"):
        client.replay(waiting.id)
    with pytest.raises(JobNotFoundError):
        client.replay("0" * 32)


def test_bulk_cli_commands_confirm_and_report(client: Queue, engine_env: dict[str, str]) -> None:
    for i in range(2):
        client.enqueue("control_app.free", args=(i,), queue="bulk")
    asked = run_cli("purge-queue", "--app", APP, "bulk", cwd=APPS, env=engine_env)
    assert asked.returncode == 1 and client.stats()["pending"] == 2  # no --yes and no terminal: nothing done
    purged = run_cli("purge-queue", "--app", APP, "bulk", "--yes", cwd=APPS, env=engine_env)
    assert purged.returncode == 0 and "cancelled 2 waiting job(s) of queue bulk" in purged.stdout
    client.enqueue("control_app.capped", args=(1,))
    revoked = run_cli("revoke", "--app", APP, "control_app.capped", "--yes", cwd=APPS, env=engine_env)
    assert revoked.returncode == 0 and "cancelled 1 waiting job(s)" in revoked.stdout
    client.enqueue("control_app.free", args=(3,), queue="bulk")
    dead = finish(client, "bulk", dead=True)
    retried = run_cli("dead", "retry-all", "--app", APP, "--task", "control_app.free", cwd=APPS, env=engine_env)
    assert retried.returncode == 0 and "replayed 1 dead letter(s)" in retried.stdout
    [new_job] = client.list_jobs(status="pending")
    finish(client, "bulk", dead=False)
    replayed = run_cli("replay", "--app", APP, new_job.id, cwd=APPS, env=engine_env)
    assert replayed.returncode == 0 and f"{new_job.id} replayed as" in replayed.stdout
    missing = run_cli("replay", "--app", APP, dead, cwd=APPS, env=engine_env)  # replaced by its retry
    assert missing.returncode == 1 and "no job with id" in missing.stderr and "Traceback" not in missing.stderr
    waiting = client.enqueue("control_app.free", args=(4,), delay=3600)
    cancelled = run_cli("cancel", "--app", APP, waiting.id, cwd=APPS, env=engine_env)
    assert cancelled.returncode == 0 and client.get_job(waiting.id).status == "cancelled"
    again = run_cli("cancel", "--app", APP, waiting.id, cwd=APPS, env=engine_env)
    assert again.returncode == 1 and "nothing to cancel" in again.stderr


def test_the_control_methods_have_async_twins(client: Queue) -> None:
    import asyncio

    async def main() -> tuple[int, list[dict[str, object]]]:
        await client.aenqueue("control_app.free", args=(1,))
        return await client.arevoke_task("control_app.free"), await client.aperiodic_schedules()

    revoked, schedules = asyncio.run(main())
    assert revoked == 1 and [item["name"] for item in schedules] == ["control_app.tick"]
