"""Job views: the filtered list, one job, its result without waiting, cancelling it, replaying it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exceptions import InvalidValueError, JobNotFoundError
from ..result import JobResult, job_to_dict
from ..storage import Status
from . import params as p
from .errors import Reply, ViewError
from .rules import can_cancel, can_replay, can_retry, why_not_cancelled

if TYPE_CHECKING:
    from ..queue import Queue


def found(queue: Queue, job_id: str) -> JobResult:
    job = queue.get_job(job_id)
    if job is None:
        raise ViewError(404, f"no job with id {job_id!r} (purged, retried as a new job, or never enqueued)")
    return job


def list_jobs(queue: Queue, params: p.Params) -> Reply:
    """Newest first, filtered by ``status``, ``queue`` and ``task``; ``limit``/``offset`` paginate."""
    filters = {"status": p.status(params), "queue": p.text(params, "queue"), "task": p.text(params, "task")}
    page = p.page(params, lambda limit, offset: queue.list_jobs(
        status=filters["status"], queue=filters["queue"], task_name=filters["task"], limit=limit, offset=offset))
    return 200, {**page.to_json(JobResult.summary), "filters": filters}  # each job's fields and a preview


def job_detail(queue: Queue, params: p.Params, job_id: str) -> Reply:
    """One job with every failed attempt's error, and what may be done to it."""
    record = found(queue, job_id).record
    return 200, {**job_to_dict(queue, record), "errors": queue.job_errors(job_id),
                 "can_cancel": can_cancel(record), "can_retry": can_retry(record), "can_replay": can_replay(record)}


def job_result(queue: Queue, params: p.Params, job_id: str) -> Reply:
    """Where the job stands, without waiting: ``ready`` once it finished one way or another."""
    data = job_to_dict(queue, found(queue, job_id).record)
    status = data["status"]
    return 200, {"id": job_id, "task_name": data["task_name"], "status": status,
                 "ready": status in Status.FINISHED, "progress": data["progress"],
                 "result": data["result"] if status == Status.COMPLETE else None,
                 "error": None if status == Status.COMPLETE else data["error"]}


def job_logs(queue: Queue, params: p.Params, job_id: str) -> Reply:
    """The lines the job's task logged (``current_job.log()``), oldest first; ``after``: only those after
    that line id (a page following a running job asks for the new ones)."""
    after = p.integer(params, "after", 0, 0, 2**62)
    found(queue, job_id)
    return 200, {"job_id": job_id, "lines": queue.job_logs(job_id, after=after)}


def search(queue: Queue, params: p.Params) -> Reply:
    """Jobs matching ``q``: the job with that id (none: an empty answer, not an error)."""
    query = (p.text(params, "q") or "").strip()
    job = queue.get_job(query) if query else None
    return 200, {"q": query, "jobs": [] if job is None else [job.summary()]}


def cancel_job(queue: Queue, params: p.Params, job_id: str) -> Reply:
    """Cancel a job that has not finished: a waiting one at once; a claimed or running one is asked to
    stop (``cancel_requested``), and ends cancelled once its worker has stopped it."""
    found(queue, job_id)
    if queue.cancel_job(job_id):
        job = queue.get_job(job_id)
        status = Status.CANCELLED if job is None else job.status
        if status == Status.CANCELLED:
            return 200, {"id": job_id, "cancelled": True, "status": status}
        return 200, {"id": job_id, "cancelled": True, "status": status, "cancel_requested": True}
    job = queue.get_job(job_id)
    record = None if job is None else job.record
    raise ViewError(409, why_not_cancelled(job_id, record), id=job_id, cancelled=False,
                    status="purged" if record is None else record.status)


def replay(queue: Queue, params: p.Params, job_id: str) -> Reply:
    """A finished job (complete, dead or cancelled) enqueued again as a new job, same task, arguments, options."""
    try:
        job = queue.replay(job_id)
    except JobNotFoundError:
        raise ViewError(404, f"no job with id {job_id!r} (purged, or never enqueued)") from None
    except InvalidValueError as exc:
        raise ViewError(409, str(exc)) from None
    return 200, {"replayed": job_id, "new_id": job.id}
