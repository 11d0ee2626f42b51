"""An idle worker: it wakes for work when the database announces it or when it falls due, never loses
a wake-up, does not poll PostgreSQL, and a paused queue's backlog does not hold up its other queues.

Real ``taskito worker`` subprocesses (tests/apps/idle_app.py) on SQLite and PostgreSQL. Most tests
run the worker with polling turned off (IDLE_APP_NO_POLL=1: it would wait a minute), so a job that
runs within the tests' deadlines ran because it was announced or its alarm rang.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from taskito import Queue
from tests.support import start_worker, wait_until
from tests.worker.conftest import APPS

pytestmark = pytest.mark.serial  # counts an idle worker's claims and round trips: alone

APP = "idle_app:queue"


@pytest.fixture
def worker_env(engine_settings: dict[str, str], tmp_path: Path) -> dict[str, str]:
    env = {"EFFECTS_DIR": str(tmp_path), "IDLE_APP_NO_POLL": "1",
           # Heartbeats are commits, which wake a SQLite worker: far apart, they cannot hide a lost wake-up.
           "TASKITO_LEASE_SECONDS": "300",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(APPS), os.environ.get("PYTHONPATH")]))}
    if "db_path" in engine_settings:
        return {**env, "TASKITO_BACKEND": "sqlite", "TASKITO_DB_PATH": engine_settings["db_path"]}
    return {**env, "TASKITO_BACKEND": "postgres", "TASKITO_DB_URL": engine_settings["db_url"],
            "TASKITO_SCHEMA": engine_settings["schema"]}


@pytest.fixture
def client(engine_settings: dict[str, str]) -> Queue:
    queue = Queue(**engine_settings)
    yield queue
    queue.close()


def claims(tmp_path: Path) -> int:
    log = tmp_path / "claims.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def settled_claims(tmp_path: Path) -> int:
    """The number of claims once it has not changed for 0.3 s (within 10 s)."""
    seen = [claims(tmp_path), time.monotonic()]

    def still() -> bool:
        now = claims(tmp_path)
        if now != seen[0]:
            seen[:] = [now, time.monotonic()]
        return time.monotonic() - seen[1] >= 0.3

    wait_until(still, 10, message="the worker's claims to settle")
    return seen[0]


def test_a_job_committed_between_a_claim_and_the_wait_is_picked_up_at_once(
        worker_env: dict[str, str], client: Queue, tmp_path: Path) -> None:
    worker = start_worker(APP, APPS, env=worker_env)
    try:
        assert client.enqueue("idle_app.echo", args=("warm",)).result(timeout=20) == "warm"
        (tmp_path / "enqueue-after-claim").touch()
        # Wake the worker for a claim that finds nothing (a job for a queue it does not serve): right
        # after it, the app enqueues a job from another connection, before the worker waits again.
        client.enqueue("idle_app.echo", args=("elsewhere",), queue="elsewhere")
        hooked = wait_until(lambda: (tmp_path / "hooked-id").exists() and (tmp_path / "hooked-id").read_text(),
                            20, message="the app to enqueue right after an empty claim")
        # Announced by that commit, it runs now; a lost wake-up would leave it for the minute-long poll.
        assert client.get_job(hooked).result(timeout=20) == "hooked"
    finally:
        worker.stop()


def test_delayed_jobs_retries_and_expiries_happen_when_due_without_polling(
        worker_env: dict[str, str], client: Queue) -> None:
    worker = start_worker(APP, APPS, "--queues", "default,held", env=worker_env)
    try:
        client.pause("held")
        expiring = client.enqueue("idle_app.held", args=(1,), queue="held", expires=0.5)
        delayed = client.enqueue("idle_app.echo", args=("later",), delay=0.5)
        retried = client.enqueue("idle_app.fails_once")
        assert delayed.result(timeout=20) == "later"
        assert retried.result(timeout=20) == "second attempt" and len(retried.errors) == 1
        # Never started (its queue is paused): the worker's alarm rang at its expiry and its claim cancelled it.
        wait_until(lambda: expiring.status == "cancelled", 20, message="the paused job to expire")
    finally:
        worker.stop()


def test_a_paused_queue_with_a_backlog_does_not_hold_up_the_other_queues(
        worker_env: dict[str, str], client: Queue) -> None:
    worker = start_worker(APP, APPS, "--queues", "default,held", env={**worker_env, "IDLE_APP_NO_POLL": "0"})
    try:
        client.pause("held")
        backlog = client.enqueue_many("idle_app.held", [(n,) for n in range(2000)], queue="held")
        jobs = [client.enqueue("idle_app.echo", args=(str(n),)) for n in range(20)]
        assert [job.result(timeout=20) for job in jobs] == [str(n) for n in range(20)]
        assert client.stats_by_queue("held")["pending"] == 2000
        client.resume("held")
        wait_until(lambda: client.stats_by_queue("held")["completed"] == 2000, 60, interval=0.1,
                   message="the backlog to drain once resumed")
        assert backlog[-1].result(timeout=0) == 1999
    finally:
        worker.stop()


def test_an_idle_worker_makes_no_claims_while_nothing_happens(
        worker_env: dict[str, str], client: Queue, tmp_path: Path) -> None:
    """It waits on LISTEN (PostgreSQL) or on the file's version (SQLite), not on a 0.2 s poll."""
    worker = start_worker(APP, APPS, env={**worker_env, "IDLE_APP_NO_POLL": "0"})  # the default timings
    try:
        assert client.enqueue("idle_app.echo", args=("warm",)).result(timeout=20) == "warm"
        # The job's own commits (its claim, its completion) may wake the worker once or twice more, at once.
        before = settled_claims(tmp_path)
        time.sleep(2.0)  # a window in which a worker polling every 0.2 s would claim ten times
        assert claims(tmp_path) == before
        assert client.enqueue("idle_app.echo", args=("woken",)).result(timeout=20) == "woken"
        assert claims(tmp_path) > before
    finally:
        worker.stop()
