"""The admin pages through the test client: what staff see and can do, and that nobody else can."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from django.test import Client

from taskito.storage import Completion, Started
from taskito_django import queue
from tests.django.conftest import finish_all

pytestmark = pytest.mark.django_db

PAGES = ["/admin/taskito/", "/admin/taskito/jobs/", "/admin/taskito/dead/", "/admin/taskito/jobs/abc/",
         "/admin/taskito/dashboard/", "/custom-admin/taskito/", "/ops/taskito/"]


@pytest.fixture
def staff(django_user_model: Any) -> Any:
    """A staff member granted both Taskito permissions (see test_django_admin_permissions.py for the rest)."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="taskito_django"))
    return user


@pytest.fixture
def staff_client(staff: Any) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def dead_letter(message: str = "boom") -> str:
    """A dead letter, in a queue of its own so that other pending jobs stay pending."""
    queue.enqueue("djapp.tasks.explode", args=(message,), queue="graveyard")
    return finish_all(error=f"ValueError: {message}", queues=["graveyard"])[0]


# -- who gets in ---------------------------------------------------------------------------------
@pytest.mark.parametrize("url", PAGES)
def test_anonymous_users_are_sent_to_the_admin_login(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert "/login/?next=" in response["Location"]


def test_logged_in_non_staff_users_are_refused_too(client: Client, django_user_model: Any) -> None:
    client.force_login(django_user_model.objects.create_user("visitor", password="pw"))
    for url in PAGES:
        assert client.get(url).status_code == 302, url


def test_anonymous_actions_change_nothing(client: Client) -> None:
    job = queue.enqueue("djapp.tasks.add", args=(1, 2))
    dead_id = dead_letter()
    posts = [f"/admin/taskito/jobs/{job.id}/cancel/", f"/admin/taskito/dead/{dead_id}/retry/",
             f"/admin/taskito/dead/{dead_id}/delete/", "/admin/taskito/dead/"]
    for url in posts:
        assert client.post(url, {"action": "delete", "_selected_action": [dead_id]}).status_code == 302
    assert client.post("/admin/taskito/queues/", {"queue": "default", "action": "pause"}).status_code == 302
    assert job.status == "pending"
    assert queue.get_job(dead_id).status == "dead"
    assert queue.paused_queues() == []


@pytest.mark.parametrize("url", PAGES[:5])
def test_staff_members_see_every_page(staff_client: Client, url: str) -> None:
    job = queue.enqueue("djapp.tasks.add", args=(1, 2))
    response = staff_client.get(url.replace("/abc/", f"/{job.id}/"))
    assert response.status_code == 200, url


# -- the admin index and the overview ----------------------------------------------------------------
def test_admin_index_and_sidebar_link_the_taskito_pages(staff_client: Client) -> None:
    page = text(staff_client.get("/admin/"))
    assert 'class="app-taskito module' in page
    for href, label in (("/admin/taskito/", "Overview"), ("/admin/taskito/jobs/", "Jobs"),
                        ("/admin/taskito/dead/", "Dead letters")):
        assert f'<a href="{href}"' in page and label in page
    sidebar = text(staff_client.get("/admin/taskito/jobs/"))
    assert 'id="nav-sidebar"' in sidebar and 'href="/admin/taskito/dead/"' in sidebar


def test_overview_shows_counts_per_queue_paused_queues_and_workers(staff_client: Client) -> None:
    page = text(staff_client.get("/admin/taskito/"))
    assert "No worker is running" in page
    for n in range(3):
        queue.enqueue("djapp.tasks.add", args=(n, n))
    queue.enqueue("djapp.tasks.report", args=("r",))
    finish_all()  # all four complete
    queue.enqueue("djapp.tasks.add", args=(5, 5))
    dead_letter()
    queue.pause("reports")
    queue.storage.register_worker("host-1-abc", {"hostname": "host", "pid": 1, "queues": ["default"],
                                                 "concurrency": 4})
    page = text(staff_client.get("/admin/taskito/"))
    assert "Paused queues: reports." in page
    assert "Live workers (1)" in page and "host-1-abc" in page
    default_row = re.search(r'data-queue="default">(.*?)</tr>', page).group(1)  # type: ignore[union-attr]
    counts = re.findall(r'<td class="num"><a [^>]*>(\d+)</a></td>', default_row)
    assert counts == ["1", "0", "3", "0", "0", "0"]  # pending running completed failed dead cancelled
    graveyard_row = re.search(r'data-queue="graveyard">(.*?)</tr>', page).group(1)  # type: ignore[union-attr]
    assert re.findall(r'<td class="num"><a [^>]*>(\d+)</a></td>', graveyard_row) == ["0", "0", "0", "0", "1", "0"]
    reports_row = re.search(r'data-queue="reports">(.*?)</tr>', page).group(1)  # type: ignore[union-attr]
    assert "<strong>paused</strong>" in reports_row and 'value="resume"' in reports_row
    assert 'href="/admin/taskito/jobs/?queue=default&amp;status=complete"' in page


def test_overview_reads_the_counts_once(staff_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    stats = queue.storage.stats
    monkeypatch.setattr(queue.storage, "stats", lambda *args, **kwargs: calls.append(args) or stats(*args, **kwargs))
    assert staff_client.get("/admin/taskito/").status_code == 200
    assert len(calls) == 1


def test_pause_and_resume_a_queue(staff_client: Client) -> None:
    response = staff_client.post("/admin/taskito/queues/", {"queue": "reports", "action": "pause"}, follow=True)
    assert queue.paused_queues() == ["reports"]
    assert "Queue &#x27;reports&#x27; is paused" in text(response)
    staff_client.post("/admin/taskito/queues/", {"queue": "reports", "action": "resume"})
    assert queue.paused_queues() == []
    response = staff_client.post("/admin/taskito/queues/", {"queue": "", "action": "pause"}, follow=True)
    assert "Choose a queue" in text(response)


# -- the job list ----------------------------------------------------------------------------------
def test_job_list_filters_by_status_queue_and_task(staff_client: Client) -> None:
    add = queue.enqueue("djapp.tasks.add", args=(1, 2))
    report = queue.enqueue("djapp.tasks.report", args=("r",))
    dead_id = dead_letter()
    everything = text(staff_client.get("/admin/taskito/jobs/"))
    assert all(job_id in everything for job_id in (add.id, report.id, dead_id))
    by_status = text(staff_client.get("/admin/taskito/jobs/", {"status": "dead"}))
    assert dead_id in by_status and add.id not in by_status
    by_queue = text(staff_client.get("/admin/taskito/jobs/", {"queue": "reports"}))
    assert report.id in by_queue and add.id not in by_queue
    by_task = text(staff_client.get("/admin/taskito/jobs/", {"task": "djapp.tasks.add", "status": "pending"}))
    assert add.id in by_task and report.id not in by_task and dead_id not in by_task
    assert '<li class="selected"><a href="/admin/taskito/jobs/?status=pending">djapp.tasks.add</a>' not in by_task
    assert "Clear all filters" in by_task
    assert "Unknown status" in text(staff_client.get("/admin/taskito/jobs/", {"status": "weird"}))


def test_job_list_sorts_only_in_orders_an_index_keeps(staff_client: Client) -> None:
    """With a filter, the other columns' orders would sort every matching job: no link, and a refusal."""
    first, second = (queue.enqueue("djapp.tasks.report", args=(n,)).id for n in "ab")
    plain = text(staff_client.get("/admin/taskito/jobs/"))
    assert 'href="/admin/taskito/jobs/?o=task"' in plain and 'href="/admin/taskito/jobs/?o=status"' in plain
    filtered = text(staff_client.get("/admin/taskito/jobs/", {"status": "pending"}))
    assert "o=task" not in filtered and 'href="/admin/taskito/jobs/?status=pending&amp;o=status"' in filtered
    refused = text(staff_client.get("/admin/taskito/jobs/", {"status": "pending", "o": "task"}))
    assert "Cannot sort by &#x27;task&#x27; with these filters" in refused
    assert refused.index(second) < refused.index(first)  # newest first instead


def test_job_list_search_by_id(staff_client: Client) -> None:
    job = queue.enqueue("djapp.tasks.add", args=(1, 2))
    response = staff_client.get("/admin/taskito/jobs/", {"q": job.id})
    assert response.status_code == 302 and response["Location"] == f"/admin/taskito/jobs/{job.id}/"
    assert "No job has the id &#x27;missing&#x27;" in text(staff_client.get("/admin/taskito/jobs/", {"q": "missing"}))


def test_job_list_pages_without_counting_the_table(staff_client: Client, settings: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    settings.TASKITO_ADMIN_PER_PAGE = 2
    ids = [queue.enqueue("djapp.tasks.add", args=(n, n)).id for n in range(5)]  # newest is listed first

    def no_counting(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the job list must not count jobs")

    monkeypatch.setattr(queue.storage, "stats", no_counting)
    monkeypatch.setattr(queue.storage, "stats_all_queues", no_counting)
    pages = [text(staff_client.get("/admin/taskito/jobs/", {"p": p})) for p in (1, 2, 3)]
    assert [sum(job_id in page for job_id in ids) for page in pages] == [2, 2, 1]
    assert ids[4] in pages[0] and ids[0] in pages[2]
    assert 'rel="next"' in pages[0] and 'rel="prev"' not in pages[0]
    assert 'rel="next"' in pages[1] and 'rel="prev"' in pages[1]
    assert 'rel="next"' not in pages[2]
    filtered = text(staff_client.get("/admin/taskito/jobs/", {"p": 1, "status": "pending"}))
    assert 'href="/admin/taskito/jobs/?status=pending&amp;p=2" rel="next"' in filtered


# -- the job detail ----------------------------------------------------------------------------------
def test_job_detail_shows_arguments_result_and_timings(staff_client: Client) -> None:
    job = queue.enqueue("djapp.tasks.report", args=("weekly",), kwargs={}, priority=4)
    finish_all()
    page = text(staff_client.get(f"/admin/taskito/jobs/{job.id}/"))
    assert "djapp.tasks.report" in page and "reports" in page
    assert '<pre class="taskito-pre" id="taskito-args">[ &quot;weekly&quot; ]</pre>' in page
    assert '<pre class="taskito-pre" id="taskito-result">&quot;done&quot;</pre>' in page
    assert "<th scope=\"row\">Priority</th><td>4</td>" in page
    assert re.search(r"<th scope=\"row\">Started</th><td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</td>", page)
    assert "<th scope=\"row\">Ran</th>" in page and "No failed attempt." in page


def test_job_detail_shows_the_error_history_with_tracebacks(staff_client: Client) -> None:
    dead_id = dead_letter("kaput")
    page = text(staff_client.get(f"/admin/taskito/jobs/{dead_id}/"))
    assert "Error history (1)" in page
    assert "<strong>ValueError: kaput</strong>" in page and "Traceback (most recent call last):" in page
    assert 'id="taskito-retry"' in page and 'id="taskito-cancel"' not in page


def test_job_detail_shows_the_job_s_log_lines_and_the_overview_its_task_metrics(staff_client: Client) -> None:
    job = queue.enqueue("djapp.tasks.report", args=("monthly",))
    page = text(staff_client.get(f"/admin/taskito/jobs/{job.id}/"))
    assert "Logs (0)" in page and "The task logged nothing" in page
    assert 'http-equiv="refresh"' not in page  # pending: nothing to follow yet
    [record] = queue.storage.claim("test-hand", ["reports"], 1, 30)
    queue.storage.start([Started(record.id, record.attempt, time.time())])
    running = text(staff_client.get(f"/admin/taskito/jobs/{job.id}/"))
    assert '<meta http-equiv="refresh" content="5">' in running and 'id="taskito-logs-live"' in running
    now = time.time()
    queue.storage.add_job_log(job.id, now, "warning", "almost <done>", '{"rows": 3}', 1000)
    queue.storage.add_job_log(job.id, now + 1, "info", "done", None, 1000)
    queue.storage.complete([Completion(record.id, record.attempt, b'"done"', started_at=now, finished_at=now + 1)])
    page = text(staff_client.get(f"/admin/taskito/jobs/{job.id}/"))
    assert "Logs (2)" in page and 'http-equiv="refresh"' not in page
    assert re.search(r'<tr class="taskito-log taskito-log-warning"><td>\d{4}-[^<]*</td><td>warning</td> '
                     r'<td>almost &lt;done&gt; <code>{&quot;rows&quot;: 3}</code></td></tr>', page)
    assert page.index("almost &lt;done&gt;") < page.index("<td>done</td>")  # oldest first
    overview = text(staff_client.get("/admin/taskito/"))
    assert re.search(r'<tr class="taskito-task" data-task="djapp.tasks.report">.*?<td class="num">1</td>', overview)


def test_job_detail_shows_its_workflow_with_every_step_linked(staff_client: Client) -> None:
    from taskito import chord

    add = queue.tasks["djapp.tasks.add"]
    workflow = chord([add.s(1, 2), add.s(3, 4)], add.s(10), on_error=add.si(0, 0)).delay()
    first, second, callback = workflow.jobs
    page = text(staff_client.get(f"/admin/taskito/jobs/{second.id}/"))
    assert f"Workflow (chord) {workflow.id}: " in page and "taskito-status-pending\">pending</span>" in page
    assert page.count('class="taskito-workflow-stage"') == 2  # the error callback is not a job until needed
    assert f'<a href="/admin/taskito/jobs/{second.id}/"><strong>this job</strong></a>' in page
    for other in (first, callback):
        assert f'<a href="/admin/taskito/jobs/{other.id}/">djapp.tasks.add</a>' in page
    assert "(group of 2)" in page
    plain = queue.enqueue("djapp.tasks.add", args=(1, 2))
    assert 'id="taskito-workflow"' not in text(staff_client.get(f"/admin/taskito/jobs/{plain.id}/"))


def test_job_detail_of_an_unknown_job_is_404(staff_client: Client) -> None:
    assert staff_client.get("/admin/taskito/jobs/nope/").status_code == 404


def test_cancel_a_pending_job_and_not_a_finished_one(staff_client: Client) -> None:
    job = queue.enqueue("djapp.tasks.add", args=(1, 2))
    assert 'id="taskito-cancel"' in text(staff_client.get(f"/admin/taskito/jobs/{job.id}/"))
    response = staff_client.post(f"/admin/taskito/jobs/{job.id}/cancel/", follow=True)
    assert job.status == "cancelled" and f"Job {job.id} is cancelled" in text(response)
    response = staff_client.post(f"/admin/taskito/jobs/{job.id}/cancel/", follow=True)
    assert "only a job that has not finished can be cancelled" in text(response)


def test_the_admin_offers_cancel_and_retry_where_the_json_views_allow_them(staff_client: Client) -> None:
    """One rule (taskito.views.rules): a failed job waiting for its retry can be cancelled too, and a held one
    asked to stop."""
    from taskito import views

    waiting = queue.enqueue("djapp.tasks.explode", args=("later",), queue="waiting", max_retries=3)
    [record] = queue.storage.claim("test-hand", ["waiting"], 1, 30)
    queue.storage.fail(record.id, record.attempt, "ValueError: later", None, 3600)
    claimed = queue.enqueue("djapp.tasks.add", args=(1, 2), queue="claimed")
    queue.storage.claim("test-hand", ["claimed"], 1, 30)
    jobs = {"failed": waiting.id, "claimed": claimed.id, "pending": queue.enqueue("djapp.tasks.add", args=(3, 4)).id,
            "dead": dead_letter()}
    for state, job_id in jobs.items():
        page = text(staff_client.get(f"/admin/taskito/jobs/{job_id}/"))
        record = queue.get_job(job_id).record
        assert ('id="taskito-cancel"' in page) == views.can_cancel(record), state
        assert ('id="taskito-retry"' in page) == views.can_retry(record), state
    assert views.can_cancel(queue.get_job(waiting.id).record)
    response = staff_client.post(f"/admin/taskito/jobs/{waiting.id}/cancel/", follow=True)
    assert waiting.status == "cancelled" and f"Job {waiting.id} is cancelled" in text(response)
    response = staff_client.post(f"/admin/taskito/jobs/{claimed.id}/cancel/", follow=True)
    assert claimed.status == "pending" and f"Cancellation of job {claimed.id} requested" in text(response)
    assert not views.can_cancel(queue.get_job(claimed.id).record)  # asked once: its worker stops it


def test_the_job_list_filters_by_status_as_the_json_views_do(staff_client: Client) -> None:
    done = queue.enqueue("djapp.tasks.add", args=(1, 2))
    finish_all()
    assert done.id in text(staff_client.get("/admin/taskito/jobs/", {"status": "completed"}))  # stats()' name
    refused = text(staff_client.get("/admin/taskito/jobs/", {"status": "done"}, follow=True))
    assert "Unknown status &#x27;done&#x27;: use one of pending, running" in refused and done.id in refused


def test_cancel_of_a_purged_job_says_so_on_the_job_list(staff_client: Client) -> None:
    response = staff_client.post("/admin/taskito/jobs/0123456789abcdef/cancel/", follow=True)
    assert response.status_code == 200 and response.redirect_chain[-1][0].endswith("/admin/taskito/jobs/")
    assert "No job has the id 0123456789abcdef (it may have been purged)." in text(response)


def test_actions_refuse_get(staff_client: Client) -> None:
    job = queue.enqueue("djapp.tasks.add", args=(1, 2))
    for url in (f"/admin/taskito/jobs/{job.id}/cancel/", f"/admin/taskito/dead/{job.id}/retry/",
                f"/admin/taskito/dead/{job.id}/delete/", "/admin/taskito/queues/"):
        assert staff_client.get(url).status_code == 405, url
    assert job.status == "pending"


def test_actions_need_the_csrf_token(staff: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    job = queue.enqueue("djapp.tasks.add", args=(1, 2))
    assert client.post(f"/admin/taskito/jobs/{job.id}/cancel/").status_code == 403
    assert job.status == "pending"
    page = client.get(f"/admin/taskito/jobs/{job.id}/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert client.post(f"/admin/taskito/jobs/{job.id}/cancel/", {"csrfmiddlewaretoken": token}).status_code == 302
    assert job.status == "cancelled"


# -- dead letters ----------------------------------------------------------------------------------
def test_dead_letter_page_lists_them(staff_client: Client) -> None:
    assert "No dead letters." in text(staff_client.get("/admin/taskito/dead/"))
    dead_id = dead_letter("bad input")
    page = text(staff_client.get("/admin/taskito/dead/"))
    assert re.search(r'<body class="[^"<>]*change-list[^"<>]*"', page)  # the admin's own page structure
    assert dead_id in page and "ValueError: bad input" in page
    assert f'formaction="/admin/taskito/dead/{dead_id}/retry/"' in page


def test_retry_a_dead_letter_opens_its_new_job(staff_client: Client) -> None:
    dead_id = dead_letter()
    response = staff_client.post(f"/admin/taskito/dead/{dead_id}/retry/", follow=True)
    new_id = response.redirect_chain[-1][0].rstrip("/").rsplit("/", 1)[-1]
    assert new_id != dead_id and queue.get_job(new_id).status == "pending"
    assert f"replayed as the new job {new_id}" in text(response)
    again = staff_client.post(f"/admin/taskito/dead/{dead_id}/retry/", follow=True)
    assert "Not retried: no dead letter with id" in text(again)


def test_delete_a_dead_letter(staff_client: Client) -> None:
    dead_id = dead_letter()
    response = staff_client.post(f"/admin/taskito/dead/{dead_id}/delete/", {"next": "/admin/taskito/dead/"},
                                 follow=True)
    assert response.redirect_chain[-1][0] == "/admin/taskito/dead/"
    assert queue.get_job(dead_id) is None and f"Dead letter {dead_id} is deleted" in text(response)
    assert "is not a dead letter" in text(staff_client.post(f"/admin/taskito/dead/{dead_id}/delete/", follow=True))


def test_bulk_retry_and_bulk_delete_of_the_selection(staff_client: Client) -> None:
    ids = [dead_letter(f"e{n}") for n in range(4)]
    response = staff_client.post("/admin/taskito/dead/", {"action": "retry", "_selected_action": ids[:2]},
                                 follow=True)
    assert "Replayed 2 of 2 selected dead letter(s)" in text(response)
    response = staff_client.post("/admin/taskito/dead/", {"action": "delete", "_selected_action": ids[2:3]},
                                 follow=True)
    assert "Deleted 1 of 1 selected dead letter(s)" in text(response)
    assert queue.stats()["dead"] == 1 and queue.stats()["pending"] == 2 and queue.get_job(ids[3]) is not None
    assert "Select at least one" in text(staff_client.post("/admin/taskito/dead/", {"action": "retry"}, follow=True))
    assert "Choose an action" in text(staff_client.post("/admin/taskito/dead/", {"_selected_action": ids[3:]},
                                                        follow=True))


# -- custom admin sites and the dashboard ---------------------------------------------------------------
def test_register_taskito_admin_on_a_custom_site(staff_client: Client) -> None:
    page = text(staff_client.get("/custom-admin/taskito/"))
    assert 'href="/custom-admin/taskito/jobs/"' in page and 'href="/admin/taskito/jobs/"' not in page
    assert 'href="/custom-admin/taskito/"' in text(staff_client.get("/custom-admin/"))


@pytest.mark.parametrize("prefix", ["/admin/taskito/dashboard/", "/ops/taskito/"])
def test_dashboard_is_mounted_for_staff(staff_client: Client, prefix: str) -> None:
    pytest.importorskip("taskito.dashboard")
    queue.enqueue("djapp.tasks.add", args=(1, 2))
    page = staff_client.get(prefix)
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    stats = staff_client.get(prefix + "api/stats")
    assert stats.status_code == 200 and "pending" in json.dumps(stats.json())
    session = staff_client.get(prefix + "api/session").json()  # the dashboard's own CSRF token (and cookie)
    refused = staff_client.post(prefix + "api/queues/default/pause")
    assert refused.status_code == 403 and queue.paused_queues() == []
    paused = staff_client.post(prefix + "api/queues/default/pause", HTTP_X_CSRF_TOKEN=session["csrf_token"])
    assert paused.status_code == 200, paused.content
    assert queue.paused_queues() == ["default"]
