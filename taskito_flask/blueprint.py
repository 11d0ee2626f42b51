"""The JSON blueprint: open health and stats, job endpoints behind ``@taskito.authorize``."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from taskito import views
from taskito.exceptions import DatabaseUnavailableError

if TYPE_CHECKING:
    from .extension import Taskito

logger = logging.getLogger("taskito.flask")

_NO_AUTHORIZER = ("taskito's job endpoints are refused until the app registers an authorization callback "
                  "with @taskito.authorize (it gets the request and returns True to allow)")


def _json(reply: views.Reply) -> tuple[Response, int]:
    status, body = reply
    return jsonify(body), status


def make_blueprint(extension: Taskito) -> Blueprint:
    """The blueprint of ``extension``; it uses the queue of the app serving the request."""
    bp = Blueprint("taskito", __name__)

    def protected(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            authorize = extension._authorize
            if authorize is None:
                return _json(views.error(403, _NO_AUTHORIZER))
            if not views.granted(authorize(request)):
                return _json(views.error(403, "not authorized for taskito's job endpoints"))
            if request.method == "POST" and (refused := views.refuse_cross_site(request.headers.get("Sec-Fetch-Site"))):
                return _json(refused)
            return view(*args, **kwargs)

        return guarded

    def serve(view: views.View) -> Callable[..., Any]:
        def handle(**path_params: str) -> Any:
            given: dict[str, Any] = request.args.to_dict()
            if view.body:
                try:
                    given.update(views.json_body(request.get_data()))
                except views.ViewError as exc:
                    return _json(exc.reply)
            return _json(views.call(view, extension.queue, given, **path_params))

        return handle

    @bp.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return _json(views.error(exc.code or 500, exc.description or exc.name))

    @bp.errorhandler(DatabaseUnavailableError)
    def database_unavailable(exc: DatabaseUnavailableError) -> tuple[Response, int]:
        # The queue is built on first use, so a database that is down (or not up yet) shows here.
        # Load balancers read /health: answer 503 with no database details, which go to the log.
        logger.warning("taskito endpoint %s: %s", request.path, exc)
        return _json(views.error(503, "the taskito database is unavailable", status="unavailable"))

    @bp.get("/health")
    def health() -> Any:
        return _json(views.health(extension.queue))

    @bp.get("/stats")
    def stats() -> Any:
        return _json(views.stats(extension.queue))

    for view in views.VIEWS:
        bp.add_url_rule(view.path_as("<{}>", "<path:{}>"), view.name, protected(serve(view)), methods=[view.method])

    @bp.route("/<path:unknown>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def not_found(unknown: str) -> Any:
        return _json(views.error(404, f"no taskito endpoint {request.method} {request.path}"))

    return bp
