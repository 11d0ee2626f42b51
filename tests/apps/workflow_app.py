"""The app that workflow tests run: ``taskito worker --app workflow_app:queue``.

The tasks are declared on ``registry``, so that a test's own client queue takes them in
(``Queue(registry=workflow_app.registry)``) and builds signatures of them; ``queue`` is built from
the environment when first asked for (TASKITO_DB_PATH, or TASKITO_BACKEND=postgres with
TASKITO_DB_URL and TASKITO_SCHEMA). Side effects go to EFFECTS_DIR: ``effects.log`` (one line per
run) and ``started-<job id>`` files; a ``go`` file there opens the gates.
"""

from __future__ import annotations

import random
import time
from typing import Any

from effects import EFFECTS, effect

from taskito import Queue, Registry, current_job

registry = Registry()



def _wait_for_go() -> None:
    (EFFECTS / f"started-{current_job.id}").touch()
    while not (EFFECTS / "go").exists():
        time.sleep(0.01)


@registry.task()
def add(a: int, b: int) -> int:
    return a + b


@registry.task()
def total(values: list[int]) -> int:
    return sum(values)


@registry.task(retry_backoff=0.01)
def step(value: int, tag: str) -> int:
    """A chain step that takes a random moment, so that kill -9 lands anywhere."""
    effect(f"step {tag} {current_job.id}")
    time.sleep(random.uniform(0, 0.05))
    return value + 1


@registry.task(retry_backoff=0.01)
def member(index: int, tag: str) -> int:
    effect(f"member {tag} {current_job.id}")
    time.sleep(random.uniform(0, 0.05))
    return index


@registry.task(retry_backoff=0.01)
def gated_member(index: int) -> int:
    """Finishes only once the test opens the gate: every member then completes at the same moment."""
    _wait_for_go()
    return index


@registry.task(retry_backoff=0.01)
def gate(value: Any) -> Any:
    _wait_for_go()
    return value


@registry.task(retry_backoff=0.01)
def callback(values: list[int], tag: str) -> int:
    """A chord's callback: each run leaves one line, so that a test counts how often it ran."""
    effect(f"callback {tag} {current_job.id}")
    return sum(values)


@registry.task(max_retries=0)
def boom(*args: Any) -> None:
    raise ValueError(f"boom {args}")


@registry.task(max_retries=0)
def on_error(job_id: str, error: str, tag: str) -> str:
    effect(f"on_error {tag} {job_id} {error}")
    return tag


@registry.task(max_retries=0)
def unencodable(value: Any) -> object:
    return object()


def __getattr__(name: str) -> Any:
    """``queue``, built on first use (the CLI's --app asks for it; a test's import does not build it)."""
    if name == "queue":
        globals()["queue"] = built = Queue(registry=registry)
        return built
    raise AttributeError(name)
