"""An app factory using taskito: `flask --app shop run` and `flask --app shop taskito worker`."""

from __future__ import annotations

import hmac
import os
from pathlib import Path
from typing import Any

from flask import Flask, Request, current_app, g

from .extensions import taskito

HERE = Path(__file__).resolve().parent.parent  # example_projects/flask_app


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        SHOP_NAME="The Example Shop",
        MAIL_SENDER="hello@shop.example",
        MAIL_OUTBOX=str(HERE / ".taskito" / "outbox.txt"),
        # An absolute path, so the web app and the worker agree whatever their working directory.
        TASKITO_DB_PATH=os.environ.get("TASKITO_DB_PATH", str(HERE / ".taskito" / "taskito.db")),
        TASKITO_API_TOKEN=os.environ.get("TASKITO_API_TOKEN", "change-me"),
    )
    app.config.update(config or {})

    @app.teardown_appcontext
    def close_mailer(exc: BaseException | None) -> None:
        mailer = g.pop("mailer", None)
        if mailer is not None:
            mailer.close()

    from . import tasks, views  # noqa: F401  (registers the tasks and the routes)

    taskito.init_app(app)
    app.register_blueprint(views.bp)
    return app


@taskito.authorize
def token_required(request: Request) -> bool:
    """Who may use /taskito/jobs...: callers sending the API token (health and stats stay open)."""
    expected = current_app.config["TASKITO_API_TOKEN"]
    return hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {expected}")
