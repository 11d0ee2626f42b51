"""A Django project on PostgreSQL: jobs enqueued inside ``atomic()`` are part of its transaction.

The project (tests/django/djtest, run as real ``manage.py`` subprocesses) keeps its tables in a
schema of its own on the test server, and the queue in the default database (TASKITO_BACKEND =
"postgres", no TASKITO_DB_URL). Orders and their jobs are counted from outside, as a worker sees
them: rolled back blocks and savepoints leave neither, a process killed inside the block leaves
neither, one killed right after the commit leaves both, and a worker runs the jobs.
"""

from __future__ import annotations

import json
import signal
import sys
import textwrap
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core import checks

from tests.conftest import PG_URL, require_postgres
from tests.django.conftest import HERE, MANAGE, manage, start_django_worker, subprocess_env
from tests.support import Process, wait_until

psycopg = pytest.importorskip("psycopg")


def sql(query: str) -> Any:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        return conn.execute(query).fetchone()[0]


def django_database(app_schema: str) -> dict[str, Any]:
    url = urlsplit(PG_URL)
    return {"ENGINE": "django.db.backends.postgresql", "NAME": url.path.lstrip("/"), "USER": url.username or "",
            "PASSWORD": url.password or "", "HOST": url.hostname or "", "PORT": str(url.port or ""),
            "OPTIONS": {"options": f"-c search_path={app_schema}"}}


def project_env(app_schema: str, queue_schema: str, **settings: Any) -> dict[str, str]:
    return {"DJTEST_SETTINGS": json.dumps({"DATABASES": {"default": django_database(app_schema)},
                                           "TASKITO_BACKEND": "postgres", "TASKITO_SCHEMA": queue_schema, **settings})}


