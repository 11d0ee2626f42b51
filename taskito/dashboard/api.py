"""The JSON API under ``/api``: the shared view table (``taskito.views``) mapped onto the dashboard's router."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import views
from .http import Request, Response, Router, json_response

if TYPE_CHECKING:
    from ..queue import Queue

PREFIX = "/api"


def _params(req: Request, view: views.View) -> dict[str, Any]:
    """Query parameters (the first value of each), joined by the JSON body's keys for a view that reads one."""
    found: dict[str, Any] = {key: values[0] for key, values in req.query.items() if values}
    if view.body:
        found.update(views.json_body(req.body()))
    return found


def _handler(queue: Queue, view: views.View) -> Callable[..., Response]:
    def handle(req: Request, **path_params: str) -> Response:
        try:
            status, body = views.call(view, queue, _params(req, view), **path_params)
        except views.ViewError as exc:  # a POST body that is not a JSON object
            status, body = exc.reply
        return json_response(body, status)

    return handle


def register(queue: Queue, router: Router) -> None:
    """Every view of the table under ``/api``, plus ``/api/stats``: the page's overview of the counts."""
    overview = views.View("GET", "/stats", views.overview, "The counts overall and per queue, for the page")
    router.add("GET", PREFIX + overview.path, _handler(queue, overview))
    for view in views.VIEWS:
        router.add(view.method, PREFIX + view.path_as("(?P<{}>[^/]+)", "(?P<{}>.+)"), _handler(queue, view),
                   mutating=view.changes)
