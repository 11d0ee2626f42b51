"""The project queue: built from settings, shared, rebuilt by override_settings; autodiscovery; eager mode; checks."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.core import checks
from django.test import override_settings

from taskito import Queue
from taskito.exceptions import ConfigurationError
from taskito_django import queue
from taskito_django.project import postgres_url, postgres_url_from_django, queue_kwargs
from tests.django.conftest import manage


def test_queue_is_a_lazily_built_taskito_queue_from_settings(settings: Any, taskito_db: str) -> None:
    settings.TASKITO_DEFAULT_RETRY = 7
    settings.TASKITO_DEFAULT_TIMEOUT = 12
    settings.TASKITO_RESULT_TTL = 3600
    settings.TASKITO_DRAIN_TIMEOUT = "5"  # strings are parsed like the env vars
    assert not queue._is_built  # the settings change forgot the previous queue
    assert isinstance(queue, Queue)
    assert (queue.default_retry, queue.default_timeout, queue.result_ttl, queue.drain_timeout) == (7, 12, 3600, 5)
    assert queue.concurrency == 2  # TASKITO_WORKERS in djtest/settings.py
    assert Path(queue.db_path) == Path(taskito_db)
    assert queue._is_built


def test_introspection_does_not_build_the_queue() -> None:
    queue._reset()
    assert isinstance(queue, Queue) and not isinstance(queue, type)
    assert not hasattr(queue, "_mock_name") and not hasattr(queue, "__wrapped__")
    assert "djapp.tasks.add" in queue.tasks
    assert not queue._is_built  # so importing it (tests, tools) never opens the database


def test_every_user_shares_one_queue_object() -> None:
    import taskito_django
    from taskito_django.management.commands import taskito_worker

    assert taskito_worker.queue is taskito_django.queue is queue
    job = queue.enqueue("djapp.tasks.add", args=(1, 2))
    assert taskito_django.queue.get_job(job.id) is not None


def test_default_database_file_is_anchored_to_base_dir(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    del settings.TASKITO_DB_PATH
    monkeypatch.delenv("TASKITO_DB_PATH")
    assert queue_kwargs()["db_path"] == str(Path(settings.BASE_DIR) / ".taskito" / "taskito.db")
    monkeypatch.setenv("TASKITO_DB_PATH", "/tmp/from-env.db")  # the env var still wins over the default
    assert "db_path" not in queue_kwargs()


def test_tasks_survive_a_rebuild_and_defining_one_never_builds_the_queue(settings: Any) -> None:
    queue._reset()

    @queue.task(name="tests.defined_late", max_retries=5)
    def defined_late() -> str:
        return "late"

    assert not queue._is_built
    assert queue.tasks["tests.defined_late"].options.max_retries == 5
    settings.TASKITO_DEFAULT_PRIORITY = 3  # rebuilds the queue
    assert "tests.defined_late" in queue.tasks
    assert queue.tasks["djapp.tasks.add"].queue is queue
    assert defined_late() == "late"  # still a plain function when called


def test_task_options_are_checked_and_defaulted_like_the_core_queue(settings: Any) -> None:
    settings.TASKITO_DEFAULT_RETRY = 6
    settings.TASKITO_DEFAULT_TIMEOUT = 42

    @queue.task(name="tests.defaults", rate_limit="10/s", soft_timeout=5)
    def defaults() -> None: ...

    options = queue.tasks["tests.defaults"].options
    assert (options.max_retries, options.timeout, options.rate_limit, options.soft_timeout) == (6, 42, 10.0, 5)
    with pytest.raises(ValueError, match="max_retries must be a whole number, zero or more, got -1"):
        queue.task(max_retries=-1)
    with pytest.raises(ValueError, match="invalid rate_limit"):
        queue.task(rate_limit="fast")


def test_autodiscovery_imported_each_apps_tasks_module() -> None:
    assert "djapp.tasks" in sys.modules
    assert {"djapp.tasks.add", "djapp.tasks.mark_paid", "djapp.tasks.report"} <= set(queue.tasks)
    assert queue.tasks["djapp.tasks.report"].options.queue == "reports"
    assert "reports" in queue.default_queues()


def test_autodiscover_module_setting_names_another_module(settings: Any) -> None:
    settings.TASKITO_AUTODISCOVER_MODULE = "extra_tasks"
    apps.get_app_config("taskito_django").ready()
    assert "djapp.extra_tasks.extra" in queue.tasks


def test_autodiscovery_can_be_turned_off() -> None:
    code = "import sys; print('djapp.tasks' in sys.modules)"
    off = manage("shell", "-c", code, env={"DJTEST_SETTINGS": json.dumps({"TASKITO_AUTODISCOVER_MODULE": None})})
    on = manage("shell", "-c", code)
    assert (off.stdout.strip().splitlines()[-1], on.stdout.strip().splitlines()[-1]) == ("False", "True"), \
        off.stderr + on.stderr


def test_eager_mode_runs_inline_and_follows_override_settings() -> None:
    from djapp.tasks import add, explode

    with override_settings(TASKITO_EAGER=True):
        job = add.delay(2, 3)
        assert (job.status, job.result()) == ("complete", 5)
        failed = explode.delay("no")
        assert failed.status == "dead" and "ValueError: no" in failed.error
        assert queue.stats()["pending"] == 0  # nothing was stored
    job = add.delay(2, 3)
    assert job.status == "pending"
    assert queue.stats()["pending"] == 1


@pytest.mark.django_db(transaction=True)
def test_an_eager_task_after_the_worker_command_keeps_the_callers_transaction() -> None:
    """``manage.py taskito_worker`` closes stale connections around its tasks, and only its own:
    an eager task run later in the same process leaves the caller's transaction alone."""
    from django.core.management import call_command
    from django.db import transaction
    from djapp.models import Order
    from djapp.tasks import use_database

    call_command("taskito_worker", "--burst", "--concurrency", "1")
    with override_settings(TASKITO_EAGER=True), transaction.atomic():
        Order.objects.create()
        assert use_database.delay().result() == 1
        assert Order.objects.count() == 1  # the connection was not closed under the transaction
    assert Order.objects.count() == 1


