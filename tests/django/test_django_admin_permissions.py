"""Django's permission model on the Taskito admin: a superuser, a viewer and a staff member with
neither permission, on every page and every action."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from taskito_django import queue
from tests.django.conftest import finish_all

pytestmark = pytest.mark.django_db


def staff_with(django_user_model: Any, username: str, *codenames: str, superuser: bool = False) -> Client:
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user(username, password="pw", is_staff=True, is_superuser=superuser)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="taskito_django",
                                                        codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def superuser(django_user_model: Any) -> Client:
    return staff_with(django_user_model, "root", superuser=True)


@pytest.fixture
def viewer(django_user_model: Any) -> Client:
    return staff_with(django_user_model, "viewer", "view_taskito")


@pytest.fixture
def nobody(django_user_model: Any) -> Client:
    """Staff, so the admin lets them in, but without either Taskito permission."""
    return staff_with(django_user_model, "nobody")


@pytest.fixture
def jobs() -> dict[str, str]:
    """A pending job, a dead letter (in a queue of its own) and a dead letter's id to act on."""
    pending = queue.enqueue("djapp.tasks.add", args=(1, 2)).id
    queue.enqueue("djapp.tasks.explode", args=("boom",), queue="graveyard")
    [dead] = finish_all(error="ValueError: boom", queues=["graveyard"])
    return {"pending": pending, "dead": dead}


def pages(ids: dict[str, str]) -> list[str]:
    return ["/admin/taskito/", "/admin/taskito/jobs/", f"/admin/taskito/jobs/{ids['pending']}/",
            f"/admin/taskito/jobs/{ids['dead']}/", "/admin/taskito/dead/", "/admin/taskito/dashboard/",
            "/admin/taskito/dashboard/api/stats", "/custom-admin/taskito/", "/ops/taskito/", "/ops/taskito/api/jobs",
            "/admin/taskito/schedules/"]


CONFIRMATIONS = ["/admin/taskito/dead/retry-all/", "/admin/taskito/dead/delete-all/",
                 "/admin/taskito/queues/default/empty/", "/admin/taskito/tasks/djapp.tasks.add/revoke/"]


