"""Workflows through real ``taskito worker`` processes, on both engines: every form, kill -9 at random
moments, members finishing at once on two workers, failures, cancellation, and reading a workflow
back from another process."""

from __future__ import annotations

import importlib
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from taskito import Queue, TaskCancelledError, TaskFailedError, chain, chord, chunks, group, starmap
from tests.support import Process, start_worker, wait_until
from tests.worker.conftest import APPS, effects

APP = "workflow_app:queue"


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(APPS))
    return importlib.import_module("workflow_app")


@pytest.fixture
def client(engine_env: dict[str, str], app: ModuleType) -> Iterator[Queue]:
    """The web app's side: its own queue on the test's database, with the app's tasks declared."""
    queue = Queue(registry=app.registry)
    yield queue
    queue.close()


@pytest.fixture
def t(client: Queue) -> SimpleNamespace:
    """The app's tasks bound to the client queue: ``t.add.s(1, 2)``."""
    return SimpleNamespace(**{name.rsplit(".", 1)[1]: client.tasks[name] for name in client.tasks})


def lines(tmp_path: Path, kind: str) -> list[str]:
    return [line for line in effects(tmp_path) if line.startswith(kind + " ")]


def test_every_form_runs_through_a_worker(engine_env: dict[str, str], client: Queue, t: SimpleNamespace) -> None:
    worker = start_worker(APP, APPS, env=engine_env)
    try:
        sent = {
            "chain": chain(t.add.s(1, 2), t.add.s(10), t.add.s(100)).delay(),
            "immutable": chain(t.add.s(1, 2), t.add.si(5, 5)).delay(),
            "group": group(t.add.s(i, i) for i in range(10)).delay(),
            "chord": chord(group(t.add.s(i, 1) for i in range(20)), t.total.s()).delay(),
            "nested": chain(t.add.s(1, 1), group(t.add.s(1), t.add.s(2)), t.total.s(), t.add.s(5),
                            chord([t.add.s(1), t.add.s(2)], t.total.s())).delay(),
            "chunks": chunks(t.add, [(i, i) for i in range(7)], 3).delay(),
            "starmap": starmap(t.add, [(1, 2), (3, 4), (5, 6)]).delay(),
            "piped": (t.add.s(2, 2) | chain(t.add.s(1))).delay(),
        }
        results = {name: workflow.result(timeout=60) for name, workflow in sent.items()}
    finally:
        worker.stop()
    assert results == {
        "chain": 113, "immutable": 10, "group": [0, 2, 4, 6, 8, 10, 12, 14, 16, 18], "chord": 210,
        # 2 -> [3, 4] -> 7 -> 12 -> [13, 14] -> 27
        "nested": 27, "chunks": [[0, 2, 4], [6, 8, 10], [12]], "starmap": [3, 7, 11], "piped": 5,
    }
    for workflow in sent.values():
        assert workflow.status == "complete"
        assert {job.status for job in workflow.jobs} == {"complete"}
    assert len(sent["chord"].jobs) == 21 and len(sent["chunks"].jobs) == 3
    assert client.stats()["pending"] == 0


