"""pytest-django setup for tests/django only: the test project djtest (settings, djapp, manage.py).

The rest of the suite does not need Django; DJANGO_SETTINGS_MODULE is set here, when this
directory is collected, and Django is set up the way pytest-django would have done it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import Process

HERE = Path(__file__).resolve().parent
MANAGE = str(HERE / "manage.py")


try:
    import django  # noqa: F401
    import pytest_django  # noqa: F401
except ImportError:  # a venv without the django extra: these tests cannot run, the rest of the suite can
    collect_ignore_glob = ["test_*.py"]


def pytest_configure(config: pytest.Config) -> None:
    if "collect_ignore_glob" in globals():
        return
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    os.environ["DJANGO_SETTINGS_MODULE"] = "djtest.settings"
    import django
    from django.conf import settings

    settings.INSTALLED_APPS  # noqa: B018  (loads the settings module, as pytest-django does)
    try:
        from pytest_django.plugin import _setup_django
    except ImportError:  # a pytest-django without it: set up by hand
        django.setup()
    else:
        _setup_django(config)  # django.setup() and pytest-django's blocking of unmarked database access
    assert django.apps.apps.ready, "tests/django: Django was not set up"


@pytest.fixture(autouse=True)
def taskito_db(tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test gets its own queue database, in this process (settings) and in subprocesses (env)."""
    path = str(tmp_path / "taskito.db")
    settings.TASKITO_DB_PATH = path
    monkeypatch.setenv("TASKITO_DB_PATH", path)
    return path


@pytest.fixture
def effects_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "effects.log"
    monkeypatch.setenv("EFFECTS_FILE", str(path))
    return path


def effects(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def subprocess_env() -> dict[str, str]:
    """What a manage.py subprocess needs to share this test's databases."""
    from django.db import connection

    return {"DJTEST_DATABASE": str(connection.settings_dict["NAME"]), "PYTHONUNBUFFERED": "1"}


def manage(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py ARGS`` of the test project and wait for it."""
    return subprocess.run([sys.executable, MANAGE, *args], cwd=HERE, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **subprocess_env(), **(env or {})})


def start_django_worker(*args: str, env: dict[str, str] | None = None) -> Process:
    """``manage.py taskito_worker ARGS`` as a real subprocess, once it says it started."""
    process = Process([sys.executable, MANAGE, "taskito_worker", *args], cwd=HERE,
                      env={**subprocess_env(), **(env or {})})
    process.wait_for_line("started:", timeout=30)
    return process


@pytest.fixture
def django_worker(transactional_db: None, effects_file: Path) -> Iterator[Process]:
    """A running ``manage.py taskito_worker`` on this test's databases; stopped with SIGINT afterwards."""
    process = start_django_worker("--concurrency", "2")
    yield process
    process.stop()


def finish_all(error: str | None = None, queues: list[str] | None = None) -> list[str]:
    """Play a worker through the storage API: claim every due job, complete it (or kill it with ``error``)."""
    from taskito.storage import Completion
    from taskito_django import queue

    records = queue.storage.claim("test-hand", queues or queue.default_queues(), 1000, 30)
    now = time.time()  # each attempt starts and ends now, as a worker would record it
    if error is None:
        queue.storage.complete([Completion(r.id, r.attempt, queue.serializer.dumps("done"), started_at=now,
                                           finished_at=now) for r in records])
    else:
        for record in records:
            queue.storage.fail(record.id, record.attempt, error, f"Traceback (most recent call last):\n{error}", None,
                               started_at=now)
    return [record.id for record in records]
