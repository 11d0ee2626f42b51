from __future__ import annotations

import os
from pathlib import Path

import pytest

APPS = Path(__file__).resolve().parent.parent / "apps"


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for worker subprocesses: one database and one effects folder per test."""
    env = {
        "TASKITO_DB_PATH": str(tmp_path / "taskito.db"),
        "EFFECTS_DIR": str(tmp_path),
        "TASKITO_LEASE_SECONDS": "2",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(APPS), os.environ.get("PYTHONPATH")])),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def effects(tmp_path: Path) -> list[str]:
    log = tmp_path / "effects.log"
    return log.read_text().splitlines() if log.exists() else []