def actions(ids: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """Every admin action as (url, POST data), each of which would change the queue."""
    return [
        ("/admin/taskito/queues/", {"queue": "default", "action": "pause"}),
        (f"/admin/taskito/jobs/{ids['pending']}/cancel/", {}),
        (f"/admin/taskito/dead/{ids['dead']}/retry/", {}),
        (f"/admin/taskito/dead/{ids['dead']}/delete/", {}),
        ("/admin/taskito/dead/", {"action": "delete", "_selected_action": [ids["dead"]]}),
        ("/admin/taskito/dead/retry-all/", {}),
        ("/admin/taskito/dead/delete-all/", {}),
        ("/admin/taskito/queues/default/empty/", {}),
        ("/admin/taskito/tasks/djapp.tasks.add/revoke/", {}),
        (f"/admin/taskito/jobs/{ids['dead']}/replay/", {}),
        ("/admin/taskito/schedules/action/", {"schedule": "djapp.tasks.add", "action": "run"}),
    ]


def unchanged(ids: dict[str, str]) -> bool:
    return (queue.get_job(ids["pending"]).status == "pending" and queue.get_job(ids["dead"]).status == "dead"
            and queue.paused_queues() == [] and queue.stats()["pending"] == 1)


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_the_permissions_exist_after_migrate_and_are_granted_on_the_admins_user_page(superuser: Client,
                                                                                      django_user_model: Any) -> None:
    from django.contrib.auth.models import Permission

    found = {p.codename: p.name for p in Permission.objects.filter(content_type__app_label="taskito_django")}
    assert set(found) == {"view_taskito", "change_taskito"}
    someone = django_user_model.objects.create_user("someone", password="pw", is_staff=True)
    form = text(superuser.get(f"/admin/auth/user/{someone.pk}/change/"))
    for name in found.values():
        assert name in form
    group_form = text(superuser.get("/admin/auth/group/add/"))
    assert found["change_taskito"] in group_form


def test_a_superuser_sees_every_page_and_every_action(superuser: Client, jobs: dict[str, str]) -> None:
    for url in pages(jobs) + CONFIRMATIONS:
        assert superuser.get(url).status_code == 200, url
    overview = text(superuser.get("/admin/taskito/"))
    assert ">Pause</button>" in overview and "Empty" in overview
    assert 'id="taskito-delete-all"' in text(superuser.get("/admin/taskito/dead/"))
    assert "app-taskito" in text(superuser.get("/admin/"))
    assert superuser.post("/admin/taskito/queues/", {"queue": "default", "action": "pause"}).status_code == 302
    assert superuser.post(f"/admin/taskito/jobs/{jobs['pending']}/cancel/").status_code == 302
    assert superuser.post(f"/admin/taskito/dead/{jobs['dead']}/delete/").status_code == 302
    assert queue.paused_queues() == ["default"] and queue.get_job(jobs["pending"]).status == "cancelled"
    assert queue.get_job(jobs["dead"]) is None


def test_a_viewer_sees_every_page_but_no_action(viewer: Client, jobs: dict[str, str]) -> None:
    for url in pages(jobs):
        assert viewer.get(url).status_code == 200, url
    assert "app-taskito" in text(viewer.get("/admin/"))
    overview = text(viewer.get("/admin/taskito/"))
    assert 'value="pause"' not in overview and "/empty/" not in overview
    dead = text(viewer.get("/admin/taskito/dead/"))
    assert "_selected_action" not in dead and "retry-all" not in dead and "/retry/" not in dead
    detail = text(viewer.get(f"/admin/taskito/jobs/{jobs['dead']}/"))
    assert 'id="taskito-retry"' not in detail and 'id="taskito-delete"' not in detail
    assert 'id="taskito-replay"' not in detail and 'id="taskito-revoke"' not in detail
    assert 'id="taskito-cancel"' not in text(viewer.get(f"/admin/taskito/jobs/{jobs['pending']}/"))
    for url in CONFIRMATIONS:
        assert viewer.get(url).status_code == 403, url
    for url, data in actions(jobs):
        assert viewer.post(url, data).status_code == 403, url
    # The dashboard is read-only for a viewer, even with its CSRF token.
    for prefix in ("/admin/taskito/dashboard/", "/ops/taskito/"):
        token = viewer.get(prefix + "api/session").json()["csrf_token"]
        refused = viewer.post(prefix + "api/queues/default/pause", HTTP_X_CSRF_TOKEN=token)
        assert refused.status_code == 403, prefix
    assert unchanged(jobs)


def test_staff_without_the_permissions_see_no_taskito_at_all(nobody: Client, jobs: dict[str, str]) -> None:
    index = text(nobody.get("/admin/"))
    assert "app-taskito" not in index and "/admin/taskito/" not in index
    for url in pages(jobs) + CONFIRMATIONS:
        assert nobody.get(url).status_code == 403, url
    for url, data in actions(jobs):
        assert nobody.post(url, data).status_code == 403, url
    assert unchanged(jobs)


def test_the_change_permission_alone_allows_seeing_and_acting(django_user_model: Any, jobs: dict[str, str]) -> None:
    operator = staff_with(django_user_model, "operator", "change_taskito")
    for url in pages(jobs) + CONFIRMATIONS:
        assert operator.get(url).status_code == 200, url
    assert operator.post(f"/admin/taskito/dead/{jobs['dead']}/retry/").status_code == 302
    assert (queue.stats()["dead"], queue.stats()["pending"]) == (0, 2)


# -- the actions on everything go through a confirmation page ------------------------------------------
def test_retry_all_and_delete_all_dead_letters_ask_first(superuser: Client) -> None:
    for n in range(3):
        queue.enqueue("djapp.tasks.explode", args=(f"boom {n}",), queue="graveyard")
    finish_all(error="ValueError: boom", queues=["graveyard"])
    page = text(superuser.get("/admin/taskito/dead/retry-all/"))
    assert "Replay all 3 dead letter(s) as new jobs?" in page and 'id="taskito-confirm"' in page
    assert queue.stats()["dead"] == 3  # asking changes nothing
    done = superuser.post("/admin/taskito/dead/retry-all/", follow=True)
    assert "Replayed 3 dead letter(s)" in text(done)
    assert (queue.stats()["dead"], queue.stats_by_queue("graveyard")["pending"]) == (0, 3)
    finish_all(error="ValueError: again", queues=["graveyard"])
    assert "Delete all 3 dead letter(s)?" in text(superuser.get("/admin/taskito/dead/delete-all/"))
    assert queue.stats()["dead"] == 3
    assert "Deleted 3 dead letter(s)" in text(superuser.post("/admin/taskito/dead/delete-all/", follow=True))
    assert queue.stats()["dead"] == 0


def test_empty_queue_asks_first_then_cancels_its_waiting_jobs(superuser: Client) -> None:
    waiting = [queue.enqueue("djapp.tasks.report", args=(str(n),)).id for n in range(4)]
    other = queue.enqueue("djapp.tasks.add", args=(1, 2)).id
    page = text(superuser.get("/admin/taskito/queues/reports/empty/"))
    assert "Cancel all 4 waiting job(s) of the queue reports?" in page
    assert queue.stats_by_queue("reports")["pending"] == 4
    done = text(superuser.post("/admin/taskito/queues/reports/empty/", follow=True))
    assert "4 waiting job(s) cancelled" in done
    assert {queue.get_job(job_id).status for job_id in waiting} == {"cancelled"}
    assert queue.get_job(other).status == "pending"