def test_a_workflow_outlives_its_caller_and_is_read_back_elsewhere(engine_env: dict[str, str], client: Queue,
                                                                  tmp_path: Path) -> None:
    """The caller sends a chord and exits before any worker runs; the workflow goes on without it."""
    caller = subprocess.run(
        [sys.executable, "-c", "import workflow_app as a\nfrom taskito import Queue, chord\n"
         "q = Queue(registry=a.registry)\nadd, total = q.tasks['workflow_app.add'], q.tasks['workflow_app.total']\n"
         "print(chord([add.s(i, i) for i in range(30)], total.s()).delay().id)"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert caller.returncode == 0, caller.stderr
    workflow_id = caller.stdout.strip()
    found = client.get_workflow(workflow_id)
    assert found is not None and found.status == "pending"
    worker = start_worker(APP, APPS, env=engine_env)
    try:
        assert found.result(timeout=60) == sum(range(30)) * 2
    finally:
        worker.stop()
    view = found.to_dict()
    assert view["status"] == "complete" and [stage["size"] for stage in view["stages"]] == [30, 1]
    assert client.get_workflow("0" * 32) is None and client.get_workflow("nonsense") is None


def test_kill_9_at_random_moments_every_workflow_completes_and_callbacks_run_once(
        engine_env: dict[str, str], client: Queue, t: SimpleNamespace, tmp_path: Path) -> None:
    chains = [chain(*[t.step.s(0, f"c{n}")] + [t.step.s(f"c{n}") for _ in range(5)]).delay() for n in range(8)]
    chords = [chord(group(t.member.s(i, f"h{n}") for i in range(15)), t.callback.s(f"h{n}")).delay()
              for n in range(6)]
    steady = start_worker(APP, APPS, "--concurrency", "4", env=engine_env)
    victims: list[Process] = []
    rng = random.Random()
    try:
        for _ in range(4):
            victim = start_worker(APP, APPS, "--concurrency", "4", env=engine_env)
            victims.append(victim)
            time.sleep(rng.uniform(0.05, 0.6))  # a random moment of work, then kill -9 (not a synchronisation)
            victim.kill()
        assert [workflow.result(timeout=120) for workflow in chains] == [6] * 8
        assert [workflow.result(timeout=120) for workflow in chords] == [sum(range(15))] * 6
    finally:
        steady.stop()
        for victim in victims:
            victim.stop()
    callbacks = Counter(line.split()[1] for line in lines(tmp_path, "callback"))
    assert callbacks == {f"h{n}": 1 for n in range(6)}, callbacks
    # Every step ran (at least once: a step killed mid-run runs again), and no workflow was left behind.
    assert {line.split()[1] for line in lines(tmp_path, "step")} == {f"c{n}" for n in range(8)}
    assert client.stats()["pending"] == 0 and client.stats()["running"] == 0


def test_members_finishing_at_the_same_moment_on_two_workers_release_the_callback_once(
        engine_env: dict[str, str], client: Queue, t: SimpleNamespace, tmp_path: Path) -> None:
    """Half of each chord's members on each worker (their own queues), all held until every one has
    started, then all let go at once: the callback of each chord still runs once."""
    chords = [chord(group(t.gated_member.s(i).set(queue="left" if i % 2 else "right") for i in range(10)),
                    t.callback.s(f"g{n}")).delay() for n in range(4)]
    workers = [start_worker(APP, APPS, "--concurrency", "20", "--queues", f"{side},default", env=engine_env)
               for side in ("left", "right")]
    try:
        wait_until(lambda: len(list(tmp_path.glob("started-*"))) == 40, 60, message="all 40 members to start")
        (tmp_path / "go").touch()  # every member returns now, on both workers
        assert [workflow.result(timeout=60) for workflow in chords] == [45] * 4
    finally:
        for worker in workers:
            worker.stop()
    assert sorted(line.split()[1] for line in lines(tmp_path, "callback")) == ["g0", "g1", "g2", "g3"]
    served = [worker.output.count("workflow_app.gated_member complete") for worker in workers]
    assert served == [20, 20]


def test_a_dead_step_fails_the_workflow_cancels_later_steps_and_runs_on_error_once(
        engine_env: dict[str, str], client: Queue, t: SimpleNamespace, tmp_path: Path) -> None:
    worker = start_worker(APP, APPS, env=engine_env)
    try:
        failing_chain = chain(t.add.s(1, 1), t.boom.s(), t.add.s(1), t.add.s(2),
                              on_error=t.on_error.s("chain")).delay()
        # Two members die: the error callback still runs once.
        failing_chord = chord([t.add.s(1, 1), t.boom.s(1), t.boom.s(2)], t.callback.s("never")).apply_async(
            on_error=t.on_error.s("chord"))
        with pytest.raises(TaskFailedError) as failed:
            failing_chain.result(timeout=60)
        with pytest.raises(TaskFailedError):
            failing_chord.result(timeout=60)
        wait_until(lambda: len(lines(tmp_path, "on_error")) == 2, 30, message="both error callbacks")
        chord_jobs = failing_chord.jobs
    finally:
        worker.stop()
    first, dead, *later = failing_chain.jobs[:4]
    assert failed.value.job_id == dead.id and "ValueError: boom" in str(failed.value)
    assert (first.status, dead.status, [job.status for job in later]) == ("complete", "dead", ["cancelled"] * 2)
    assert failing_chain.status == "failed"
    [handler] = failing_chain.jobs[4:]
    assert handler.status == "complete" and handler.task_name == "workflow_app.on_error"
    assert Counter(line.split()[1] for line in lines(tmp_path, "on_error")) == {"chain": 1, "chord": 1}
    [chain_error] = [line for line in lines(tmp_path, "on_error") if line.split()[1] == "chain"]
    assert chain_error.startswith(f"on_error chain {dead.id} ValueError: boom")
    assert [job.status for job in chord_jobs][3] == "cancelled"  # the callback never ran
    assert lines(tmp_path, "callback") == []
    assert client.stats()["pending"] == 0


def test_a_result_json_cannot_hold_fails_its_step_clearly(engine_env: dict[str, str], client: Queue,
                                                          t: SimpleNamespace) -> None:
    worker = start_worker(APP, APPS, env=engine_env)
    try:
        workflow = chain(t.unencodable.s(1), t.add.s(1)).delay()
        with pytest.raises(TaskFailedError, match="cannot be serialized"):
            workflow.result(timeout=60)
    finally:
        worker.stop()
    assert [job.status for job in workflow.jobs] == ["dead", "cancelled"]


def test_cancelling_a_workflow_cancels_its_pending_steps(engine_env: dict[str, str], client: Queue,
                                                         t: SimpleNamespace, tmp_path: Path) -> None:
    worker = start_worker(APP, APPS, env=engine_env)
    try:
        workflow = chain(t.gate.s(1), t.add.s(1), chord([t.add.s(1), t.add.s(2)], t.total.s()),
                         on_error=t.on_error.s("cancel")).delay()
        wait_until(lambda: workflow.status == "running", 30, message="the first step to show as running")
        assert workflow.cancel() is True
        assert workflow.cancel() is False  # ended already
        (tmp_path / "go").touch()  # the running step finishes; nothing follows it
        first = workflow.jobs[0]
        assert first.result(timeout=30) == 1
        with pytest.raises(TaskCancelledError):
            workflow.result(timeout=5)
    finally:
        worker.stop()
    assert [job.status for job in workflow.jobs] == ["complete"] + ["cancelled"] * 4
    assert workflow.status == "cancelled" and lines(tmp_path, "on_error") == []
