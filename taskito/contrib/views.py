"""JSON views shared by the Flask blueprint and the FastAPI router, free of any web framework.

Each function takes the queue and plain values and returns ``(status_code, body)``, so the two
integrations answer the same requests with the same JSON and the same errors.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..exceptions import JobNotFoundError
from ..result import job_to_dict, why_not_cancelled
from ..storage import Status

if TYPE_CHECKING:
    from ..queue import Queue

logger = logging.getLogger("taskito.contrib")

Reply = tuple[int, dict[str, Any]]

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def error(code: int, message: str, **extra: Any) -> Reply:
    return code, {"error": message, **extra}


def parse_page(limit: str | None, offset: str | None, default_limit: int = DEFAULT_LIMIT) -> tuple[int, int]:
    """Read ``limit``/``offset`` query parameters; ValueError names the bad one."""
    values = []
    for name, raw, default, low, high in (("limit", limit, default_limit, 1, MAX_LIMIT),
                                          ("offset", offset, 0, 0, None)):
        if raw is None or raw == "":
            values.append(default)
            continue
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{name} must be an integer, got {raw!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ValueError(f"{name} must be {bounds}, got {value}")
        values.append(value)
    return values[0], values[1]


def granted(decision: Any) -> bool:
    """Whether an authorization callback's answer lets the caller in: only ``True`` itself does.

    A callback that forgets to return (None), returns "" or a truthy "yes"/1 is a bug, and a bug
    must refuse, never open the job endpoints.
    """
    return decision is True


def refuse_cross_site(sec_fetch_site: str | None) -> Reply | None:
    """Refuse state-changing requests that a browser says come from another site.

    Browsers send ``Sec-Fetch-Site``; API clients do not. This keeps a cookie-based
    authorization callback from being used by another site's form (CSRF).
    """
    if sec_fetch_site == "cross-site":
        return error(403, "cross-site requests cannot change taskito jobs")
    return None


def _unavailable(what: str, exc: Exception) -> Reply:
    # The open endpoints are read by load balancers: answer 503 with no database details.
    logger.warning("taskito %s failed: %s", what, exc)
    return error(503, "the taskito database is unavailable", status="unavailable")


def health(queue: Queue) -> Reply:
    """200 while the database answers; the live worker count is informational."""
    try:
        workers = queue.workers()
    except Exception as exc:
        return _unavailable("health check", exc)
    return 200, {"status": "ok", "workers": len(workers)}


def stats(queue: Queue) -> Reply:
    try:
        return 200, queue.stats()
    except Exception as exc:
        return _unavailable("stats", exc)


def stats_by_queue(queue: Queue) -> Reply:
    return 200, {"queues": queue.stats_all_queues(), "paused": queue.paused_queues()}


def _page(queue: Queue, jobs: list[Any], limit: int, offset: int) -> dict[str, Any]:
    """``jobs`` holds up to ``limit + 1`` rows: the extra one only tells whether a next page exists."""
    return {"jobs": [job_to_dict(queue, job.record) for job in jobs[:limit]], "limit": limit, "offset": offset,
            "next_offset": offset + limit if len(jobs) > limit else None}


def list_jobs(queue: Queue, status: str | None, queue_name: str | None, task_name: str | None,
              limit: int, offset: int) -> Reply:
    try:
        status = None if status is None else Status.parse(status)
    except ValueError as exc:
        return error(400, str(exc))
    jobs = queue.list_jobs(status=status, queue=queue_name, task_name=task_name, limit=limit + 1, offset=offset)
    return 200, _page(queue, jobs, limit, offset)


def dead_letters(queue: Queue, limit: int, offset: int) -> Reply:
    return 200, _page(queue, queue.dead_letters(limit=limit + 1, offset=offset), limit, offset)


def _unknown(job_id: str) -> Reply:
    return error(404, f"no job with id {job_id!r} (it never existed or was purged)")


def job_detail(queue: Queue, job_id: str) -> Reply:
    job = queue.get_job(job_id)
    if job is None:
        return _unknown(job_id)
    return 200, {**job_to_dict(queue, job.record), "errors": queue.job_errors(job_id)}


def job_result(queue: Queue, job_id: str) -> Reply:
    """Where the job stands, without waiting: ``ready`` once it finished one way or another."""
    job = queue.get_job(job_id)
    if job is None:
        return _unknown(job_id)
    data = job_to_dict(queue, job.record)
    status = data["status"]
    return 200, {"id": job_id, "task_name": data["task_name"], "status": status,
                 "ready": status in Status.FINISHED, "progress": data["progress"],
                 "result": data["result"] if status == Status.COMPLETE else None,
                 "error": None if status == Status.COMPLETE else data["error"]}


def cancel_job(queue: Queue, job_id: str) -> Reply:
    if queue.get_job(job_id) is None:
        return _unknown(job_id)
    if queue.cancel_job(job_id):
        return 200, {"id": job_id, "cancelled": True, "status": Status.CANCELLED}
    job = queue.get_job(job_id)
    record = job.record if job is not None else None
    return error(409, why_not_cancelled(job_id, record), id=job_id, cancelled=False,
                 status=record.status if record is not None else "purged")


def retry_dead(queue: Queue, job_id: str) -> Reply:
    try:
        new_id = queue.retry_dead(job_id)
    except JobNotFoundError:
        job = queue.get_job(job_id)
        if job is None:
            return error(404, f"no dead letter with id {job_id!r}")
        return error(409, f"job {job_id} is {job.record.status}, not dead: only dead letters can be retried",
                     status=job.record.status)
    return 200, {"id": job_id, "new_job_id": new_id}


def job_logs(queue: Queue, job_id: str, after: str | None = None) -> Reply:
    """The lines the job's task logged (``current_job.log()``), oldest first; ``after``: only newer lines."""
    try:
        start = 0 if after is None or after == "" else int(after)
        if start < 0:
            raise ValueError
    except ValueError:
        return error(400, f"after must be a line id (a whole number, zero or more), got {after!r}")
    if queue.get_job(job_id) is None:
        return _unknown(job_id)
    return 200, {"job_id": job_id, "lines": queue.job_logs(job_id, after=start)}


def _since(raw: str | None) -> int:
    """The ``since`` query parameter of the metrics views: seconds back, 60 to 31 days (default 3600)."""
    if raw is None or raw == "":
        return 3600
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"since must be a whole number of seconds, got {raw!r}") from None
    if not 60 <= value <= 31 * 86400:
        raise ValueError(f"since must be from 60 to {31 * 86400} seconds, got {value}")
    return value


def task_stats(queue: Queue, since: str | None = None) -> Reply:
    """Per task, ``Queue.task_stats`` over the last ``since`` seconds."""
    try:
        window = _since(since)
    except ValueError as exc:
        return error(400, str(exc))
    return 200, {"since": window, "tasks": queue.task_stats(since=window)}


def queue_stats(queue: Queue, since: str | None = None) -> Reply:
    """Per queue, ``Queue.queue_stats`` (counts, oldest due job's age, wait) over the last ``since`` seconds."""
    try:
        window = _since(since)
    except ValueError as exc:
        return error(400, str(exc))
    return 200, {"since": window, "queues": queue.queue_stats(since=window)}
