"""TASKITO_BACKEND = "postgres" with no TASKITO_DB_URL: the queue goes into Django's own PostgreSQL database."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from tests.conftest import PG_URL, require_postgres
from tests.django.conftest import manage, start_django_worker


@pytest.fixture
def postgres_project(pg_schema: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Settings (through the environment) of a project whose default database is the test PostgreSQL."""
    require_postgres()
    monkeypatch.delenv("TASKITO_DB_URL", raising=False)
    url = urlsplit(PG_URL)
    database = {"ENGINE": "django.db.backends.postgresql", "NAME": url.path.lstrip("/"),
                "USER": url.username or "", "PASSWORD": url.password or "", "HOST": url.hostname or "",
                "PORT": str(url.port or "")}
    return {"DJTEST_SETTINGS": json.dumps({"DATABASES": {"default": database}, "TASKITO_BACKEND": "postgres",
                                           "TASKITO_SCHEMA": pg_schema})}


def test_queue_uses_the_default_postgres_database(postgres_project: dict[str, str], pg_schema: str) -> None:
    worker = start_django_worker("--concurrency", "2", env=postgres_project)
    try:
        assert f"postgres schema {pg_schema}" in worker.wait_for_line("started:")
        script = ("from taskito_django import queue; print(queue.db_url); "
                  "print(queue.enqueue('djapp.tasks.add', args=(2, 3)).result(timeout=30))")
        result = manage("shell", "-c", script, env=postgres_project)
        assert result.returncode == 0, result.stderr
        db_url, value = result.stdout.strip().splitlines()[-2:]
        assert value == "5"
        derived, expected = urlsplit(db_url), urlsplit(PG_URL)
        assert (derived.scheme, derived.hostname, derived.port, derived.username, derived.path) == \
            ("postgresql", expected.hostname, expected.port, expected.username, expected.path), db_url
        info = json.loads(manage("taskito_info", "--format", "json", env=postgres_project).stdout)
        assert info["stats"]["completed"] == 1 and len(info["workers"]) == 1
    finally:
        worker.stop()
    assert manage("check", env=postgres_project).returncode == 0
