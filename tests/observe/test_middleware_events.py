"""Middleware and events: declared once, run around every job, never able to break one."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from taskito import InvalidValueError, JobInfo, MaxRetriesExceededError, Middleware, Queue, Registry
from tests.support import start_worker, wait_until

APPS = Path(__file__).resolve().parent.parent / "apps"


def observed(tmp_path: Path) -> list[dict[str, Any]]:
    log = tmp_path / "observed.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


class Trail(Middleware):
    def __init__(self, name: str, trail: list[str]) -> None:
        self.name, self.trail = name, trail

    def on_enqueue(self, job: JobInfo) -> None:
        job.headers[self.name] = "yes"
        self.trail.append(f"{self.name} enqueue {job.task_name}")

    def before(self, job: JobInfo) -> None:
        self.trail.append(f"{self.name} before {sorted(job.headers)}")

    def after(self, job: JobInfo, result: Any, error: BaseException | None) -> None:
        self.trail.append(f"{self.name} after {result!r} {type(error).__name__ if error else None}")

    def on_retry(self, job: JobInfo, error: str, delay: float) -> None:
        self.trail.append(f"{self.name} retry {error}")

    def on_dead(self, job: JobInfo, error: str) -> None:
        self.trail.append(f"{self.name} dead {error}")

    def on_cancel(self, job: JobInfo) -> None:
        self.trail.append(f"{self.name} cancel {job.id}")


def test_eager_jobs_pass_through_middleware_in_order_and_events_fire(tmp_path: Path) -> None:
    queue = Queue(db_path=str(tmp_path / "q.db"), eager=True)
    trail: list[str] = []
    events: list[dict[str, Any]] = []
    queue.add_middleware(Trail("outer", trail))
    queue.add_middleware(Trail("inner", trail))
    for name in ("job.enqueued", "job.started", "job.completed", "job.retrying", "job.dead"):
        queue.on_event(name)(events.append)

    @queue.task()
    def add(a: int, b: int) -> int:
        return a + b

    @queue.task(max_retries=1)
    def boom() -> None:
        raise ValueError("nope")

    assert add.delay(2, 3).result() == 5
    assert trail == ["outer enqueue " + add.name, "inner enqueue " + add.name,
                     "outer before ['inner', 'outer']", "inner before ['inner', 'outer']",
                     "inner after 5 None", "outer after 5 None"]  # after unwinds: inner first
    assert [event["event"] for event in events] == ["job.enqueued", "job.started", "job.completed"]
    assert {event["task_name"] for event in events} == {add.name}
    trail.clear()
    events.clear()
    with pytest.raises(MaxRetriesExceededError):
        boom.delay().result()
    assert [line for line in trail if "retry" in line or "dead" in line] == [
        "outer retry ValueError: nope", "inner retry ValueError: nope",
        "outer dead ValueError: nope", "inner dead ValueError: nope"]
    assert [event["event"] for event in events] == ["job.enqueued", "job.started", "job.retrying", "job.started",
                                                    "job.dead"]
    assert events[-1]["error"] == "ValueError: nope"


def test_a_failing_middleware_or_handler_is_logged_and_the_job_goes_on(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    queue = Queue(db_path=str(tmp_path / "q.db"), eager=True)

    class Broken:
        def on_enqueue(self, job: JobInfo) -> None:
            raise RuntimeError("enqueue broke")

        def before(self, job: JobInfo) -> None:
            raise RuntimeError("before broke")

        def after(self, job: JobInfo, result: Any, error: BaseException | None) -> None:
            raise SystemExit("after broke")  # not even a BaseException escapes

    queue.add_middleware(Broken())

    @queue.on_event("job.completed")
    def explode(event: dict[str, Any]) -> None:
        raise RuntimeError("handler broke")

    @queue.task()
    def double(x: int) -> int:
        return 2 * x

    with caplog.at_level(logging.ERROR, logger="taskito.middleware"):
        assert double.delay(21).result() == 42
    messages = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    for method in ("on_enqueue", "before", "after"):
        assert f"raised in {method}; the job goes on" in messages
    assert "handler" in messages and "of job.completed raised" in messages


def test_bad_declarations_are_refused_with_what_to_do(tmp_path: Path) -> None:
    queue = Queue(db_path=str(tmp_path / "q.db"))
    with pytest.raises(InvalidValueError, match=r"unknown event 'job.finished': the events are job.enqueued"):
        queue.on_event("job.finished")
    with pytest.raises(InvalidValueError, match=r"is no middleware: it has none of the methods on_enqueue"):
        queue.add_middleware(object())
    assert queue.registry.middleware == [] and queue.registry.event_handlers == {}


def test_middleware_declared_on_a_registry_runs_for_every_queue_that_takes_it(tmp_path: Path) -> None:
    registry = Registry()
    trail: list[str] = []
    registry.add_middleware(Trail("shared", trail))
    seen: list[str] = []
    registry.on_event("job.completed")(lambda event: seen.append(event["job_id"]))

    @registry.task(name="square")
    def square(x: int) -> int:
        return x * x

    first = Queue(db_path=str(tmp_path / "a.db"), eager=True, registry=registry)
    second = Queue(db_path=str(tmp_path / "b.db"), eager=True, registry=registry)
    jobs = [first.enqueue("square", (3,)), second.enqueue("square", (4,))]
    assert [job.result() for job in jobs] == [9, 16]
    assert seen == [job.id for job in jobs]
    assert trail.count("shared after 9 None") == 1 and trail.count("shared after 16 None") == 1


def test_cancelling_a_job_tells_middleware_and_handlers(engine_queue: Queue) -> None:
    trail: list[str] = []
    events: list[dict[str, Any]] = []
    engine_queue.add_middleware(Trail("m", trail))
    engine_queue.on_event("job.cancelled")(events.append)
    job = engine_queue.enqueue("not.imported.here", delay=60)
    assert engine_queue.cancel_job(job.id)
    assert trail[-1] == f"m cancel {job.id}"
    assert [(event["event"], event["job_id"], event["queue"]) for event in events] == [
        ("job.cancelled", job.id, "default")]
    assert not engine_queue.cancel_job(job.id)  # nothing happened: nothing told
    assert len(events) == 1


@pytest.mark.parametrize("pool", ["thread", "prefork"])
def test_a_real_worker_runs_middleware_and_events_and_the_trace_headers_travel(
        engine_env: dict[str, str], tmp_path: Path, pool: str) -> None:
    sys.path.insert(0, str(APPS))
    try:
        import observe_app
    finally:
        sys.path.remove(str(APPS))
    client = Queue(registry=observe_app.queue.registry)  # the web app's side, with the same middleware
    worker = start_worker("observe_app:queue", APPS, "--pool", pool, "--concurrency", "2", env=engine_env)
    try:
        ok = client.enqueue("observe_app.add", (2, 3))
        bad = client.enqueue("observe_app.always_fails", ("x",))
        assert ok.result(timeout=20) == 5
        with pytest.raises(MaxRetriesExceededError):
            bad.result(timeout=20)
        wait_until(lambda: any(e["kind"] == "on_dead" for e in observed(tmp_path)), message="on_dead")
    finally:
        worker.stop()
    wait_until(lambda: any(e.get("event") == "worker.stopped" for e in observed(tmp_path)), message="stopped")
    entries = observed(tmp_path)
    kinds = [(e["kind"], e.get("event")) for e in entries]
    assert ("event", "worker.started") in kinds
    before = [e for e in entries if e["kind"] == "before" and e["job_id"] == ok.id]
    assert before and before[0]["origin"] == "enqueuer" and before[0]["current"] == ok.id  # header travelled
    after = [e for e in entries if e["kind"] == "after" and e["job_id"] == ok.id]
    assert after == [{"kind": "after", "job_id": ok.id, "result": 5, "error": None, "state": True}]
    assert [e["event"] for e in entries if e.get("job_id") == ok.id and e["kind"] == "event"] == [
        "job.started", "job.completed"]
    assert [e["error"] for e in entries if e["kind"] == "on_retry"] == ["ValueError: bad x"]
    assert [(e["error"], e["args"]) for e in entries if e["kind"] == "on_dead"] == [("ValueError: bad x", ["x"])]
    assert [e["event"] for e in entries if e.get("job_id") == bad.id and e["kind"] == "event"] == [
        "job.started", "job.retrying", "job.started", "job.dead"]
    # the broken middleware and handler were logged, the jobs went on
    assert "broken middleware before" in worker.output and "broken event handler" in worker.output
    client.close()


def test_a_periodic_tick_announces_its_job(engine_queue: Queue) -> None:
    from taskito.worker.scheduler import Scheduler

    events: list[dict[str, Any]] = []
    engine_queue.on_event("job.enqueued")(events.append)

    @engine_queue.periodic(cron="* * * * * *", name="every-second")
    def tick() -> None: ...

    scheduler = Scheduler(engine_queue)
    scheduler.start()
    try:
        wait_until(lambda: scheduler.fire_due() or events, message="a tick")
    finally:
        scheduler.stop()
    fired = {job.id for job in engine_queue.list_jobs(task_name=tick.name)}
    assert {event["job_id"] for event in events} <= fired and events
    assert (events[0]["periodic"], events[0]["queue"], events[0]["task_name"]) == ("every-second", "default", tick.name)


def test_a_subclass_that_only_watches_outcomes_leaves_enqueue_as_it_was(tmp_path: Path) -> None:
    """Middleware's own methods do nothing: a subclass overriding on_dead alone adds no headers and no
    work to each enqueue."""
    queue = Queue(db_path=str(tmp_path / "q.db"))
    seen: list[str] = []

    class DeadOnly(Middleware):
        def on_dead(self, job: JobInfo, error: str) -> None:
            seen.append(job.id)

    queue.add_middleware(DeadOnly())
    job = queue.enqueue("some.task", (1,))
    assert queue.serializer.loads(queue.get_job(job.id).record.payload) == {"args": [1], "kwargs": {}}
    queue.close()


def test_a_held_job_is_announced_cancelled_when_its_worker_ends_it_not_when_asked(engine_queue: Queue) -> None:
    from taskito.worker.attempt import record_cancelled

    trail: list[str] = []
    events: list[dict[str, Any]] = []
    engine_queue.add_middleware(Trail("m", trail))
    engine_queue.on_event("job.cancelled")(events.append)
    job = engine_queue.enqueue("not.imported.here")
    [held] = engine_queue.storage.claim("w", ["default"], 1, 30)
    assert engine_queue.cancel_job(job.id)  # asked: the job is still the worker's
    assert events == [] and job.refresh().status != "cancelled"
    record_cancelled(engine_queue, held, None, "cancelled before it started")  # what the worker does next
    assert job.refresh().status == "cancelled" and trail[-1] == f"m cancel {job.id}"
    assert [(event["event"], event["job_id"]) for event in events] == [("job.cancelled", job.id)]
