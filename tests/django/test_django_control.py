"""The admin's control pages: cancel a running job, schedules, revoke a task, replay a job."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.test import Client

from taskito.storage import Started
from taskito_django import queue
from tests.django.conftest import finish_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(django_user_model: Any) -> Client:
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="taskito_django"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def schedule(monkeypatch: pytest.MonkeyPatch) -> str:
    """A schedule declared for this test only."""
    monkeypatch.setattr(queue.registry, "periodic_tasks", list(queue.registry.periodic_tasks))
    monkeypatch.setattr(queue.registry, "tasks", dict(queue.registry.tasks))

    @queue.periodic(cron="0 0 * * * *", name="djapp.hourly")
    def hourly() -> str:
        return "tick"

    return "djapp.hourly"


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_a_running_job_has_a_cancel_button_that_asks_its_worker(staff_client: Client) -> None:
    job = queue.enqueue("djapp.tasks.add", args=(1, 2), queue="held")
    [record] = queue.storage.claim("admin-test-worker", ["held"], 1, 30)
    queue.storage.start([Started(record.id, record.attempt, time.time())])
    page = text(staff_client.get(f"/admin/taskito/jobs/{job.id}/"))
    assert "Cancel running job" in page
    done = text(staff_client.post(f"/admin/taskito/jobs/{job.id}/cancel/", follow=True))
    assert f"Cancellation of job {job.id} requested" in done and "Cancellation requested" in done
    assert "Cancel running job" not in done
    assert queue.storage.cancel_requests("admin-test-worker") == [(job.id, record.attempt)]


def test_the_schedules_page_pauses_resumes_and_runs(staff_client: Client, schedule: str) -> None:
    page = text(staff_client.get("/admin/taskito/schedules/"))
    assert schedule in page and "0 0 * * * *" in page and "active" in page
    assert "/admin/taskito/schedules/" in text(staff_client.get("/admin/"))  # listed on the admin index
    paused = text(staff_client.post("/admin/taskito/schedules/action/", {"schedule": schedule, "action": "pause"},
                                    follow=True))
    assert f"Schedule {schedule} is paused" in paused and "paused" in paused
    assert queue.periodic_schedules()[0]["paused"] is True
    ran = text(staff_client.post("/admin/taskito/schedules/action/", {"schedule": schedule, "action": "run"},
                                 follow=True))
    assert f"Schedule {schedule} enqueued job" in ran and queue.stats()["pending"] == 1
    staff_client.post("/admin/taskito/schedules/action/", {"schedule": schedule, "action": "resume"})
    assert queue.periodic_schedules()[0]["paused"] is False
    unknown = text(staff_client.post("/admin/taskito/schedules/action/", {"schedule": "nope", "action": "pause"},
                                     follow=True))
    assert "no periodic schedule named &#x27;nope&#x27;" in unknown or "no periodic schedule named 'nope'" in unknown
    assert staff_client.get("/admin/taskito/schedules/action/").status_code == 405  # POST only


def test_revoke_a_task_after_a_confirmation(staff_client: Client) -> None:
    jobs = [queue.enqueue("djapp.tasks.add", args=(i, i)) for i in range(3)]
    other = queue.enqueue("djapp.tasks.report", args=("kept",))
    question = text(staff_client.get("/admin/taskito/tasks/djapp.tasks.add/revoke/"))
    assert "Cancel every waiting job of the task djapp.tasks.add?" in question
    assert all(job.status == "pending" for job in jobs)  # asking changes nothing
    done = text(staff_client.post("/admin/taskito/tasks/djapp.tasks.add/revoke/", follow=True))
    assert "Task djapp.tasks.add: 3 waiting job(s) cancelled" in done
    assert {job.status for job in jobs} == {"cancelled"} and other.status == "pending"


def test_replay_a_finished_job_after_a_confirmation(staff_client: Client) -> None:
    job = queue.enqueue("djapp.tasks.add", args=(2, 3), queue="replayed")
    [done_id] = finish_all(queues=["replayed"])
    assert done_id == job.id and "Replay" in text(staff_client.get(f"/admin/taskito/jobs/{job.id}/"))
    question = text(staff_client.get(f"/admin/taskito/jobs/{job.id}/replay/"))
    assert f"Enqueue job {job.id} again as a new job?" in question and queue.stats()["pending"] == 0
    replayed = staff_client.post(f"/admin/taskito/jobs/{job.id}/replay/")
    new_id = replayed["Location"].rstrip("/").rsplit("/", 1)[-1]
    assert new_id != job.id and queue.get_job(new_id).to_dict()["args"] == [2, 3]
    refused = text(staff_client.post(f"/admin/taskito/jobs/{new_id}/replay/", follow=True))
    assert "Not replayed" in refused and "only a finished job" in refused
