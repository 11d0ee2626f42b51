"""The JSON API under ``/api``: thin views over the public Queue methods."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from .. import validation
from ..exceptions import JobNotFoundError
from ..result import job_to_dict, why_not_cancelled
from ..storage import Status
from .http import HTTPError, Request, Response, Router, json_response
from .metrics import STAT_NAMES

if TYPE_CHECKING:
    from ..queue import Queue

MAX_LIMIT = 500
MAX_SINCE = 31 * 86400  # seconds of metrics a view may ask for (they are kept for TASKITO_METRICS_RETENTION)


def int_arg(req: Request, name: str, default: int, low: int, high: int) -> int:
    raw = req.arg(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPError(400, f"{name} must be a whole number from {low} to {high}, got {raw!r}") from None
    if not low <= value <= high:
        raise HTTPError(400, f"{name} must be from {low} to {high}, got {value}")
    return value


def _name(value: str, what: str) -> str:
    problem = validation.name_problem(value)
    if problem:
        raise HTTPError(400, f"{what} {problem}, got {validation.shown(value)}")
    return value


class Api:
    """Handlers for every ``/api`` route; ``register`` wires them into a router."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def register(self, router: Router) -> None:
        get, post = "GET", "POST"
        router.add(get, "/api/stats", self.stats)
        router.add(get, "/api/queues", self.queues)
        router.add(get, "/api/queues/(?P<name>.+)", self.queue_detail)
        router.add(post, "/api/queues/(?P<name>.+)/pause", self.pause, mutating=True)
        router.add(post, "/api/queues/(?P<name>.+)/resume", self.resume, mutating=True)
        router.add(get, "/api/jobs", self.jobs)
        router.add(get, "/api/jobs/(?P<job_id>[^/]+)", self.job)
        router.add(get, "/api/jobs/(?P<job_id>[^/]+)/logs", self.job_logs)
        router.add(post, "/api/jobs/(?P<job_id>[^/]+)/cancel", self.cancel, mutating=True)
        router.add(get, "/api/dead-letters", self.dead_letters)
        router.add(post, "/api/dead-letters/purge", self.purge_dead, mutating=True)
        router.add(post, "/api/dead-letters/(?P<job_id>[^/]+)/retry", self.retry_dead, mutating=True)
        router.add(post, "/api/dead-letters/(?P<job_id>[^/]+)/delete", self.delete_dead, mutating=True)
        router.add(get, "/api/workers", self.workers)
        router.add(get, "/api/tasks", self.tasks)
        router.add(get, "/api/throughput", self.throughput)
        router.add(get, "/api/task-series", self.task_series)
        router.add(get, "/api/schedules", self.schedules)
        router.add(get, "/api/search", self.search)

    # -- helpers -----------------------------------------------------------------------
    def _job(self, job_id: str) -> dict[str, Any]:
        found = self.queue.get_job(job_id)
        if found is None:
            raise HTTPError(404, f"no job with id {job_id!r} (purged, retried as a new job, or never enqueued)")
        return job_to_dict(self.queue, found.record)

    def _page(self, req: Request, fetch: Any) -> dict[str, Any]:
        limit = int_arg(req, "limit", 50, 1, MAX_LIMIT)
        offset = int_arg(req, "offset", 0, 0, 10**9)
        found = fetch(limit + 1, offset)  # one extra row says whether there is a next page, without a COUNT
        # summaries of the partial rows list_jobs reads: a job's arguments are never read whole here
        return {"jobs": [job.summary() for job in found[:limit]],
                "limit": limit, "offset": offset, "has_more": len(found) > limit}

    # -- reading -----------------------------------------------------------------------
    def stats(self, req: Request) -> Response:
        """Overall counts and counts per queue."""
        return json_response({"stats": self.queue.stats(), "queues": self.queue.stats_all_queues(),
                              "paused": self.queue.paused_queues()})

    def queues(self, req: Request) -> Response:
        """Every queue with jobs, every paused queue and every queue the registered tasks use; with the
        age of its oldest due job and, over the last ``since`` seconds (default 3600), its jobs' wait."""
        since = int_arg(req, "since", 3600, 60, MAX_SINCE)
        figures = self.queue.queue_stats(since=since)
        names = set(figures) | set(self.queue.default_queues())
        empty = dict.fromkeys(STAT_NAMES, 0)
        entries = []
        for name in sorted(names):
            found = figures.get(name, {})
            entries.append({"name": name, "paused": found.get("paused", False),
                            "stats": {key: found.get(key, 0) for key in empty},
                            "oldest_due_age": found.get("oldest_due_age"), "wait": found.get("wait"),
                            "completed_recently": found.get("completed", 0),
                            "failure_rate": found.get("failure_rate", 0.0)})
        return json_response({"queues": entries, "since": since})

    def queue_detail(self, req: Request, name: str) -> Response:
        name = _name(name, "queue name")
        return json_response({"name": name, "paused": name in self.queue.paused_queues(),
                              "stats": self.queue.stats_by_queue(name)})

    def jobs(self, req: Request) -> Response:
        """Newest first, filtered by ``status``, ``queue`` and ``task``; ``limit``/``offset`` paginate."""
        status = req.arg("status") or None
        try:
            status = None if status is None else Status.parse(status)
        except ValueError as exc:
            raise HTTPError(400, str(exc)) from None
        queue_name = req.arg("queue") or None
        task = req.arg("task") or None
        page = self._page(req, lambda limit, offset: self.queue.list_jobs(
            status=status, queue=queue_name, task_name=task, limit=limit, offset=offset))
        page["filters"] = {"status": status, "queue": queue_name, "task": task}
        return json_response(page)

    def job(self, req: Request, job_id: str) -> Response:
        """One job with every failed attempt's error and traceback."""
        job = self._job(job_id)
        job["errors"] = self.queue.job_errors(job_id)
        return json_response(job)

    def job_logs(self, req: Request, job_id: str) -> Response:
        """The lines the job's task logged, oldest first; ``after``: only those after that line id (the page
        polls with it while the job runs)."""
        self._job(job_id)  # 404 for an unknown id
        after = int_arg(req, "after", 0, 0, 2**62)
        return json_response({"job_id": job_id, "lines": self.queue.job_logs(job_id, after=after)})

    def dead_letters(self, req: Request) -> Response:
        return json_response(self._page(req, lambda limit, offset: self.queue.dead_letters(limit, offset)))

    def workers(self, req: Request) -> Response:
        """Live workers, each with the jobs it is running now."""
        workers = self.queue.workers()
        running: dict[str, list[dict[str, Any]]] = {}
        for job in self.queue.list_jobs(status=Status.RUNNING, limit=MAX_LIMIT):
            record = job.record
            if record.worker_id:
                running.setdefault(record.worker_id, []).append(
                    {"id": record.id, "task_name": record.task_name, "started_at": record.started_at})
        for worker in workers:
            worker["jobs"] = running.get(worker["id"], [])
        return json_response({"workers": workers, "now": time.time()})

    def tasks(self, req: Request) -> Response:
        """Task names (registered here, or seen in the last ``since`` seconds: for the task filter), and
        per task its figures over that window (``Queue.task_stats``), failing and slow ones first."""
        since = int_arg(req, "since", 3600, 60, MAX_SINCE)
        stats = self.queue.task_stats(since=since)
        ranked = sorted(stats.items(), key=lambda item: (-item[1]["failure_rate"],
                                                         -(item[1]["runtime"]["p95"] or 0), item[0]))
        return json_response({"tasks": sorted(set(self.queue.tasks) | set(stats)), "since": since,
                              "stats": [{"task_name": name, **figures} for name, figures in ranked]})

    def task_series(self, req: Request) -> Response:
        """Attempts per ``step`` seconds over the last ``since`` seconds, per task and outcome (charts of
        1 h, 24 h, 7 d): ``points`` oldest first, each ``{"t", "tasks": {name: {outcome: n}}}``."""
        since = int_arg(req, "since", 3600, 60, MAX_SINCE)
        step = int_arg(req, "step", 60, 60, 86400)
        if since // step > 2000:
            raise HTTPError(400, f"since/step gives {since // step} points; at most 2000 (take a larger step)")
        found = self.queue.task_series(since=since, step=step)
        start = (time.time() - since) // 60 * 60
        count = math.ceil((time.time() - start) / step)
        return json_response({"since": since, "step": step, "points": [
            {"t": start + index * step, "tasks": found.get(index, {})} for index in range(count)]})

    def throughput(self, req: Request) -> Response:
        """Completed jobs, dead jobs and failed attempts per ``step`` seconds over the last ``window``."""
        step = int_arg(req, "step", 10, 1, 3600)
        window = int_arg(req, "window", 600, step, 86400)
        count = min(math.ceil(window / step), 1440)
        now = time.time()
        end = (math.floor(now / step) + 1) * step  # the last bucket holds "now" and is still filling
        since = end - count * step
        found = self.queue.throughput(since, step)
        points = []
        for index in range(count):
            values = found.get(index, {})
            points.append({"t": since + index * step, "completed": values.get("completed", 0),
                           "dead": values.get("dead", 0), "failed": values.get("failed", 0)})
        return json_response({"step": step, "window": count * step, "now": now, "points": points})

    def search(self, req: Request) -> Response:
        """Jobs matching ``q``: the job with that id (empty when there is none: an answer, not an error)."""
        query = (req.arg("q") or "").strip()
        found = self.queue.get_job(query) if query else None
        return json_response({"q": query, "jobs": [] if found is None else [found.summary()]})

    def schedules(self, req: Request) -> Response:
        """The periodic schedules declared in this app (``@queue.periodic``)."""
        return json_response({"schedules": [
            {"name": spec.name, "task_name": spec.task_name, "cron": spec.cron, "timezone": spec.timezone,
             "queue": spec.queue} for spec in self.queue.periodic_tasks]})

    # -- operating -----------------------------------------------------------------------
    def pause(self, req: Request, name: str) -> Response:
        name = _name(name, "queue name")
        self.queue.pause(name)
        return json_response({"name": name, "paused": True})

    def resume(self, req: Request, name: str) -> Response:
        name = _name(name, "queue name")
        self.queue.resume(name)
        return json_response({"name": name, "paused": False})

    def cancel(self, req: Request, job_id: str) -> Response:
        self._job(job_id)  # 404 for an unknown id
        if not self.queue.cancel_job(job_id):
            found = self.queue.get_job(job_id)
            raise HTTPError(409, why_not_cancelled(job_id, None if found is None else found.record))
        return json_response({"cancelled": True, "job": self._job(job_id)})

    def retry_dead(self, req: Request, job_id: str) -> Response:
        try:
            new_id = self.queue.retry_dead(job_id)
        except JobNotFoundError:
            raise HTTPError(404, f"no dead letter with id {job_id!r} (already retried, deleted or purged)") from None
        return json_response({"retried": job_id, "new_id": new_id})

    def delete_dead(self, req: Request, job_id: str) -> Response:
        if not self.queue.delete_dead(job_id):
            raise HTTPError(404, f"no dead letter with id {job_id!r} (already retried, deleted or purged)")
        return json_response({"deleted": job_id})

    def purge_dead(self, req: Request) -> Response:
        """Delete dead letters older than ``older_than`` seconds (default 0: all of them)."""
        raw = req.json().get("older_than", req.arg("older_than"))
        try:
            older_than = 0.0 if raw in (None, "") else float(raw)
        except (TypeError, ValueError):
            raise HTTPError(400, f"older_than must be a number of seconds, got {raw!r}") from None
        try:
            older_than = validation.seconds("older_than", older_than)
        except ValueError as exc:
            raise HTTPError(400, str(exc)) from None
        return json_response({"purged": self.queue.purge_dead(older_than=older_than)})
