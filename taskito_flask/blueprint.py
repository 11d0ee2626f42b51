"""The JSON blueprint: open health and stats, job endpoints behind ``@taskito.authorize``."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException

from taskito.contrib import views
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

    def page() -> tuple[int, int]:
        try:
            return views.parse_page(request.args.get("limit"), request.args.get("offset"))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None

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

    @bp.get("/stats/queues")
    @protected
    def stats_queues() -> Any:
        return _json(views.stats_by_queue(extension.queue))

    @bp.get("/jobs")
    @protected
    def list_jobs() -> Any:
        limit, offset = page()
        args = request.args
        return _json(views.list_jobs(extension.queue, status=args.get("status") or None,
                                     queue_name=args.get("queue") or None, task_name=args.get("task") or None,
                                     limit=limit, offset=offset))

    @bp.get("/jobs/<job_id>")
    @protected
    def job_detail(job_id: str) -> Any:
        return _json(views.job_detail(extension.queue, job_id))

    @bp.get("/jobs/<job_id>/logs")
    @protected
    def job_logs(job_id: str) -> Any:
        return _json(views.job_logs(extension.queue, job_id, request.args.get("after")))

    @bp.get("/tasks")
    @protected
    def task_stats() -> Any:
        return _json(views.task_stats(extension.queue, request.args.get("since")))

    @bp.get("/queues")
    @protected
    def queue_stats() -> Any:
        return _json(views.queue_stats(extension.queue, request.args.get("since")))

    @bp.get("/jobs/<job_id>/result")
    @protected
    def job_result(job_id: str) -> Any:
        return _json(views.job_result(extension.queue, job_id))

    @bp.post("/jobs/<job_id>/cancel")
    @protected
    def cancel_job(job_id: str) -> Any:
        return _json(views.cancel_job(extension.queue, job_id))

    @bp.get("/dead-letters")
    @protected
    def dead_letters() -> Any:
        limit, offset = page()
        return _json(views.dead_letters(extension.queue, limit, offset))

    @bp.post("/dead-letters/<job_id>/retry")
    @protected
    def retry_dead(job_id: str) -> Any:
        return _json(views.retry_dead(extension.queue, job_id))

    @bp.route("/<path:unknown>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def not_found(unknown: str) -> Any:
        return _json(views.error(404, f"no taskito endpoint {request.method} {request.path}"))

    return bp