def test_postgres_url_from_a_django_database_entry() -> None:
    assert postgres_url({"NAME": "shop", "USER": "app", "PASSWORD": "p@ss:w/rd", "HOST": "db.internal",
                         "PORT": 5433, "OPTIONS": {"sslmode": "require", "pool": True, "isolation_level": 1}}) \
        == "postgresql://app:p%40ss%3Aw%2Frd@db.internal:5433/shop?sslmode=require"
    assert postgres_url({"NAME": "shop", "USER": "", "HOST": "/var/run/postgresql", "PORT": ""}) \
        == "postgresql:///shop?host=%2Fvar%2Frun%2Fpostgresql"
    assert postgres_url({"NAME": "x", "HOST": "::1", "PORT": "5432"}) == "postgresql://[::1]:5432/x"
    # A space is %20 for libpq, which would read a "+" as it is ("-c+search_path": no such parameter).
    assert postgres_url({"NAME": "x", "OPTIONS": {"options": "-c search_path=shop"}}) \
        == "postgresql:///x?options=-c%20search_path%3Dshop"


def test_postgres_backend_without_url_refuses_a_sqlite_default_database(settings: Any) -> None:
    settings.TASKITO_BACKEND = "postgres"
    with pytest.raises(ConfigurationError, match=r"DATABASES\['default'\] uses 'django.db.backends.sqlite3'"):
        postgres_url_from_django()
    with pytest.raises(ConfigurationError, match="TASKITO_DB_URL"):
        queue.stats()


# -- system checks ---------------------------------------------------------------------------------
def taskito_messages() -> dict[str, str]:
    return {message.id: message.msg for message in checks.run_checks(tags=["taskito"])}


def test_checks_pass_on_the_test_settings() -> None:
    assert taskito_messages() == {}


