"""What a user may do to a job, decided once for the dashboard, the Flask and FastAPI endpoints and the admin.

The storage engines apply the same rule atomically when they cancel or replay; these functions
say beforehand which buttons to offer and afterwards why a request was refused.
"""

from __future__ import annotations

from ..storage import JobRecord, Status

# A failed job is waiting for its retry: like a pending one, it has not run (again) yet.
WAITING = (Status.PENDING, Status.FAILED)


def can_cancel(record: JobRecord) -> bool:
    """Any job that has not finished and whose cancellation was not asked for yet: a waiting one is
    cancelled at once, a claimed or running one is asked to stop (its worker stops it)."""
    return not record.finished and not record.cancel_requested


def can_retry(record: JobRecord) -> bool:
    """Only dead letters are replayed (as new jobs); they are also the only jobs one may delete."""
    return record.status == Status.DEAD


def can_replay(record: JobRecord) -> bool:
    """A finished job (complete, dead or cancelled) may be enqueued again as a new job."""
    return record.finished


def why_not_cancelled(job_id: str, record: JobRecord | None) -> str:
    """What to tell a user whose cancel was refused, from the job as it is now: it finished (or is gone)."""
    if record is None:
        return f"job {job_id} no longer exists (it was purged)"
    return f"job {job_id} is {record.status} already: only a job that has not finished can be cancelled"
