"""The Flask app the tests use, in the factory style: ``flask --app sample_app:create_app taskito ...``.

The extension and its tasks are declared at import time, before any app exists. The database
comes from TASKITO_DB_PATH (env or config); the teardown log from SAMPLE_TEARDOWN_LOG.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, current_app, g, jsonify

from taskito_flask import Taskito

taskito = Taskito()


@taskito.task(name="sample.add")
def add(a: int, b: int) -> int:
    return a + b


@taskito.task(name="sample.probe")
def probe(label: str) -> dict[str, Any]:
    """Reads the app's config and uses ``g``: ``g`` must start empty for every task."""
    seen_before = g.get("label")
    g.label = label
    return {"app": current_app.name, "greeting": current_app.config["GREETING"], "g_before": seen_before,
            "label": g.label}


@taskito.task(name="sample.fail", max_retries=0)
def fail() -> None:
    raise RuntimeError("boom")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask("sample_app")
    app.config.update(GREETING="hello from config", SAMPLE_TEARDOWN_LOG=os.environ.get("SAMPLE_TEARDOWN_LOG"))
    app.config.update(config or {})

    @app.teardown_appcontext
    def log_teardown(exc: BaseException | None) -> None:
        path = current_app.config["SAMPLE_TEARDOWN_LOG"]
        if path and "label" in g:
            with open(path, "a") as log:
                log.write(f"{g.label}\n")

    @app.post("/add/<int:a>/<int:b>")
    def enqueue_add(a: int, b: int) -> Any:
        job = add.delay(a, b)
        return jsonify(id=job.id, status=job.status), 202

    taskito.init_app(app)
    return app
