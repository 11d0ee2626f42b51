"""TaskitoRouter: taskito's health check, stats and job endpoints for a FastAPI app.

    app.include_router(TaskitoRouter(queue), prefix="/tasks")   # GET /tasks/stats for the load balancer

This is the only module of the ``taskito`` package that imports FastAPI (the ``fastapi`` extra).
The job endpoints are the shared view table (``taskito.views.VIEWS``). Every endpoint is
``async def`` and never blocks the event loop: the views' database calls run on the queue's thread
pool for async calls (``taskito.aio``).
"""

# No ``from __future__ import annotations``: FastAPI reads these annotations at runtime,
# including ``Annotated`` ones that refer to local variables.
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from .. import views
from ..aio import run_blocking
from ..queue import Queue

__all__ = ["TaskitoRouter"]


def _answer(reply: views.Reply) -> JSONResponse:
    status, body = reply
    return JSONResponse(body, status_code=status)


_NO_AUTH = ("taskito's job endpoints are refused until the router gets an auth dependency: "
            "TaskitoRouter(queue, auth=your_check), where your_check returns True to allow")


def _refuse_all() -> views.Reply:
    return views.error(403, _NO_AUTH)


def _guard(auth: Callable[..., Any]) -> Callable[..., views.Reply | None]:
    """Turn an auth dependency into one that refuses with 403 unless it returned ``True`` itself.

    The refusal is returned, not raised, so that the endpoint answers it in the one error shape.
    """

    def check(allowed: Annotated[Any, Depends(auth)]) -> views.Reply | None:
        return None if views.granted(allowed) else views.error(403, "not authorized for taskito's job endpoints")

    return check


def _endpoint(queue: Queue, view: views.View,
              guard: Callable[..., views.Reply | None]) -> Callable[..., Coroutine[Any, Any, JSONResponse]]:
    async def endpoint(request: Request, refused: Annotated[Any, Depends(guard)]) -> JSONResponse:
        if refused is None and view.changes:
            refused = views.refuse_cross_site(request.headers.get("Sec-Fetch-Site"))
        if refused is not None:
            return _answer(refused)
        given: dict[str, Any] = dict(request.query_params)
        if view.body:
            try:
                given.update(views.json_body(await request.body()))
            except views.ViewError as exc:
                return _answer(exc.reply)
        return _answer(await run_blocking(queue, views.call, view, queue, given, **request.path_params))

    endpoint.__name__ = view.name
    return endpoint


class TaskitoRouter(APIRouter):
    """An APIRouter serving one queue.

    ``GET /stats`` and ``GET /health`` are always open so that load balancers can use them.
    ``auth`` is a FastAPI dependency guarding the job endpoints: they answer only when it returns
    ``True`` itself; any other return (``False``, ``None``, ``""``, ``"yes"``) is 403, and it may
    refuse with its own ``HTTPException`` (e.g. 401). Without ``auth`` the job endpoints answer 403.
    POSTs that a browser marks as cross-site (``Sec-Fetch-Site``) are refused with 403.
    Other keyword arguments go to ``APIRouter`` (``tags``, ``dependencies``, ...).
    """

    def __init__(self, queue: Queue, *, auth: Callable[..., Any] | None = None, **router_kwargs: Any) -> None:
        if not isinstance(queue, Queue):
            raise TypeError(f"TaskitoRouter needs a taskito.Queue, got {type(queue).__name__}")
        router_kwargs.setdefault("tags", ["taskito"])
        super().__init__(**router_kwargs)
        self.queue = queue
        guard = _guard(auth) if auth is not None else _refuse_all

        @self.get("/health", summary="200 while the taskito database answers")
        async def health() -> JSONResponse:
            return _answer(await run_blocking(queue, views.health, queue))

        @self.get("/stats", summary="Job counts by status (load-balancer health check)")
        async def stats() -> JSONResponse:
            return _answer(await run_blocking(queue, views.stats, queue))

        for view in views.VIEWS:
            self.add_api_route(view.path, _endpoint(queue, view, guard), methods=[view.method], summary=view.summary)
