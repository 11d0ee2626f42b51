"""The storage contract: every engine must pass these, unchanged (see engine_queue)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from taskito import JobNotFoundError, Queue
from taskito.storage import Completion, NewJob, PeriodicDef, Started

WORKER = "contract-worker"


def job(q: Queue, task: str = "t", **fields) -> NewJob:
    return NewJob(id=uuid.uuid4().hex, task_name=task, payload=q.encode_payload(task, fields.pop("args", ()), None),
                  **fields)


def test_enqueue_then_get_round_trips_every_field(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    new = job(engine_queue, "mail.send", args=(1, "x"), queue="mail", priority=5, max_retries=2, timeout=9.5)
    [job_id] = storage.enqueue([new])
    record = storage.get_job(job_id)
    assert record is not None
    assert (record.task_name, record.queue, record.status, record.priority) == ("mail.send", "mail", "pending", 5)
    assert (record.max_retries, record.timeout, record.retry_count) == (2, 9.5, 0)
    assert engine_queue.serializer.loads(record.payload) == {"args": [1, "x"], "kwargs": {}}
    assert storage.get_job("no-such-id") is None


def test_stats_always_has_six_keys(engine_queue: Queue) -> None:
    expected = {"pending", "running", "completed", "failed", "dead", "cancelled"}
    assert set(engine_queue.stats()) == expected
    assert engine_queue.stats() == dict.fromkeys(expected, 0)
    engine_queue.storage.enqueue([job(engine_queue, queue="a"), job(engine_queue, queue="b")])
    assert engine_queue.stats()["pending"] == 2
    assert engine_queue.stats_by_queue("a") == {**dict.fromkeys(expected, 0), "pending": 1}
    assert set(engine_queue.stats_all_queues()) == {"a", "b"}


def test_claim_orders_by_priority_then_schedule_then_enqueue_order(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    low1, high, low2 = job(engine_queue, priority=0), job(engine_queue, priority=9), job(engine_queue, priority=0)
    delayed = job(engine_queue, priority=9, delay=60)
    storage.enqueue([low1, high, low2, delayed])
    claimed = storage.claim(WORKER, ["default"], 10, 30)
    assert [r.id for r in claimed] == [high.id, low1.id, low2.id]
    # Claimed, not started: shown as pending, held by the worker, with no start time yet.
    assert all((r.status, r.worker_id, r.started_at, r.attempt) == ("pending", WORKER, None, 1) for r in claimed)
    assert storage.claim(WORKER, ["default"], 10, 30) == []


def test_a_claimed_job_is_pending_until_the_worker_marks_its_start(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    ids = storage.enqueue([job(engine_queue, queue="q", unique_key=f"k{n}") for n in range(3)])
    claimed = {r.id: r for r in storage.claim(WORKER, ["q"], 10, 30)}
    six = dict.fromkeys(("pending", "running", "completed", "failed", "dead", "cancelled"), 0)
    assert engine_queue.stats() == {**six, "pending": 3}
    assert engine_queue.stats_all_queues() == {"q": {**six, "pending": 3}}
    assert engine_queue.list_jobs(status="running") == []
    assert {j.id for j in engine_queue.list_jobs(status="pending")} == set(ids)
    assert storage.enqueue([job(engine_queue, queue="q", unique_key="k0")]) == [ids[0]]  # still held

    began = time.time() - 5.0
    first, second, third = (claimed[job_id] for job_id in ids)
    storage.start([Started(first.id, first.attempt, began), Started(second.id, second.attempt + 1, began)])
    assert engine_queue.stats() == {**six, "pending": 2, "running": 1}
    assert storage.task_metrics([1.0])["t"]["counts"] == {**six, "pending": 2, "running": 1}
    assert [j.id for j in engine_queue.list_jobs(status="running")] == [first.id]
    record = storage.get_job(first.id)
    assert (record.status, record.started_at, record.worker_id) == ("running", began, WORKER)
    assert storage.get_job(second.id).status == "pending"  # a stale attempt's mark changes nothing

    # A completion carries its start and finish: its start mark need not have been written.
    storage.complete([Completion(second.id, second.attempt, b"1", started_at=began, finished_at=began + 0.05)])
    done = storage.get_job(second.id)
    assert (done.status, done.started_at, done.finished_at) == ("complete", began, began + 0.05)
    storage.start([Started(second.id, second.attempt, time.time())])  # a late mark does not undo it
    assert storage.get_job(second.id).status == "complete"
    # So does a failure: the attempt's start is recorded with it.
    assert storage.fail(third.id, third.attempt, "ValueError: x", None, retry_delay=None, started_at=began)
    assert (storage.get_job(third.id).status, storage.get_job(third.id).started_at) == ("dead", began)


def test_claim_respects_queues_limit_and_pause(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    storage.enqueue([job(engine_queue, queue="a") for _ in range(3)] + [job(engine_queue, queue="b")])
    engine_queue.pause("a")
    assert engine_queue.paused_queues() == ["a"]
    assert [r.queue for r in storage.claim(WORKER, ["a", "b"], 10, 30)] == ["b"]
    engine_queue.resume("a")
    assert len(storage.claim(WORKER, ["a"], 2, 30)) == 2
    assert len(storage.claim(WORKER, ["a"], 2, 30)) == 1


def test_concurrent_claims_never_hand_a_job_out_twice(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    storage.enqueue([job(engine_queue) for _ in range(300)])
    seen: list[str] = []
    lock = threading.Lock()

    def claimer() -> None:
        while batch := storage.claim(WORKER, ["default"], 7, 30):
            with lock:
                seen.extend(r.id for r in batch)

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 300 and len(set(seen)) == 300


def test_complete_is_fenced_by_attempt(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    [job_id] = storage.enqueue([job(engine_queue)])
    [record] = storage.claim(WORKER, ["default"], 1, 30)
    storage.start([Started(job_id, record.attempt, time.time())])
    storage.complete([Completion(job_id, record.attempt + 1, b"1")])  # a stale attempt changes nothing
    assert storage.get_job(job_id).status == "running"
    storage.complete([Completion(job_id, record.attempt, engine_queue.serializer.dumps(42))])
    done = storage.get_job(job_id)
    assert done.status == "complete" and engine_queue.serializer.loads(done.result) == 42
    assert done.finished_at is not None


def test_fail_retries_then_dies_with_history(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    [job_id] = storage.enqueue([job(engine_queue, max_retries=1)])
    [first] = storage.claim(WORKER, ["default"], 1, 30)
    assert storage.fail(job_id, first.attempt, "ValueError: one", "tb1", retry_delay=0.0)
    assert storage.get_job(job_id).status == "failed"
    [second] = storage.claim(WORKER, ["default"], 1, 30)
    assert second.id == job_id and second.retry_count == 1
    assert not storage.fail(job_id, first.attempt, "stale", None, None)
    assert storage.fail(job_id, second.attempt, "ValueError: two", "tb2", retry_delay=None)
    record = storage.get_job(job_id)
    assert record.status == "dead" and record.error == "ValueError: two"
    assert [(e["error"], e["traceback"]) for e in storage.job_errors(job_id)] == [
        ("ValueError: one", "tb1"), ("ValueError: two", "tb2")]
    assert [j.id for j in engine_queue.dead_letters()] == [job_id]


def test_retry_dead_replaces_the_dead_letter(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    [job_id] = storage.enqueue([job(engine_queue, args=(7,), max_retries=0)])
    [record] = storage.claim(WORKER, ["default"], 1, 30)
    storage.fail(job_id, record.attempt, "boom", None, None)
    new_id = engine_queue.retry_dead(job_id)
    fresh = storage.get_job(new_id)
    assert fresh.status == "pending" and fresh.payload == record.payload
    assert storage.get_job(job_id) is None
    with pytest.raises(JobNotFoundError):
        engine_queue.retry_dead(job_id)
    # the same replay run again (a commit whose answer was lost): the same job, not an error
    assert storage.retry_dead(job_id, new_id) == new_id
    assert storage.retry_dead(job_id, "some-other-id") is None


def test_two_operators_retrying_the_same_dead_letters_make_one_job_each(engine_settings: dict) -> None:
    """A double click on "retry" in the dashboard or admin must not run the job twice."""
    operators = [Queue(**engine_settings) for _ in range(2)]
    storage = operators[0].storage
    ids = storage.enqueue([job(operators[0], max_retries=0) for _ in range(40)])
    for record in storage.claim(WORKER, ["default"], 40, 30):
        storage.fail(record.id, record.attempt, "boom", None, None)
    retried: list[list[str]] = [[], []]
    start = threading.Barrier(2)

    def retry_all(index: int) -> None:
        start.wait()
        for job_id in ids:
            try:
                retried[index].append(operators[index].retry_dead(job_id))
            except JobNotFoundError:
                pass

    threads = [threading.Thread(target=retry_all, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len(retried[0]) + len(retried[1]) == 40
        assert operators[0].stats()["pending"] == 40
    finally:
        for q in operators:
            q.close()


def test_a_pool_of_one_connection_serves_a_whole_queue(engine_settings: dict) -> None:
    q = Queue(**engine_settings, pool_size=1)
    try:
        [job_id] = q.storage.enqueue([job(q)])
        [record] = q.storage.claim(WORKER, ["default"], 1, 30)
        q.storage.complete([Completion(job_id, record.attempt, None)])
        assert q.get_job(job_id).status == "complete"
    finally:
        q.close()


def test_delete_and_purge_dead(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    ids = storage.enqueue([job(engine_queue, max_retries=0) for _ in range(3)])
    for record in storage.claim(WORKER, ["default"], 3, 30):
        storage.fail(record.id, record.attempt, "boom", None, None)
    assert engine_queue.delete_dead(ids[0]) is True
    assert engine_queue.delete_dead(ids[0]) is False
    assert engine_queue.purge_dead(older_than=3600) == 0
    assert engine_queue.purge_dead(older_than=0) == 2
    assert engine_queue.stats()["dead"] == 0


def test_purge_completed_keeps_recent_jobs(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    storage.enqueue([job(engine_queue) for _ in range(2)])
    storage.complete([Completion(r.id, r.attempt, b"null") for r in storage.claim(WORKER, ["default"], 2, 30)])
    assert engine_queue.purge_completed(older_than=3600) == 0
    assert engine_queue.purge_completed(older_than=0) == 2
    assert engine_queue.stats()["completed"] == 0


def test_requeue_puts_running_jobs_back_without_counting_an_attempt(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    running_id, claimed_id = storage.enqueue([job(engine_queue), job(engine_queue)])
    attempts = {r.id: r.attempt for r in storage.claim(WORKER, ["default"], 2, 30)}
    storage.start([Started(running_id, attempts[running_id], time.time())])
    storage.requeue("another-worker", [running_id, claimed_id])
    assert storage.get_job(running_id).status == "running"
    assert storage.get_job(claimed_id).worker_id == WORKER
    storage.requeue(WORKER, [running_id, claimed_id])
    for job_id in (running_id, claimed_id):
        record = storage.get_job(job_id)
        assert (record.status, record.retry_count, record.worker_id, record.started_at) == ("pending", 0, None, None)
    assert {r.id for r in storage.claim(WORKER, ["default"], 2, 30)} == {running_id, claimed_id}  # due as before


def test_a_rate_limit_hands_out_time_slots_that_every_claimer_shares(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    storage.enqueue([job(engine_queue) for _ in range(10)])
    before = time.time()
    first = storage.claim("worker-a", ["default"], 10, 30, {"t": 2.0})
    second = storage.claim("worker-b", ["default"], 10, 30, {"t": 2.0})  # another worker, at once
    assert len(first) == 3 and second == []  # 2/s: the slots that begin within a second, whoever asks
    slots = [record.start_after for record in first]
    assert before <= slots[0] <= time.time()
    assert [round(b - a, 6) for a, b in zip(slots, slots[1:], strict=False)] == [0.5, 0.5]
    assert storage.claim("worker-c", ["default"], 10, 30) != []  # the limit comes with the claim (the worker's tasks)


def test_expired_leases_are_reported_and_heartbeats_renew_only_held_jobs(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    held, forgotten = storage.enqueue([job(engine_queue), job(engine_queue)])
    storage.claim(WORKER, ["default"], 2, lease_seconds=0.01)
    time.sleep(0.05)  # the leases must run out; nothing to poll for
    assert {r.id for r in storage.reap_expired_leases()} == {held, forgotten}
    storage.heartbeat(WORKER, 30, [held])
    assert [r.id for r in storage.reap_expired_leases()] == [forgotten]


def test_unique_key_returns_the_live_job(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    first = storage.enqueue([job(engine_queue, unique_key="report-1")])
    second = storage.enqueue([job(engine_queue, unique_key="report-1")])
    assert first == second
    [record] = storage.claim(WORKER, ["default"], 1, 30)
    storage.complete([Completion(record.id, record.attempt, b"null")])
    third = storage.enqueue([job(engine_queue, unique_key="report-1")])
    assert third != first


def test_dependencies_wait_and_cancel_in_cascade(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    [parent] = storage.enqueue([job(engine_queue)])
    [child] = storage.enqueue([job(engine_queue, depends_on=[parent])])
    [grandchild] = storage.enqueue([job(engine_queue, depends_on=[child])])
    assert storage.get_job(child).depends_on == [parent]
    assert [r.id for r in storage.claim(WORKER, ["default"], 10, 30)] == [parent]
    storage.complete([Completion(parent, 1, b"null")])
    assert [r.id for r in storage.claim(WORKER, ["default"], 10, 30)] == [child]
    # a second tree whose root is cancelled: every dependent is cancelled too
    [root] = storage.enqueue([job(engine_queue)])
    [leaf] = storage.enqueue([job(engine_queue, depends_on=[root])])
    [leaf2] = storage.enqueue([job(engine_queue, depends_on=[leaf])])
    assert engine_queue.cancel_job(root) is True
    assert {storage.get_job(i).status for i in (root, leaf, leaf2)} == {"cancelled"}
    assert storage.get_job(grandchild).status == "pending"
    with pytest.raises(JobNotFoundError):
        storage.enqueue([job(engine_queue, depends_on=["missing"])])


def test_a_stale_completion_does_not_release_dependents_twice(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    first, second = storage.enqueue([job(engine_queue), job(engine_queue)])
    [child] = storage.enqueue([job(engine_queue, depends_on=[first, second])])
    claimed = {r.id: r for r in storage.claim(WORKER, ["default"], 2, 30)}
    storage.complete([Completion(first, claimed[first].attempt, b"null")])
    storage.complete([Completion(first, claimed[first].attempt, b"null")])  # delivered twice
    assert storage.claim(WORKER, ["default"], 10, 30) == []
    storage.complete([Completion(second, claimed[second].attempt, b"null")])
    assert [r.id for r in storage.claim(WORKER, ["default"], 10, 30)] == [child]


def test_cancel_of_a_held_job_asks_its_worker(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    [job_id] = storage.enqueue([job(engine_queue)])
    [claimed] = storage.claim(WORKER, ["default"], 1, 30)
    assert storage.cancel_requests(WORKER) == []
    assert engine_queue.cancel_job(job_id) is True  # a request: the worker holding it stops it
    assert engine_queue.get_job(job_id).status == "pending"  # claimed, not finished until its worker says so
    assert storage.cancel_requests(WORKER) == [(job_id, claimed.attempt)]
    assert storage.cancel_requests("another-worker") == []
    assert storage.finish_cancelled(job_id, claimed.attempt, "cancelled while running", None) is True
    assert engine_queue.get_job(job_id).status == "cancelled"
    assert storage.finish_cancelled(job_id, claimed.attempt, "again", None) is False
    assert engine_queue.cancel_job(job_id) is False
    assert engine_queue.cancel_job("missing") is False


def test_a_held_job_put_back_after_a_cancel_request_is_cancelled_never_run(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    [job_id] = storage.enqueue([job(engine_queue)])
    [dependent] = storage.enqueue([job(engine_queue, depends_on=(job_id,))])
    storage.claim(WORKER, ["default"], 1, 30)
    assert engine_queue.cancel_job(job_id) is True
    storage.requeue(WORKER, [job_id])  # its worker stopped before it saw the request
    assert storage.claim("another-worker", ["default"], 10, 30) == []
    assert engine_queue.get_job(job_id).status == "cancelled"
    assert engine_queue.get_job(dependent).status == "cancelled"


def test_expired_jobs_are_cancelled_not_run(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    [job_id] = storage.enqueue([job(engine_queue, expires=0.0, delay=0.01)])
    time.sleep(0.02)  # let the job's start deadline pass
    assert storage.claim(WORKER, ["default"], 1, 30) == []
    record = storage.get_job(job_id)
    assert record.status == "cancelled" and "expired" in record.error


def test_a_job_expiring_while_it_waits_for_a_retry_keeps_its_last_error(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    [job_id] = storage.enqueue([job(engine_queue, expires=1.0)])  # room for a claim on a busy machine
    [record] = storage.claim(WORKER, ["default"], 1, 30)
    storage.fail(job_id, record.attempt, "ValueError: flaky", None, 60.0)  # retry in a minute
    while time.time() <= record.expires_at:  # the job's start deadline passes
        time.sleep(0.02)
    assert storage.claim(WORKER, ["default"], 1, 30) == []
    record = storage.get_job(job_id)
    assert record.status == "cancelled"
    assert record.error == "expired before its retry started; last error: ValueError: flaky"


def test_list_jobs_filters_and_paginates_newest_first(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    ids = storage.enqueue([job(engine_queue, "a", queue="q1") for _ in range(5)]
                          + [job(engine_queue, "b", queue="q2") for _ in range(2)])
    assert [j.id for j in engine_queue.list_jobs(limit=3)] == ids[::-1][:3]
    assert [j.id for j in engine_queue.list_jobs(limit=3, offset=3)] == ids[::-1][3:6]
    assert len(engine_queue.list_jobs(task_name="a")) == 5
    assert len(engine_queue.list_jobs(queue="q2", status="pending")) == 2
    assert engine_queue.list_jobs(status="dead") == []
    with pytest.raises(ValueError, match="unknown status 'done'"):
        engine_queue.list_jobs(status="done")


def test_the_first_attempts_start_is_kept_across_retries(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    [job_id] = storage.enqueue([job(engine_queue)])
    assert storage.get_job(job_id).first_started_at is None  # not started yet
    [first] = storage.claim(WORKER, ["default"], 1, 30)
    storage.start([Started(job_id, first.attempt, 1000.0)])
    assert storage.get_job(job_id).first_started_at == 1000.0
    storage.fail(job_id, first.attempt, "ValueError: once", None, 0.0)
    [second] = storage.claim(WORKER, ["default"], 1, 30)
    storage.start([Started(job_id, second.attempt, 2000.0)])
    record = storage.get_job(job_id)
    assert (record.started_at, record.first_started_at) == (2000.0, 1000.0)
    # A start reported only with the failure (the attempt failed before its start mark was written).
    storage.fail(job_id, second.attempt, "ValueError: twice", None, 0.0, started_at=2000.0)
    [third] = storage.claim(WORKER, ["default"], 1, 30)
    storage.fail(job_id, third.attempt, "ValueError: thrice", None, None, started_at=3000.0)
    record = storage.get_job(job_id)
    assert (record.status, record.started_at, record.first_started_at) == ("dead", 3000.0, 1000.0)
    [retried] = storage.enqueue([job(engine_queue)])
    [attempt] = storage.claim(WORKER, ["default"], 1, 30)
    storage.fail(retried, attempt.attempt, "ValueError: once", None, 0.0, started_at=4000.0)
    assert storage.get_job(retried).first_started_at == 4000.0  # its start known only from the failure


def test_list_jobs_sorts_by_a_column_then_enqueue_order(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    ids = storage.enqueue([job(engine_queue, name, queue=q) for name, q in
                           [("b", "q2"), ("a", "q1"), ("c", "q1"), ("a", "q2"), ("b", "q1")]])
    by_task = [(j.task_name, j.id) for j in engine_queue.list_jobs(order_by="task")]
    assert by_task == [("a", ids[1]), ("a", ids[3]), ("b", ids[0]), ("b", ids[4]), ("c", ids[2])]
    assert [j.id for j in engine_queue.list_jobs(order_by="-task", limit=2, offset=1)] == [ids[4], ids[0]]
    assert [j.id for j in engine_queue.list_jobs(order_by="queue", queue=None)][:3] == [ids[1], ids[2], ids[4]]
    assert [j.id for j in engine_queue.list_jobs(order_by="created")] == ids
    for bad in ("payload", "task; DROP TABLE taskito_jobs", "--task", None):
        with pytest.raises(ValueError, match="order_by must be one of created, task, queue, status, priority"):
            engine_queue.list_jobs(order_by=bad)  # type: ignore[arg-type]
    assert len(engine_queue.list_jobs()) == 5


def test_workers_and_heartbeats(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    storage.register_worker("w1", {"hostname": "h", "pid": 1, "queues": ["a", "b"], "concurrency": 4})
    storage.heartbeat("w1", 30, [])
    [worker] = engine_queue.workers()
    assert (worker["id"], worker["queues"], worker["concurrency"], worker["running"]) == ("w1", ["a", "b"], 4, 0)
    storage.unregister_worker("w1")
    assert engine_queue.workers() == []


def test_progress_is_stored(engine_queue: Queue) -> None:
    [job_id] = engine_queue.storage.enqueue([job(engine_queue)])
    engine_queue.storage.set_progress(job_id, 42.5)
    assert engine_queue.get_job(job_id).progress == 42.5


def test_periodic_tick_fires_once_across_schedulers(engine_queue: Queue) -> None:
    storage = engine_queue.storage
    payload = engine_queue.encode_payload("tick", (), None)
    now = time.time()
    storage.register_periodic(PeriodicDef("tick", "tick", "* * * * * *", payload, "default", None, now - 1))
    [due] = storage.due_periodic(now)
    fired = [storage.fire_periodic("tick", due.next_run_at, now + 1, job(engine_queue, "tick")) for _ in range(3)]
    assert fired == [True, False, False]
    assert engine_queue.stats()["pending"] == 1
    # re-registering the same schedule keeps the next run; a changed schedule resets it
    storage.register_periodic(PeriodicDef("tick", "tick", "* * * * * *", payload, "default", None, now + 99))
    assert storage.due_periodic(now + 2)
    storage.register_periodic(PeriodicDef("tick", "tick", "*/2 * * * * *", payload, "default", None, now + 99))
    assert storage.due_periodic(now + 2) == []


def test_enqueueing_the_same_jobs_again_adds_nothing(engine_queue: Queue) -> None:
    """What an enqueue run again after a commit whose answer was lost does: ids are the client's,
    so the second run finds its jobs stored and makes no second job."""
    storage = engine_queue.storage
    single, keyed = job(engine_queue), job(engine_queue, unique_key="nightly")
    batch = [job(engine_queue) for _ in range(3)]
    dependent = job(engine_queue, depends_on=[single.id])
    for _ in range(2):
        assert storage.enqueue([single]) == [single.id]
        assert storage.enqueue(batch) == [new.id for new in batch]
        assert storage.enqueue([keyed]) == [keyed.id]
        assert storage.enqueue([dependent]) == [dependent.id]
    assert engine_queue.stats()["pending"] == 6
    assert storage.get_job(dependent.id).depends_on == [single.id]
