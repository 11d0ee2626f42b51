"""Job views: the filtered list, one job, its result without waiting, cancelling it, replaying it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import validation
from ..exceptions import InvalidValueError, JobNotFoundError
from ..result import JobResult, job_to_dict
from ..storage import JOB_ORDERS, Status
from ..storage.base import STATS_KEYS, TEXT_SEARCH_ROWS, indexed_orders
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


# Orders no index keeps are allowed when the filters leave at most this many jobs (the counters say so),
# or with a text search (which reads as many at most): sorting them costs milliseconds.
SORTABLE_ROWS = TEXT_SEARCH_ROWS


def list_jobs(queue: Queue, params: p.Params) -> Reply:
    """Newest first, filtered by ``status``, ``queue`` and ``task``, found by ``id`` (the start of a job id)
    and ``text`` (in arguments or errors, among the 10,000 most recent matches of the other filters),
    sorted by ``sort`` (see ``listing``); ``limit``/``offset`` paginate."""
    return 200, listing(queue, params, p.status(params))


def listing(queue: Queue, params: p.Params, status: str | None) -> dict[str, Any]:
    """A page of jobs as the jobs and dead-letter views list them.

    ``sort``: created (default ``-created``, newest first), task, queue, status, priority, started,
    finished or attempts, ``-`` first for descending. Only orders an index keeps with the filters given
    (``sortable`` in the answer) unless the filters leave at most SORTABLE_ROWS jobs or a text search
    bounds them: any other is a 400, so that no page sorts a million rows.
    """
    filters = {"status": status, "queue": p.text(params, "queue"), "task": p.text(params, "task"),
               "id": p.text(params, "id"), "text": p.text(params, "text")}
    id_prefix = None if filters["id"] is None else validation.job_id_prefix(filters["id"], "id")
    text = None if filters["text"] is None else validation.search_text(filters["text"], "text")
    sortable = sortable_orders(queue, status, filters["queue"], filters["task"], id_prefix, text)
    sort = p.text(params, "sort") or "-created"
    if sort.removeprefix("-") not in JOB_ORDERS:
        raise ViewError(400, f"sort must be one of {', '.join(JOB_ORDERS)} (with '-' first for descending), "
                             f"got {validation.shown(sort)}")
    if sort.removeprefix("-") not in sortable:
        raise ViewError(400, f"sort {sort!r} needs narrower filters: no index keeps jobs in that order with these, "
                             f"and more than {SORTABLE_ROWS:,} may match; sort by {', '.join(sorted(sortable))}, "
                             f"or filter by status or queue (at most {SORTABLE_ROWS:,} jobs), or search by text")
    page = p.page(params, lambda limit, offset: queue.list_jobs(
        status=status, queue=filters["queue"], task_name=filters["task"], limit=limit, offset=offset,
        order_by=sort, id_prefix=id_prefix, text=text))
    return {**page.to_json(JobResult.summary), "filters": filters, "sort": sort,  # each job's fields and a preview
            "sortable": sorted(sortable), "text_scan": TEXT_SEARCH_ROWS if text is not None else None}


def sortable_orders(queue: Queue, status: str | None = None, queue_name: str | None = None,
                    task: str | None = None, id_prefix: str | None = None, text: str | None = None) -> set[str]:
    """The orders (``JOB_ORDERS`` keys) a job list may take with these filters: those an index keeps, or any
    while the filters leave at most SORTABLE_ROWS jobs or a text search bounds them."""
    if id_prefix is None and (text is not None or _at_most(queue, status, queue_name) <= SORTABLE_ROWS):
        return set(JOB_ORDERS)
    return indexed_orders(status, queue_name, task, id_prefix)


def _at_most(queue: Queue, status: str | None, queue_name: str | None) -> int:
    """How many jobs a status and queue filter leave at most, from the counters (a task is not counted)."""
    counts = queue.stats() if queue_name is None else queue.stats_by_queue(queue_name)
    return sum(counts.values()) if status is None else counts[STATS_KEYS[status]]


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


def cancel_jobs(queue: Queue, params: p.Params) -> Reply:
    """Cancel the jobs of ``ids`` (a JSON list, at most 500), each as ``cancel_job`` would: ``cancelled``
    counts them (running ones asked to stop are in ``cancel_requested`` too), ``refused`` says why not."""
    done, refused = each(p.ids(params), lambda job_id: cancel_job(queue, params, job_id)[1])
    return 200, {"cancelled": len(done), "cancel_requested": [job["id"] for job in done if job.get("cancel_requested")],
                 "refused": refused}


def each(ids: list[str], action: Callable[[str], dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``action`` on every id: the answers of those it did, and ``{"id", "error", ...}`` of those it refused."""
    done, refused = [], []
    for job_id in ids:
        try:
            done.append(action(job_id))
        except ViewError as exc:
            refused.append({"id": job_id, "error": exc.message, **exc.fields})
    return done, refused
