from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskito import Queue

APPS = Path(__file__).resolve().parent.parent / "apps"
APP = "control_app:queue"


@pytest.fixture
def client(engine_env: dict[str, str]) -> Iterator[Queue]:
    """A queue of this process on the test's engine (engine_env), declaring the control app's tasks."""
    if str(APPS) not in sys.path:
        sys.path.insert(0, str(APPS))
    import control_app

    queue = Queue(registry=control_app.queue.registry)
    yield queue
    queue.close()


def lines(tmp_path: Path, name: str = "effects.log") -> list[str]:
    log = tmp_path / name
    return log.read_text().splitlines() if log.exists() else []
