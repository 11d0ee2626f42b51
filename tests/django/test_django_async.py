"""Async Django: an async view enqueues and awaits through taskito's async API (a taskito coroutine task
and a Django Tasks task), against a real ``manage.py taskito_worker``; the backend's async methods are
its own, not Django's sync_to_async defaults."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.test import AsyncClient

from taskito_django import compat
from tests.support import Process, wait_until

if not compat.AVAILABLE:  # pragma: no cover - the django extra installs the backport where needed
    pytest.skip("neither django.tasks nor django_tasks is installed", allow_module_level=True)

from taskito_django.backends import TaskitoBackend  # noqa: E402


def test_an_async_view_enqueues_and_awaits_on_a_real_worker(django_worker: Process) -> None:
    from djapp.jobs import async_double

    response = asyncio.run(AsyncClient().get("/add-async/", {"x": 21}))
    assert response.status_code == 200
    body = response.json()
    assert body["taskito"] == 42 and body["fetched"] == body["django_task"]
    result = async_double.get_result(body["django_task"])

    def finished() -> Any:
        asyncio.run(result.arefresh())  # through the backend's aget_result
        return result.is_finished

    wait_until(finished, 30, interval=0.05, message="the Django task to finish")
    assert result.status == compat.TaskResultStatus.SUCCESSFUL and result.return_value == 42
    assert "event loop for" in django_worker.output  # the taskito coroutine task ran on the worker's loop


def test_the_backends_async_methods_are_its_own() -> None:
    for name in ("aenqueue", "aget_result"):
        assert getattr(TaskitoBackend, name) is not getattr(compat.BaseTaskBackend, name)
