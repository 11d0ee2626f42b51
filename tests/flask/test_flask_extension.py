"""Taskito(app) / init_app: the factory pattern, app context in tasks, eager mode, configuration."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, current_app, g

from taskito import ConfigurationError, Queue, TaskFailedError
from taskito_flask import FlaskTask, NotInitializedError, Taskito
from tests.flask import sample_app
from tests.flask.conftest import teardowns


def test_tasks_declared_before_init_app_are_registered_on_the_app_queue(app: Flask) -> None:
    queue = sample_app.taskito.queue_for(app)
    assert app.extensions["taskito"] is sample_app.taskito
    assert isinstance(queue, Queue)
    assert {"sample.add", "sample.probe", "sample.fail"} <= set(queue.tasks)
    assert queue.tasks["sample.fail"].options.max_retries == 0
    assert isinstance(sample_app.add, FlaskTask) and sample_app.add(2, 3) == 5  # a plain call stays plain
    with app.app_context():
        assert sample_app.taskito.queue is queue


def test_queue_is_built_from_app_config(tmp_path: Path) -> None:
    ext = Taskito()
    app = Flask("cfg")
    app.config.update(TASKITO_DB_PATH=str(tmp_path / "cfg.db"), TASKITO_DEFAULT_RETRY=7, TASKITO_WORKERS="3",
                      TASKITO_RESULT_TTL=60)
    ext.init_app(app)
    queue = ext.queue_for(app)
    assert (queue.db_path, queue.default_retry, queue.concurrency, queue.result_ttl) == (
        str(tmp_path / "cfg.db"), 7, 3, 60.0)
    assert (tmp_path / "cfg.db").exists()
    queue.close()


def test_bad_config_value_names_the_key(tmp_path: Path) -> None:
    app = Flask("bad")
    app.config.update(TASKITO_DB_PATH=str(tmp_path / "x.db"), TASKITO_DEFAULT_RETRY="many")
    with pytest.raises(ConfigurationError, match="TASKITO_DEFAULT_RETRY='many'"):
        Taskito(app)


def test_before_init_app_operations_raise_a_clear_error() -> None:
    ext = Taskito()

    @ext.task()
    def early(x: int) -> int:
        return x

    with pytest.raises(NotInitializedError, match=r"init_app\(app\)"):
        ext.queue.stats()
    with pytest.raises(NotInitializedError, match="enqueueing task .*early"):
        early.delay(1)
    with pytest.raises(RuntimeError):  # also a RuntimeError, like Flask's own "outside of context" errors
        ext.queue.enqueue("x")
    assert early(4) == 4


def test_declarations_through_the_unbound_queue_and_after_init_app(tmp_path: Path) -> None:
    ext = Taskito(url_prefix=False, cli_group=None)
    calls: list[str] = []

    @ext.queue.task(name="before")
    def before() -> str:
        return "b"

    @ext.queue.before_task
    def hook(task_name: str, args: tuple, kwargs: dict) -> None:
        calls.append(task_name)

    @ext.periodic("0 */5 * * * *", name="tick")
    def tick() -> None:
        pass

    app = Flask("decl")
    app.config.update(TASKITO_DB_PATH=str(tmp_path / "d.db"), TASKITO_EAGER=True)
    ext.init_app(app)

    @ext.task(name="after")
    def after() -> str:
        return "a"

    queue = ext.queue_for(app)
    assert {"before", "after", "tick"} <= set(queue.tasks)
    assert [(p.name, p.cron) for p in queue.periodic_tasks] == [("tick", "0 */5 * * * *")]
    assert before.delay().result() == "b" and after.delay().result() == "a"
    assert calls == ["before", "after"]
    queue.close()


def test_bad_declarations_fail_at_import_time() -> None:
    ext = Taskito()
    with pytest.raises(TypeError, match="retries"):
        ext.task(retries=3)
    with pytest.raises(ValueError, match="invalid cron expression"):
        ext.periodic("every minute")


def test_init_app_twice_on_one_app_is_refused(app: Flask) -> None:
    with pytest.raises(ConfigurationError, match="already initialised"):
        sample_app.taskito.init_app(app)


def test_each_app_of_a_factory_gets_its_own_queue(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    first = make_app()
    second = make_app(TASKITO_DB_PATH=str(tmp_path / "second.db"))
    with first.app_context():
        job = sample_app.add.delay(1, 2)
    assert sample_app.taskito.queue_for(first).get_job(job.id) is not None
    assert sample_app.taskito.queue_for(second).get_job(job.id) is None


def test_eager_mode_runs_tasks_inline_inside_the_app_context(make_app: Callable[..., Flask],
                                                             tmp_path: Path) -> None:
    app = make_app(TASKITO_EAGER=True)
    client = app.test_client()
    response = client.post("/add/2/3")
    assert response.status_code == 202 and response.json["status"] == "complete"
    with app.app_context():
        g.label = "request"  # the task gets a fresh g, not the caller's
        result = sample_app.probe.delay("eager").result()
    assert result == {"app": "sample_app", "greeting": "hello from config", "g_before": None, "label": "eager"}
    assert "eager" in teardowns(tmp_path)  # the task's app context was torn down after it ran
    with pytest.raises(TaskFailedError, match="boom"):
        sample_app.fail.delay().result()
    assert sample_app.taskito.queue_for(app).stats()["pending"] == 0  # nothing was stored


def test_url_prefix_and_cli_group_options(tmp_path: Path) -> None:
    db = str(tmp_path / "p.db")
    custom = Flask("custom")
    custom.config.update(TASKITO_DB_PATH=db, TASKITO_URL_PREFIX="/ops/queue")
    Taskito(custom, cli_group="jobs")
    assert custom.test_client().get("/ops/queue/health").status_code == 200
    assert custom.test_client().get("/taskito/health").status_code == 404
    assert "jobs" in custom.cli.commands and "taskito" not in custom.cli.commands

    disabled = Flask("disabled")
    disabled.config.update(TASKITO_DB_PATH=db, TASKITO_URL_PREFIX=False)
    Taskito(disabled, cli_group=None)
    assert "taskito" not in disabled.blueprints and not disabled.cli.commands

    overridden = Flask("overridden")
    overridden.config.update(TASKITO_DB_PATH=db, TASKITO_URL_PREFIX="/ignored")
    Taskito(overridden, url_prefix="/q")
    assert overridden.test_client().get("/q/stats").status_code == 200

    bad = Flask("bad")
    bad.config.update(TASKITO_DB_PATH=db, TASKITO_URL_PREFIX=5)
    with pytest.raises(ConfigurationError, match="TASKITO_URL_PREFIX"):
        Taskito(bad)


def test_hooks_run_inside_the_app_context(tmp_path: Path) -> None:
    ext = Taskito(url_prefix=False)
    seen: list[str] = []

    @ext.on_success
    def record(task_name: str, args: tuple, kwargs: dict, result: object) -> None:
        seen.append(f"{current_app.name}:{task_name}:{result}")

    @ext.task(name="double")
    def double(x: int) -> int:
        return 2 * x

    app = Flask("hooks")
    app.config.update(TASKITO_DB_PATH=str(tmp_path / "h.db"), TASKITO_EAGER=True)
    ext.init_app(app)
    double.delay(21)
    assert seen == ["hooks:double:42"]
    ext.queue_for(app).close()


def test_middleware_and_events_declared_on_the_extension_run_inside_the_app_context(tmp_path: Path) -> None:
    ext = Taskito(url_prefix=False)
    seen: list[str] = []

    class Recorder:
        def before(self, job: Any) -> None:
            seen.append(f"before {current_app.name}:{job.task_name}")

    ext.add_middleware(Recorder())  # before init_app, as a factory's module would
    ext.on_event("job.completed")(lambda event: seen.append(f"completed {event['task_name']}"))

    @ext.task(name="triple")
    def triple(x: int) -> int:
        return 3 * x

    app = Flask("mw")
    app.config.update(TASKITO_DB_PATH=str(tmp_path / "m.db"), TASKITO_EAGER=True)
    ext.init_app(app)
    assert triple.delay(2).result() == 6
    assert seen == ["before mw:triple", "completed triple"]
    ext.queue_for(app).close()


def test_app_on_postgres(make_app: Callable[..., Flask], pg_schema: str) -> None:
    from tests.conftest import PG_URL

    pytest.importorskip("taskito.storage.postgres", reason="the PostgreSQL engine is not in this tree yet")
    app = make_app(TASKITO_BACKEND="postgres", TASKITO_DB_URL=PG_URL, TASKITO_SCHEMA=pg_schema)
    queue = sample_app.taskito.queue_for(app)
    assert (queue.backend, queue.schema) == ("postgres", pg_schema)
    response = app.test_client().post("/add/2/3")
    assert response.status_code == 202 and queue.get_job(response.json["id"]).status == "pending"
    assert app.test_client().get("/taskito/stats").json["pending"] == 1


def test_one_registry_serves_every_app_each_with_its_own_defaults(tmp_path: Path) -> None:
    ext = Taskito(url_prefix=False, cli_group=None)

    @ext.task(name="shared.one")
    def one() -> int:
        return 1

    apps = []
    for name, priority in (("first", 3), ("second", 8)):
        app = Flask(name)
        app.config.update(TASKITO_DB_PATH=str(tmp_path / f"{name}.db"), TASKITO_DEFAULT_PRIORITY=priority)
        ext.init_app(app)
        apps.append(app)
    queues = [ext.queue_for(app) for app in apps]
    assert queues[0].registry is ext.registry is queues[1].registry
    for app, queue, priority in zip(apps, queues, (3, 8), strict=True):
        with app.app_context():
            job = one.delay()
        assert queue.get_job(job.id).record.priority == priority
        queue.close()
