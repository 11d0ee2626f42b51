"""Dead-letter views: the list, replaying one or all, deleting one, purging old ones."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exceptions import JobNotFoundError
from ..storage import Status
from . import params as p
from .errors import Reply, ViewError
from .jobs import each, listing

if TYPE_CHECKING:
    from ..queue import Queue


def _not_dead(queue: Queue, job_id: str, doing: str) -> ViewError:
    """404 for a job that is gone, 409 for one that exists but is no dead letter."""
    job = queue.get_job(job_id)
    if job is None:
        return ViewError(404, f"no dead letter with id {job_id!r} (already retried, deleted or purged)")
    status = job.record.status
    return ViewError(409, f"job {job_id} is {status}, not dead: only dead letters can be {doing}", status=status)


def dead_letters(queue: Queue, params: p.Params) -> Reply:
    """Dead letters, newest first, with the filters, search and sorts of the jobs view (``jobs.listing``);
    ``limit``/``offset`` paginate."""
    return 200, listing(queue, params, Status.DEAD)


def retry_dead(queue: Queue, params: p.Params, job_id: str) -> Reply:
    """Replay a dead letter as a new pending job."""
    try:
        new_id = queue.retry_dead(job_id)
    except JobNotFoundError:
        raise _not_dead(queue, job_id, "retried") from None
    return 200, {"retried": job_id, "new_id": new_id}


def delete_dead(queue: Queue, params: p.Params, job_id: str) -> Reply:
    if not queue.delete_dead(job_id):
        raise _not_dead(queue, job_id, "deleted")
    return 200, {"deleted": job_id}


def purge_dead(queue: Queue, params: p.Params) -> Reply:
    """Delete dead letters older than ``older_than`` seconds (default 0: all of them)."""
    return 200, {"purged": queue.purge_dead(older_than=p.seconds(params, "older_than", 0.0))}


def retry_all_dead(queue: Queue, params: p.Params) -> Reply:
    """Replay every dead letter, or those of ``task`` and/or ``queue``, as new jobs."""
    task, queue_name = p.text(params, "task"), p.text(params, "queue")
    new_ids = queue.retry_all_dead(task=None if task is None else p.name(task, "task"),
                                   queue=None if queue_name is None else p.name(queue_name, "queue"))
    return 200, {"retried": len(new_ids), "new_ids": new_ids}


def retry_dead_letters(queue: Queue, params: p.Params) -> Reply:
    """Replay the dead letters of ``ids`` (a JSON list, at most 500) as new jobs, each as ``retry_dead``
    would: ``retried`` counts them, ``new_ids`` maps each to its new job, ``refused`` says why not."""
    done, refused = each(p.ids(params), lambda job_id: retry_dead(queue, params, job_id)[1])
    return 200, {"retried": len(done), "new_ids": {entry["retried"]: entry["new_id"] for entry in done},
                 "refused": refused}


def delete_dead_letters(queue: Queue, params: p.Params) -> Reply:
    """Delete the dead letters of ``ids`` (a JSON list, at most 500), each as ``delete_dead`` would:
    ``deleted`` counts them, ``refused`` says why not."""
    done, refused = each(p.ids(params), lambda job_id: delete_dead(queue, params, job_id)[1])
    return 200, {"deleted": len(done), "refused": refused}
