"""TaskitoRouter: taskito's health check, stats and job endpoints for a FastAPI app.

    app.include_router(TaskitoRouter(queue), prefix="/tasks")   # GET /tasks/stats for the load balancer

This is the only module of the ``taskito`` package that imports FastAPI (the ``fastapi`` extra).
Every endpoint is ``async def`` and never blocks the event loop: the views' database calls run on
the queue's thread pool for async calls (``taskito.aio``).
"""

# No ``from __future__ import annotations``: FastAPI reads these annotations at runtime,
# including ``Annotated`` ones that refer to local variables.
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from fastapi.responses import JSONResponse

from ..aio import run_blocking
from ..queue import Queue
from . import views

__all__ = ["TaskitoRouter"]


async def _respond(queue: Queue, view: Callable[..., views.Reply], *args: Any) -> JSONResponse:
    """Answer with ``view(queue, *args)``, run off the event loop."""
    status, body = await run_blocking(queue, view, queue, *args)
    return JSONResponse(body, status_code=status)


_NO_AUTH = ("taskito's job endpoints are refused until the router gets an auth dependency: "
            "TaskitoRouter(queue, auth=your_check), where your_check returns True to allow")


def _refuse_all() -> None:
    raise HTTPException(status_code=403, detail=_NO_AUTH)


def _guard(auth: Callable[..., Any]) -> Callable[..., Any]:
    """Turn an auth dependency into one that refuses with 403 unless it returned ``True`` itself."""

    def check(allowed: Annotated[Any, Depends(auth)]) -> None:
        if not views.granted(allowed):
            raise HTTPException(status_code=403, detail="not authorized for taskito's job endpoints")

    return check


def _same_site(sec_fetch_site: Annotated[str | None, Header()] = None) -> None:
    refused = views.refuse_cross_site(sec_fetch_site)
    if refused is not None:
        raise HTTPException(status_code=refused[0], detail=refused[1]["error"])


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
        guarded = [Depends(_guard(auth) if auth is not None else _refuse_all)]

        @self.get("/health", summary="200 while the taskito database answers")
        async def health() -> JSONResponse:
            return await _respond(queue, views.health)

        @self.get("/stats", summary="Job counts by status (load-balancer health check)")
        async def stats() -> JSONResponse:
            return await _respond(queue, views.stats)

        @self.get("/jobs/{job_id}", dependencies=guarded, summary="One job with its error history")
        async def job_detail(job_id: str) -> JSONResponse:
            return await _respond(queue, views.job_detail, job_id)

        @self.get("/jobs/{job_id}/logs", dependencies=guarded, summary="The job's log lines, oldest first")
        async def job_logs(job_id: str, after: str | None = None) -> JSONResponse:
            return await _respond(queue, views.job_logs, job_id, after)

        @self.get("/tasks", dependencies=guarded, summary="Per task: outcomes, failure rate, run and wait times")
        async def task_stats(since: str | None = None) -> JSONResponse:
            return await _respond(queue, views.task_stats, since)

        @self.get("/queues", dependencies=guarded, summary="Per queue: counts, oldest due job's age, wait times")
        async def queue_stats(since: str | None = None) -> JSONResponse:
            return await _respond(queue, views.queue_stats, since)

        @self.get("/jobs/{job_id}/result", dependencies=guarded,
                  summary="Status, and the result once complete (never waits)")
        async def job_result(job_id: str) -> JSONResponse:
            return await _respond(queue, views.job_result, job_id)

        @self.post("/jobs/{job_id}/cancel", dependencies=[*guarded, Depends(_same_site)],
                   summary="Cancel a pending job")
        async def cancel_job(job_id: str) -> JSONResponse:
            return await _respond(queue, views.cancel_job, job_id)

        @self.get("/dead-letters", dependencies=guarded, summary="Dead letters, newest first")
        async def dead_letters(limit: Annotated[int, Query(ge=1, le=views.MAX_LIMIT)] = views.DEFAULT_LIMIT,
                               offset: Annotated[int, Query(ge=0)] = 0) -> JSONResponse:
            return await _respond(queue, views.dead_letters, limit, offset)
