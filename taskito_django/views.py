"""The admin pages under ``/admin/taskito/``: built on the admin's templates, POST + CSRF actions.

Staff members with the ``taskito_django.view_taskito`` permission see the pages; acting (pause,
cancel, retry, delete, empty) needs ``taskito_django.change_taskito`` (see models.py).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any
from urllib.parse import urlencode

import django
from django.conf import settings
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.text import capfirst
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from taskito import views
from taskito.exceptions import TaskitoError
from taskito.result import job_to_dict
from taskito.storage import JOB_ORDERS, Status
from taskito.storage.base import indexed_orders

from .models import CHANGE_PERMISSION, VIEW_PERMISSION
from .project import RUNNER_NAME, admin_per_page, queue

logger = logging.getLogger("taskito.django.admin")

BULK_LIMIT = 1000  # most dead letters one bulk action touches


def can_view(request: HttpRequest) -> bool:
    """The Taskito pages: the view permission, or the change one (which implies it, as in the admin)."""
    return request.user.has_perm(VIEW_PERMISSION) or request.user.has_perm(CHANGE_PERMISSION)


def can_change(request: HttpRequest) -> bool:
    return request.user.has_perm(CHANGE_PERMISSION)


def _requires(check: Any, view: Any) -> Any:
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not check(request):
            permission = VIEW_PERMISSION if check is can_view else CHANGE_PERMISSION
            raise PermissionDenied(f"This needs the permission {permission!r}; a superuser can grant it on the "
                                   "admin's user or group page.")
        return view(request, *args, **kwargs)

    return guarded


def _when(timestamp: float | None) -> datetime | None:
    if timestamp is None:
        return None
    value = datetime.fromtimestamp(timestamp, tz=dt_timezone.utc)
    return timezone.localtime(value) if settings.USE_TZ else timezone.make_naive(value)


def _pretty(value: Any) -> str:
    try:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        return repr(value)


# Jobs of each workflow stage a job's page lists (a chord's group may have thousands).
WORKFLOW_JOBS_SHOWN = 50


def _describe(record: Any) -> dict[str, Any]:
    """A job as the templates show it: job_to_dict plus datetimes and the Django task it runs."""
    job = job_to_dict(queue, record)
    for key in ("created_at", "scheduled_at", "started_at", "finished_at", "expires_at"):
        job[key] = _when(job[key])
    job["attempts"] = record.retry_count + (1 if record.status in (Status.RUNNING, Status.COMPLETE, Status.DEAD)
                                            else 0)
    job["display_name"] = record.task_name
    job["short_id"] = f"{record.id[:6]}\u2026{record.id[-6:]}" if len(record.id) > 14 else record.id
    # Long dotted names may break after a dot, never inside a word.
    job["display_name_html"] = mark_safe("<wbr>".join(escape(part) + "." for part in job["display_name"].split("."))
                                         .removesuffix("."))
    if record.task_name == RUNNER_NAME and isinstance(job["args"], list) and job["args"]:
        job["display_name"] = f"{job['args'][0]} (Django task)"
    return job


class TaskitoAdminViews:
    """The views of one AdminSite; ``get_urls()`` goes in front of the site's own URLs."""

    def __init__(self, site: AdminSite) -> None:
        self.site = site

    # -- plumbing ---------------------------------------------------------------------------
    def get_urls(self) -> list[URLPattern]:
        def see(view: Any) -> Any:  # the admin's login and staff check, then the view permission
            return self.site.admin_view(_requires(can_view, view))

        def act(view: Any) -> Any:
            return self.site.admin_view(require_POST(_requires(can_change, view)))

        def confirm(view: Any) -> Any:  # GET: a confirmation page; POST: do it
            return self.site.admin_view(_requires(can_change, view))

        return [
            path("taskito/", see(self.overview), name="taskito_overview"),
            path("taskito/queues/", act(self.queue_action), name="taskito_queue_action"),
            path("taskito/queues/<str:name>/empty/", confirm(self.empty_queue), name="taskito_queue_empty"),
            path("taskito/jobs/", see(self.job_list), name="taskito_jobs"),
            path("taskito/jobs/<str:job_id>/", see(self.job_detail), name="taskito_job"),
            path("taskito/jobs/<str:job_id>/cancel/", act(self.cancel), name="taskito_job_cancel"),
            path("taskito/jobs/<str:job_id>/replay/", confirm(self.replay), name="taskito_job_replay"),
            path("taskito/tasks/<str:name>/revoke/", confirm(self.revoke_task), name="taskito_task_revoke"),
            path("taskito/schedules/", see(self.schedules), name="taskito_schedules"),
            path("taskito/schedules/action/", act(self.schedule_action), name="taskito_schedule_action"),
            path("taskito/dead/", see(self.dead_letters), name="taskito_dead"),
            path("taskito/dead/retry-all/", confirm(self.retry_all_dead), name="taskito_dead_retry_all"),
            path("taskito/dead/delete-all/", confirm(self.delete_all_dead), name="taskito_dead_delete_all"),
            path("taskito/dead/<str:job_id>/retry/", act(self.retry_dead), name="taskito_dead_retry"),
            path("taskito/dead/<str:job_id>/delete/", act(self.delete_dead), name="taskito_dead_delete"),
            # The dashboard checks CSRF itself (cookie + X-CSRF-Token header), as its page expects;
            # without the change permission it is read-only.
            path("taskito/dashboard/", see(csrf_exempt(self.dashboard)), name="taskito_dashboard"),
            path("taskito/dashboard/<path:rest>", see(csrf_exempt(self.dashboard)), name="taskito_dashboard_path"),
        ]

    def app_list_entry(self, request: HttpRequest) -> dict[str, Any]:
        """The "Taskito" section of the admin index and sidebar."""

        change = can_change(request)

        def link(name: str, object_name: str, url_name: str) -> dict[str, Any]:
            return {"name": name, "object_name": object_name, "admin_url": self._url(url_name), "add_url": None,
                    "view_only": not change, "perms": {"add": False, "change": change, "delete": False, "view": True}}

        return {
            "name": "Taskito", "app_label": "taskito", "app_url": self._url("taskito_overview"),
            "has_module_perms": True,
            "models": [link("Overview", "TaskitoOverview", "taskito_overview"),
                       link("Jobs", "TaskitoJob", "taskito_jobs"),
                       link("Dead letters", "TaskitoDeadLetter", "taskito_dead"),
                       link("Schedules", "TaskitoSchedule", "taskito_schedules")],
        }

    def _url(self, name: str, *args: Any, query: dict[str, Any] | None = None) -> str:
        url = reverse(f"admin:{name}", args=args, current_app=self.site.name)
        query = {key: value for key, value in (query or {}).items() if value not in (None, "")}
        return f"{url}?{urlencode(query)}" if query else url

    def _render(self, request: HttpRequest, template: str, title: str,
                crumbs: list[tuple[str, str | None]] | None = None, **context: Any) -> TemplateResponse:
        """A page on the admin's templates; ``crumbs`` follow Home > Taskito (default: the title)."""
        request.current_app = self.site.name
        return TemplateResponse(request, f"admin/taskito/{template}", {
            **self.site.each_context(request), "title": title, "subtitle": None, "can_change": can_change(request),
            "crumbs": [(title, None)] if crumbs is None else crumbs, "ol_breadcrumbs": OL_BREADCRUMBS, **context,
        })

    def _back(self, request: HttpRequest, fallback: str) -> HttpResponseRedirect:
        """Redirect to the page the form came from (same site only), else to ``fallback``."""
        target = request.POST.get("next", "")
        if target.startswith("/") and not target.startswith("//"):
            return HttpResponseRedirect(target)
        return HttpResponseRedirect(fallback)

    # -- pages ---------------------------------------------------------------------------------
    def overview(self, request: HttpRequest) -> HttpResponse:
        stats = queue.stats()
        per_queue = queue.stats_all_queues()
        paused = set(queue.paused_queues())
        names = sorted(set(per_queue) | paused | set(queue.default_queues()))
        empty = dict.fromkeys(stats, 0)
        rows = [{"name": name, "paused": name in paused, "stats": per_queue.get(name, empty)} for name in names]
        workers = queue.workers()
        for worker in workers:
            worker["started"] = _when(worker.get("started_at"))
            worker["heartbeat"] = _when(worker.get("last_heartbeat"))
        tasks = sorted(queue.task_stats(since=3600).items(),
                       key=lambda item: (-item[1]["failure_rate"], -(item[1]["runtime"]["p95"] or 0), item[0]))
        return self._render(request, "overview.html", "Taskito", [("Overview", None)], stats=stats, rows=rows,
                            statuses=_STAT_STATUS, paused=sorted(paused), workers=workers,
                            backend=queue.backend,
                            tasks=[{"name": name, "failure_percent": figures["failure_rate"] * 100, **figures}
                                   for name, figures in tasks])

    def job_list(self, request: HttpRequest) -> HttpResponse:
        search = request.GET.get("q", "").strip()
        if search:
            if queue.get_job(search) is not None:
                return HttpResponseRedirect(self._url("taskito_job", search))
            messages.warning(request, f"No job has the id {search!r}.")
        try:
            status = views.status_filter(request.GET)
        except views.ViewError as exc:  # the message names the bad value and the statuses there are
            messages.error(request, f"{capfirst(exc.message)}; showing every status.")
            status = None
        queue_name = request.GET.get("queue") or None
        task_name = request.GET.get("task") or None
        order = request.GET.get("o") or DEFAULT_ORDER
        sortable = indexed_orders(status, queue_name, task_name)  # no page sorts a million rows
        if order.removeprefix("-") not in JOB_ORDERS:
            messages.error(request, f"Cannot sort by {order!r}; showing the newest jobs first.")
            order = DEFAULT_ORDER
        elif order.removeprefix("-") not in sortable:
            messages.error(request, f"Cannot sort by {order!r} with these filters: too many jobs match; filter by "
                                    "status or queue first. Showing the newest jobs first.")
            order = DEFAULT_ORDER
        per_page = admin_per_page()
        page = _page_number(request)
        found = views.fetch_page(lambda limit, offset: queue.list_jobs(
            status=status, queue=queue_name, task_name=task_name, limit=limit, offset=offset, order_by=order),
            per_page, (page - 1) * per_page)
        filters = {"status": status, "queue": queue_name, "task": task_name}
        state = {**filters, "o": None if order == DEFAULT_ORDER else order}  # what every link keeps
        known_queues = sorted({*queue.default_queues(), *queue.paused_queues(), *([queue_name] if queue_name else [])})
        known_tasks = sorted({*queue.tasks, *([task_name] if task_name else [])})
        return self._render(
            request, "job_list.html", "Jobs", search=search,
            jobs=[_describe(job.record) for job in found.items],
            columns=self._columns(state, order, sortable),
            filter_groups=[
                self._filter_group("status", "By status", Status.ALL, state),
                self._filter_group("queue", "By queue", known_queues, state),
                self._filter_group("task", "By task", known_tasks, state),
            ],
            has_filters=any(filters.values()), clear_url=self._url("taskito_jobs", query={"o": state["o"]}),
            page=page, per_page=per_page,
            previous_url=self._url("taskito_jobs", query={**state, "p": page - 1}) if page > 1 else None,
            next_url=self._url("taskito_jobs", query={**state, "p": page + 1}) if found.has_more else None,
        )

    def _columns(self, state: dict[str, Any] | None = None, order: str | None = None,
                 sortable: set[str] | None = None) -> list[dict[str, Any]]:
        """The job tables' headers; with ``state``, those the database can sort by with these filters
        (``sortable``) link to that order (a first click sorts ascending, a second descending; newest first is
        the default)."""
        columns = []
        for label, field, key in _COLUMNS:
            column: dict[str, Any] = {"label": label, "field": field, "url": None, "sorted": None}
            if state is not None and key is not None and key in (sortable or ()):
                current = order.removeprefix("-") == key if order else False
                ascending = current and order == key
                column["sorted"] = ("ascending" if ascending else "descending") if current else None
                column["url"] = self._url("taskito_jobs", query={**state, "o": f"-{key}" if ascending else key,
                                                                 "p": None})
            columns.append(column)
        return columns

    def _filter_group(self, key: str, title: str, choices: Any, state: dict[str, Any]) -> dict[str, Any]:
        links = [{"label": "All", "selected": state[key] is None,
                  "url": self._url("taskito_jobs", query={**state, key: None})}]
        links += [{"label": choice, "selected": state[key] == choice,
                   "url": self._url("taskito_jobs", query={**state, key: choice})} for choice in choices]
        return {"title": title, "links": links}

    def job_detail(self, request: HttpRequest, job_id: str) -> HttpResponse:
        found = queue.get_job(job_id)
        if found is None:
            raise Http404(f"No job has the id {job_id!r} (it may have been purged).")
        record = found.record
        job = _describe(record)
        errors = queue.job_errors(job_id)
        for error in errors:
            error["failed"] = _when(error.get("failed_at"))
        waited = ran = None
        if record.started_at is not None:
            waited = max(record.started_at - record.scheduled_at, 0.0)
            ran = (record.finished_at or 0) - record.started_at if record.finished_at else None
        workflow = queue.get_workflow(record.workflow_id) if record.workflow_id else None
        logs = queue.job_logs(job_id)
        for line in logs:
            line["logged"] = _when(line["time"])
            line["extra_json"] = json.dumps(line["extra"], ensure_ascii=False, default=str) if line["extra"] else ""
        return self._render(
            request, "job_detail.html", f"Job {job_id}", [("Jobs", self._url("taskito_jobs")), (job_id, None)],
            job=job, errors=errors, logs=logs, log_limit=queue.max_log_lines,
            workflow=None if workflow is None else workflow.to_dict(per_stage=WORKFLOW_JOBS_SHOWN),
            args_json=_pretty(job["args"]), kwargs_json=_pretty(job["kwargs"]), result_json=_pretty(job["result"]),
            waited=waited, ran=ran,
            # A waiting job is cancelled at once, a held (claimed or running) one is asked to stop.
            can_cancel=views.can_cancel(record), is_dead=views.can_retry(record),
            cancel_requested=record.cancel_requested and not record.finished, is_finished=views.can_replay(record),
        )

    def dead_letters(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST":
            return _requires(can_change, self._bulk_dead)(request)
        per_page = admin_per_page()
        page = _page_number(request)
        found = views.fetch_page(lambda limit, offset: queue.dead_letters(limit=limit, offset=offset),
                                 per_page, (page - 1) * per_page)
        return self._render(
            request, "dead_letters.html", "Dead letters", jobs=[_describe(job.record) for job in found.items],
            columns=self._columns(),
            page=page,
            previous_url=self._url("taskito_dead", query={"p": page - 1}) if page > 1 else None,
            next_url=self._url("taskito_dead", query={"p": page + 1}) if found.has_more else None,
        )

    # -- actions (POST only; the admin's CSRF protection applies) --------------------------------
    def queue_action(self, request: HttpRequest) -> HttpResponse:
        name = request.POST.get("queue", "").strip()
        action = request.POST.get("action")
        if not name or action not in ("pause", "resume"):
            messages.error(request, "Choose a queue and an action (pause or resume).")
        elif action == "pause":
            queue.pause(name)
            messages.success(request, f"Queue {name!r} is paused: workers claim none of its jobs until resumed.")
        else:
            queue.resume(name)
            messages.success(request, f"Queue {name!r} is resumed.")
        return self._back(request, self._url("taskito_overview"))

    def cancel(self, request: HttpRequest, job_id: str) -> HttpResponse:
        if queue.get_job(job_id) is None:  # its page would be a 404: say so on the job list instead
            messages.error(request, f"No job has the id {job_id} (it may have been purged).")
            return HttpResponseRedirect(self._url("taskito_jobs"))
        if queue.cancel_job(job_id):
            found = queue.get_job(job_id)
            if found is None or found.status == "cancelled":
                messages.success(request, f"Job {job_id} is cancelled (and so are the jobs that depend on it).")
            else:
                messages.success(request, f"Cancellation of job {job_id} requested: its worker stops it within "
                                          "about a second, and the job then ends cancelled.")
        else:
            found = queue.get_job(job_id)
            reason = views.why_not_cancelled(job_id, None if found is None else found.record)
            messages.error(request, f"Not cancelled: {reason}.")
        return self._back(request, self._url("taskito_job", job_id))

    def retry_dead(self, request: HttpRequest, job_id: str) -> HttpResponse:
        try:
            new_id = queue.retry_dead(job_id)
        except TaskitoError as exc:
            messages.error(request, f"Not retried: {exc}.")
            return self._back(request, self._url("taskito_dead"))
        messages.success(request, f"Dead letter {job_id} is replayed as the new job {new_id}.")
        return HttpResponseRedirect(self._url("taskito_job", new_id))

    def delete_dead(self, request: HttpRequest, job_id: str) -> HttpResponse:
        if queue.delete_dead(job_id):
            messages.success(request, f"Dead letter {job_id} is deleted.")
        else:
            messages.error(request, f"Not deleted: {job_id} is not a dead letter.")
        return self._back(request, self._url("taskito_dead"))

    def _bulk_dead(self, request: HttpRequest) -> HttpResponse:
        action = request.POST.get("action")
        selected = request.POST.getlist("_selected_action")[:BULK_LIMIT]
        if action not in ("retry", "delete"):
            messages.error(request, "Choose an action: retry or delete the selected dead letters.")
        elif not selected:
            messages.warning(request, "Select at least one dead letter first.")
        elif action == "retry":
            done = 0
            for job_id in selected:
                try:
                    queue.retry_dead(job_id)
                    done += 1
                except TaskitoError:
                    pass  # retried or deleted meanwhile
            messages.success(request, f"Replayed {done} of {len(selected)} selected dead letter(s) as new jobs.")
        else:
            done = sum(1 for job_id in selected if queue.delete_dead(job_id))
            messages.success(request, f"Deleted {done} of {len(selected)} selected dead letter(s).")
        return self._back(request, self._url("taskito_dead"))

    # -- actions on everything, each behind a confirmation page (GET) -------------------------------
    def _confirm(self, request: HttpRequest, title: str, question: str, consequences: list[str],
                 button: str, parent: str, back: str, jobs: list[Any]) -> TemplateResponse:
        return self._render(request, "confirm.html", title, [(parent, back), (title, None)], question=question,
                            consequences=consequences,
                            button=button, back_url=back, jobs=[_describe(record) for record in jobs])

    def retry_all_dead(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            total = queue.stats()["dead"]
            return self._confirm(
                request, "Retry all dead letters", f"Replay all {total} dead letter(s) as new jobs?",
                ["Each one is enqueued again as a new pending job and leaves the dead letters.",
                 "Workers run them as soon as they are free."],
                "Yes, retry them all", "Dead letters", self._url("taskito_dead"),
                [job.record for job in queue.dead_letters(limit=10)])
        done = len(queue.retry_all_dead())
        messages.success(request, f"Replayed {done} dead letter(s) as new jobs.")
        return HttpResponseRedirect(self._url("taskito_dead"))

    def delete_all_dead(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            total = queue.stats()["dead"]
            return self._confirm(
                request, "Delete all dead letters", f"Delete all {total} dead letter(s)?",
                ["Their arguments and error histories are gone for good; none of them runs again."],
                "Yes, delete them all", "Dead letters", self._url("taskito_dead"),
                [job.record for job in queue.dead_letters(limit=10)])
        deleted = queue.purge_dead(older_than=0)
        messages.success(request, f"Deleted {deleted} dead letter(s).")
        return HttpResponseRedirect(self._url("taskito_dead"))

    def empty_queue(self, request: HttpRequest, name: str) -> HttpResponse:
        waiting = views.WAITING  # the statuses purge_queue cancels
        if request.method != "POST":
            counts = queue.stats_by_queue(name)
            total = counts["pending"] + counts["failed"]
            return self._confirm(
                request, f"Empty queue {name}", f"Cancel all {total} waiting job(s) of the queue {name}?",
                ["Pending jobs and jobs waiting for a retry are cancelled (and so are jobs that depend on them); "
                 "they stay listed as cancelled until purged.",
                 "Jobs already running finish; jobs enqueued from now on run as usual."],
                "Yes, empty the queue", "Overview", self._url("taskito_overview"),
                [job.record for status in waiting for job in queue.list_jobs(status=status, queue=name, limit=10)])
        cancelled = queue.purge_queue(name)
        messages.success(request, f"Queue {name} is empty: {cancelled} waiting job(s) cancelled.")
        return HttpResponseRedirect(self._url("taskito_overview"))

    def revoke_task(self, request: HttpRequest, name: str) -> HttpResponse:
        waiting = views.WAITING  # the statuses revoke_task cancels
        if request.method != "POST":
            return self._confirm(
                request, f"Revoke task {name}", f"Cancel every waiting job of the task {name}?",
                ["Pending jobs and jobs waiting for a retry are cancelled (and so are jobs that depend on them).",
                 "Jobs already running finish; jobs of this task enqueued from now on run as usual."],
                "Yes, revoke them", "Jobs", self._url("taskito_jobs", query={"task": name}),
                [job.record for status in waiting for job in queue.list_jobs(status=status, task_name=name, limit=10)])
        try:
            cancelled = queue.revoke_task(name)
        except TaskitoError as exc:
            messages.error(request, f"Not revoked: {exc}.")
            return HttpResponseRedirect(self._url("taskito_jobs"))
        messages.success(request, f"Task {name}: {cancelled} waiting job(s) cancelled.")
        return HttpResponseRedirect(self._url("taskito_jobs", query={"task": name}))

    def replay(self, request: HttpRequest, job_id: str) -> HttpResponse:
        found = queue.get_job(job_id)
        if found is None:
            raise Http404(f"No job has the id {job_id!r} (it may have been purged).")
        if request.method != "POST":
            return self._confirm(
                request, f"Replay job {job_id}", f"Enqueue job {job_id} again as a new job?",
                ["A new pending job runs the same task with the same arguments and options.",
                 "This job stays as it is."],
                "Yes, replay it", "Jobs", self._url("taskito_job", job_id), [found.record])
        try:
            fresh = queue.replay(job_id)
        except TaskitoError as exc:
            messages.error(request, f"Not replayed: {exc}.")
            return HttpResponseRedirect(self._url("taskito_job", job_id))
        messages.success(request, f"Job {job_id} replayed as {fresh.id}.")
        return HttpResponseRedirect(self._url("taskito_job", fresh.id))

    # -- schedules -------------------------------------------------------------------------------
    def schedules(self, request: HttpRequest) -> HttpResponse:
        rows = [{**item, "last": _when(item["last_run"]), "next": _when(item["next_run"])}
                for item in queue.periodic_schedules()]
        return self._render(request, "schedules.html", "Schedules", schedules=rows)

    def schedule_action(self, request: HttpRequest) -> HttpResponse:
        name = request.POST.get("schedule", "")
        action = request.POST.get("action", "")
        actions = {"pause": queue.pause_periodic, "resume": queue.resume_periodic, "run": queue.run_periodic_now}
        if action not in actions:
            messages.error(request, f"Unknown action {action!r}: use pause, resume or run.")
            return HttpResponseRedirect(self._url("taskito_schedules"))
        try:
            done = actions[action](name)
        except TaskitoError as exc:
            messages.error(request, f"Not done: {exc}.")
            return HttpResponseRedirect(self._url("taskito_schedules"))
        text = {"pause": f"Schedule {name} is paused on every worker until resumed.",
                "resume": f"Schedule {name} is active again from its next tick.",
                "run": f"Schedule {name} enqueued job {getattr(done, 'id', '')} now."}[action]
        messages.success(request, text)
        return HttpResponseRedirect(self._url("taskito_schedules"))

    # -- the web dashboard, mounted inside the admin ---------------------------------------------
    def dashboard(self, request: HttpRequest, rest: str = "") -> HttpResponse:
        from .dashboard import serve_dashboard

        prefix = self._url("taskito_dashboard")
        return serve_dashboard(request, prefix, read_only=not can_change(request))


# Django 6's admin marks breadcrumbs up as a list (<ol class="breadcrumbs">); earlier ones as a <div>.
OL_BREADCRUMBS = django.VERSION >= (6, 0)
DEFAULT_ORDER = "-created"
# The job tables' columns: header, CSS field name, and the list_jobs order_by key that sorts by it.
_COLUMNS = [("Job", "id", None), ("Task", "task", "task"), ("Queue", "queue", "queue"), ("Status", "status", "status"),
            ("Attempts", "attempts", None), ("Created", "created", "created"), ("Finished", "finished", None),
            ("Last error", "error", None)]

# The six counts as stats() names them, with the status each links to in the job list.
_STAT_STATUS = [("pending", Status.PENDING), ("running", Status.RUNNING), ("completed", Status.COMPLETE),
                ("failed", Status.FAILED), ("dead", Status.DEAD), ("cancelled", Status.CANCELLED)]


def _page_number(request: HttpRequest) -> int:
    try:
        return max(int(request.GET.get("p", "1")), 1)
    except ValueError:
        return 1