@pytest.mark.parametrize(("overrides", "check_id", "text"), [
    ({"TASKITO_DB_PATH": "jobs/taskito.db"}, "taskito.E001", "relative path 'jobs/taskito.db'"),
    ({"TASKITO_BACKEND": "redis"}, "taskito.E002", "'redis'"),
    ({"TASKITO_BACKEND": "postgres"}, "taskito.E003", "is not PostgreSQL"),
    ({"TASKITO_WORKERS": "many"}, "taskito.E004", "TASKITO_WORKERS='many'"),
    ({"TASKITO_LEASE_SECONDS": -1}, "taskito.E004", "lease_seconds must be greater than 0"),
    ({"TASKITO_SERIALIZER": "yaml"}, "taskito.E004", "unknown serializer 'yaml'"),
    ({"TASKITO_SCHEMA": "Bad-Name"}, "taskito.E004", "TASKITO_SCHEMA='Bad-Name'"),
    ({"TASKITO_AUTODISCOVER_MODULE": 3}, "taskito.E005", "3"),
    ({"TASKITO_ADMIN_PER_PAGE": 0}, "taskito.E006", "0"),
])
def test_checks_name_each_bad_setting(settings: Any, overrides: dict[str, Any], check_id: str, text: str) -> None:
    for key, value in overrides.items():
        setattr(settings, key, value)
    messages = taskito_messages()
    assert check_id in messages, messages
    assert text in messages[check_id]


@pytest.mark.parametrize(("name", "value", "text"), [
    ("TASKITO_LEASE_SECONDS", "abc", "invalid TASKITO_LEASE_SECONDS='abc'"),
    ("TASKITO_SERIALIZER", "yaml", "unknown serializer 'yaml'"),
])
def test_checks_name_a_bad_environment_variable_the_queue_would_use(
        monkeypatch: pytest.MonkeyPatch, name: str, value: str, text: str) -> None:
    monkeypatch.setenv(name, value)
    messages = taskito_messages()
    assert "taskito.E004" in messages, messages
    assert text in messages["taskito.E004"] and "environment" in messages["taskito.E004"]


def test_check_warns_when_the_default_path_is_relative(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    del settings.TASKITO_DB_PATH
    del settings.BASE_DIR
    monkeypatch.delenv("TASKITO_DB_PATH")
    assert "taskito.W001" in taskito_messages()


def test_tasks_backend_checks_its_options(settings: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "taskito_django.backends.TaskitoBackend",
                                  "OPTIONS": {"max_retries": -1, "retries": 2}},
                      "instant": {"BACKEND": "taskito_django.backends.TaskitoBackend", "OPTIONS": {"timeout": 0}}}
    messages = [(message.id, message.msg) for message in checks.run_checks()]
    assert any(id_ == "taskito.E011" and "retries" in msg for id_, msg in messages), messages
    assert any(id_ == "taskito.E012" and "max_retries" in msg for id_, msg in messages), messages
    assert any(id_ == "taskito.E012" and "['timeout'] is 0" in msg and "greater than 0" in msg
               for id_, msg in messages), messages  # 0 is refused, not read as "no timeout"


def test_manage_py_check_reports_a_relative_db_path() -> None:
    result = manage("check", env={"DJTEST_SETTINGS": json.dumps({"TASKITO_DB_PATH": "relative.db"})})
    assert result.returncode == 1
    assert "taskito.E001" in result.stderr and "relative path 'relative.db'" in result.stderr


def test_the_project_queue_is_a_real_queue_whose_tasks_follow_changed_settings(settings: Any) -> None:
    assert issubclass(type(queue), Queue)  # a Queue subclass, not a proxy standing in for one
    registry = queue.registry
    assert "djapp.tasks.add" in registry.tasks
    settings.TASKITO_DEFAULT_PRIORITY = 4  # the queue reads its settings again; its tasks stay
    assert queue.registry is registry
    assert queue.tasks["djapp.tasks.add"].options.priority == 4
    assert queue.get_job(queue.tasks["djapp.tasks.add"].delay(1, 2).id).record.priority == 4
