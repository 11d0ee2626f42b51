"""The table of views every adapter serves: method, path and the function that answers."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..exceptions import InvalidValueError
from . import cluster, dead, jobs, queues, schedules, workflows
from .errors import Reply, ViewError
from .params import Params

if TYPE_CHECKING:
    from ..queue import Queue

_PARAM = re.compile(r"\{(\w+)(:path)?\}")


@dataclass(frozen=True)
class View:
    """One endpoint: ``handler(queue, params, **path_params) -> (status, body)``.

    ``path`` is relative to the adapter's prefix; ``{name}`` is one path segment and ``{name:path}``
    may hold slashes (queue names can). ``params`` are the query string's values, joined by the keys
    of the request's JSON body when ``body`` is set (other views never read a body). POST views change
    the queue: adapters refuse them when read-only or cross-site.
    """

    method: str
    path: str
    handler: Callable[..., Reply]
    summary: str
    body: bool = False

    @property
    def name(self) -> str:
        return self.handler.__name__

    @property
    def changes(self) -> bool:
        return self.method == "POST"

    def path_as(self, segment: str, path: str) -> str:
        """The path in an adapter's own syntax: ``segment`` and ``path`` are templates of one
        ``{}`` (the parameter's name), e.g. ``"<{}>"`` and ``"<path:{}>"`` for Flask."""
        return _PARAM.sub(lambda m: (path if m.group(2) else segment).format(m.group(1)), self.path)


VIEWS: tuple[View, ...] = (
    View("GET", "/stats/queues", queues.stats_by_queue, "Job counts per queue, and the paused queues"),
    View("GET", "/queues", queues.queues, "Every known queue with its counts and whether it is paused"),
    View("GET", "/queues/{name:path}", queues.queue_detail, "One queue's counts and whether it is paused"),
    View("POST", "/queues/{name:path}/pause", queues.pause, "Pause a queue: workers claim none of its jobs"),
    View("POST", "/queues/{name:path}/resume", queues.resume, "Resume a paused queue"),
    View("POST", "/queues/{name:path}/purge", queues.purge_queue, "Cancel every waiting job of a queue"),
    View("GET", "/jobs", jobs.list_jobs,
         "Jobs newest first, filtered by status, queue and task, found by id prefix or text, sorted by sort"),
    View("POST", "/jobs/cancel", jobs.cancel_jobs, "Cancel the jobs of ids (a JSON list), saying which were refused",
         body=True),
    View("GET", "/jobs/{job_id}", jobs.job_detail, "One job with its error history"),
    View("GET", "/jobs/{job_id}/result", jobs.job_result, "Status, and the result once complete (never waits)"),
    View("GET", "/jobs/{job_id}/logs", jobs.job_logs, "The job's log lines, oldest first"),
    View("GET", "/search", jobs.search, "The job with the id q, if any"),
    View("POST", "/jobs/{job_id}/cancel", jobs.cancel_job,
         "Cancel a waiting job, or ask the worker running one to stop it"),
    View("POST", "/jobs/{job_id}/replay", jobs.replay, "Enqueue a finished job again as a new job"),
    View("GET", "/dead-letters", dead.dead_letters,
         "Dead letters, newest first, with the jobs view's search and sorts"),
    View("POST", "/dead-letters/retry", dead.retry_dead_letters,
         "Replay the dead letters of ids (a JSON list) as new jobs, saying which were refused", body=True),
    View("POST", "/dead-letters/delete", dead.delete_dead_letters,
         "Delete the dead letters of ids (a JSON list), saying which were refused", body=True),
    View("POST", "/dead-letters/purge", dead.purge_dead, "Delete dead letters older than older_than seconds",
         body=True),
    View("POST", "/dead-letters/retry-all", dead.retry_all_dead, "Replay every dead letter (of task, of queue)",
         body=True),
    View("POST", "/dead-letters/{job_id}/retry", dead.retry_dead, "Replay a dead letter as a new job"),
    View("POST", "/dead-letters/{job_id}/delete", dead.delete_dead, "Delete a dead letter"),
    View("GET", "/workflows", workflows.workflows, "Workflows newest first, each with its progress"),
    View("GET", "/workflows/{workflow_id}", workflows.workflow_detail,
         "A workflow and its steps in order, each with its status and job id"),
    View("GET", "/workers", cluster.workers, "Live workers from their heartbeats, with the jobs each runs now"),
    View("GET", "/tasks", cluster.tasks, "Per task: outcomes, failure rate, run and wait times; failing first"),
    View("GET", "/task-series", cluster.task_series, "Attempts per task and outcome over time"),
    View("POST", "/tasks/{name:path}/revoke", cluster.revoke_task, "Cancel every waiting job of a task"),
    View("GET", "/schedules", schedules.schedules, "Periodic schedules with their last and next run"),
    View("POST", "/schedules/{name:path}/pause", schedules.pause_schedule, "Pause a periodic schedule everywhere"),
    View("POST", "/schedules/{name:path}/resume", schedules.resume_schedule, "Resume a paused periodic schedule"),
    View("POST", "/schedules/{name:path}/run", schedules.run_schedule, "Enqueue one job of a schedule now"),
    View("GET", "/throughput", cluster.throughput, "Completions, deaths and failed attempts over time"),
)


def call(view: View, queue: Queue, params: Params, **path_params: str) -> Reply:
    """Answer one request: bad input becomes its 400 (or 404, 409) in the one error shape.

    Anything else (a database that does not answer, a bug) is left to the adapter, so that each
    answers it the way its framework does (503 or 500, logged, no details to the caller).
    """
    for value in path_params.values():
        if "\x00" in value:  # ids and names are PostgreSQL text, which cannot hold it
            return ViewError(400, "the path must not contain a NUL character").reply
    try:
        return view.handler(queue, params, **path_params)
    except ViewError as exc:
        return exc.reply
    except InvalidValueError as exc:
        return ViewError(400, str(exc)).reply