@pytest.fixture(scope="module")
def app_schema() -> Iterator[str]:
    """The project's own tables (djapp's orders among them), migrated once for this module."""
    require_postgres()
    schema = f"djtest_app_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        migrated = manage("migrate", "--run-syncdb", env=project_env(schema, f"{schema}_q"), timeout=120)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        yield schema
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def project(app_schema: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.delenv("TASKITO_DB_URL", raising=False)
    return project_env(app_schema, pg_schema)


class Counts:
    def __init__(self, app_schema: str, queue_schema: str) -> None:
        self.app_schema, self.queue_schema = app_schema, queue_schema

    def orders(self, item: str, status: str | None = None) -> int:
        where = f"item = '{item}'" + (f" AND status = '{status}'" if status else "")
        return sql(f'SELECT count(*) FROM "{self.app_schema}".djapp_order WHERE {where}')

    def jobs(self, task: str | None = None, status: str | None = None) -> int:
        if sql(f"SELECT to_regclass('\"{self.queue_schema}\".taskito_jobs')") is None:
            return 0  # the queue was never built
        where = " AND ".join([f"task_name = '{task}'"] * bool(task) + [f"status = '{status}'"] * bool(status))
        return sql(f'SELECT count(*) FROM "{self.queue_schema}".taskito_jobs' + (f" WHERE {where}" if where else ""))


@pytest.fixture
def counts(app_schema: str, pg_schema: str) -> Counts:
    return Counts(app_schema, pg_schema)


def shell(script: str, env: dict[str, str]) -> str:
    result = manage("shell", "-c", textwrap.dedent(script), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


MARK_PAID = "djapp.tasks.mark_paid"
RUNNER = "taskito_django.run_django_task"


def test_rolled_back_blocks_and_savepoints_leave_neither_orders_nor_jobs(project: dict[str, str],
                                                                         counts: Counts) -> None:
    out = shell("""
        from django.db import transaction
        from djapp.jobs import multiply
        from djapp.models import Order
        from djapp.tasks import mark_paid
        from taskito_django import queue

        for i in range(12):  # half of them roll back: delay, apply_async and the Django Tasks backend
            try:
                with transaction.atomic():
                    order = Order.objects.create(item="batch")
                    if i % 3 == 0:
                        mark_paid.delay(order.pk)
                    elif i % 3 == 1:
                        mark_paid.apply_async(args=(order.pk,), priority=3)
                    else:
                        multiply.enqueue(order.pk, 2)
                    if i % 2:
                        raise RuntimeError("rolled back")
            except RuntimeError:
                pass

        try:
            with transaction.atomic():  # many jobs with map, then a rollback
                orders = Order.objects.bulk_create([Order(item="mapped") for _ in range(100)])
                mark_paid.map([(order.pk,) for order in orders])
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass

        with transaction.atomic():
            outer = mark_paid.delay(Order.objects.create(item="outer").pk)
            try:
                with transaction.atomic():  # a savepoint
                    order = Order.objects.create(item="inner")
                    mark_paid.delay(order.pk)
                    multiply.enqueue(order.pk, 3)
                    raise ValueError("inner block fails")
            except ValueError:
                pass
            print("seen before the commit:", queue.get_job(outer.id) is not None)
        print("seen after the commit:", queue.get_job(outer.id) is not None)

        order = Order.objects.create(item="autocommit")  # outside atomic(): at once, as before
        job = mark_paid.delay(order.pk)
        print("seen at once:", queue.get_job(job.id) is not None)
    """, project)
    assert "seen before the commit: False" in out and "seen after the commit: True" in out
    assert "seen at once: True" in out
    assert counts.orders("batch") == 6 and counts.orders("mapped") == 0 and counts.orders("inner") == 0
    assert counts.orders("outer") == 1 and counts.orders("autocommit") == 1
    # 6 batch orders committed (2 of each kind of enqueue), plus the outer block's and the autocommit one's
    assert (counts.jobs(MARK_PAID), counts.jobs(RUNNER)) == (4 + 2, 2)

    worker = start_django_worker("--concurrency", "2", env=project)
    try:
        wait_until(lambda: counts.jobs(status="complete") == 8, timeout=60, message="the 8 jobs to complete")
    finally:
        worker.stop()
    assert counts.orders("batch", "paid") + counts.orders("outer", "paid") + counts.orders("autocommit", "paid") == 6


@pytest.mark.parametrize("mode", ["killed inside atomic()", "killed right after the commit"])
def test_a_killed_process_leaves_orders_and_jobs_together(project: dict[str, str], counts: Counts,
                                                          mode: str) -> None:
    after_commit = mode == "killed right after the commit"
    script = textwrap.dedent(f"""
        import signal
        from django.db import transaction
        from djapp.jobs import multiply
        from djapp.models import Order
        from djapp.tasks import mark_paid

        with transaction.atomic():
            order = Order.objects.create(item="killed")
            mark_paid.delay(order.pk)
            multiply.enqueue(order.pk, 2)
            if not {after_commit}:
                print("in transaction", flush=True)
                signal.pause()
        print("committed", flush=True)
        signal.pause()
    """)
    process = Process([sys.executable, MANAGE, "shell", "-c", script], cwd=HERE, env={**subprocess_env(), **project})
    try:
        process.wait_for_line("committed" if after_commit else "in transaction", timeout=60)
    finally:
        process.proc.send_signal(signal.SIGKILL)
        process.wait()
    if not after_commit:
        assert (counts.orders("killed"), counts.jobs()) == (0, 0)
        return
    assert (counts.orders("killed"), counts.jobs(MARK_PAID), counts.jobs(RUNNER)) == (1, 1, 1)
    worker = start_django_worker("--concurrency", "2", env=project)
    try:
        wait_until(lambda: counts.jobs(status="complete") == 2, timeout=60, message="both jobs to complete")
    finally:
        worker.stop()
    assert counts.orders("killed", "paid") == 1


def test_transactional_false_keeps_the_old_behaviour(app_schema: str, pg_schema: str, counts: Counts,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKITO_DB_URL", raising=False)
    shell("""
        from django.db import transaction
        from djapp.models import Order
        from djapp.tasks import mark_paid

        try:
            with transaction.atomic():
                mark_paid.delay(Order.objects.create(item="untied").pk)
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
    """, project_env(app_schema, pg_schema, TASKITO_TRANSACTIONAL=False))
    assert (counts.orders("untied"), counts.jobs(MARK_PAID)) == (0, 1)  # the dual-write gap it opts into


def test_check_warns_when_the_queue_is_in_another_postgres_database(app_schema: str, pg_schema: str) -> None:
    other = PG_URL.rsplit("/", 1)[0] + "/postgres"
    result = manage("check", env={**project_env(app_schema, pg_schema, TASKITO_DB_URL=other)})
    assert "taskito.W002" in result.stderr + result.stdout, result.stderr
    assert "'postgres'" in result.stderr and "'test'" in result.stderr and "delay_on_commit" in result.stderr
    same = manage("check", env={**project_env(app_schema, pg_schema, TASKITO_DB_URL=PG_URL)})
    assert "taskito.W002" not in same.stderr + same.stdout


# -- in process: the checks of the setting ------------------------------------------------------------
def taskito_messages() -> dict[str, str]:
    return {message.id: message.msg for message in checks.run_checks(tags=["taskito"])}


def test_checks_of_taskito_transactional(settings: Any) -> None:
    settings.TASKITO_TRANSACTIONAL = "yes"
    assert "TASKITO_TRANSACTIONAL is 'yes'" in taskito_messages()["taskito.E008"]
    settings.TASKITO_TRANSACTIONAL = True  # the test project's queue is a SQLite file of its own
    assert "taskito.W003" in taskito_messages()
    settings.TASKITO_TRANSACTIONAL = None
    settings.TASKITO_BACKEND, settings.TASKITO_DB_URL = "postgres", PG_URL  # and the default database is SQLite
    message = taskito_messages()["taskito.W002"]
    assert "another database than 'default'" in message and "sqlite3" in message
    settings.TASKITO_TRANSACTIONAL = False  # said out loud: nothing to warn about
    assert "taskito.W002" not in taskito_messages()
