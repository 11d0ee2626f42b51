"""What a user may do to a job, decided once for the dashboard, the Flask and FastAPI endpoints and the admin.

The storage engines apply the same rule atomically when they cancel or replay; these functions
say beforehand which buttons to offer and afterwards why a request was refused.
"""

from __future__ import annotations

from ..storage import JobRecord, Status

# A failed job is waiting for its retry: like a pending one, it has not run (again) yet.
WAITING = (Status.PENDING, Status.FAILED)


def can_cancel(record: JobRecord) -> bool:
    """Pending or waiting for a retry, and held by no worker (a claimed job is about to start)."""
    return record.status in WAITING and not record.worker_id


def can_retry(record: JobRecord) -> bool:
    """Only dead letters are replayed (as new jobs); they are also the only jobs one may delete."""
    return record.status == Status.DEAD


def why_not_cancelled(job_id: str, record: JobRecord | None) -> str:
    """What to tell a user whose cancel was refused, from the job as it is now.

    A pending job a worker has claimed is about to start there: it can no longer be cancelled,
    and saying only "pending" would contradict the refusal.
    """
    if record is None:
        return f"job {job_id} no longer exists (it was purged)"
    if record.status == Status.PENDING and record.worker_id:
        return (f"job {job_id} is pending, but worker {record.worker_id} has claimed it and is about to start it: "
                "only a job no worker holds can be cancelled")
    return f"job {job_id} is {record.status}: only a pending job (or one waiting for its retry) can be cancelled"
