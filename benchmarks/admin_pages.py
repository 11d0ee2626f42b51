"""Milliseconds (median of 3) the Django admin's taskito pages take over the benchmark's database.

    TASKITO_BACKEND=... TASKITO_DB_PATH=... python benchmarks/admin_pages.py   (scale.py runs it per stage)

A process of its own, as Django's settings are global: the queue's settings come from the TASKITO_*
variables (as for the benchmark's workers); Django's own tables (users, sessions) live in memory. Prints
one JSON object: page name -> milliseconds, each through Django's test client as a signed-in superuser.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import django
from django.conf import settings

settings.configure(
    SECRET_KEY="taskito-benchmark-only", DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
                    "django.contrib.sessions", "django.contrib.messages", "taskito_django"],
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
                "django.contrib.messages.middleware.MessageMiddleware"],
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
                "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                                   "django.contrib.auth.context_processors.auth",
                                                   "django.contrib.messages.context_processors.messages"]}}],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    TASKITO_AUTODISCOVER_MODULE=None,
)
django.setup()

from django.contrib import admin  # noqa: E402 - Django must be set up first
from django.urls import path  # noqa: E402

urlpatterns = [path("admin/", admin.site.urls)]


def main() -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from taskito_django import queue

    call_command("migrate", verbosity=0)
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("bench", "bench@example.com", "bench"))
    newest = queue.list_jobs(limit=1)
    job_id = newest[0].id if newest else "0" * 32
    pages = {
        "admin_overview": "/admin/taskito/",
        "admin_jobs": "/admin/taskito/jobs/",
        "admin_jobs_page_40": "/admin/taskito/jobs/?p=40",
        "admin_jobs_status_complete": "/admin/taskito/jobs/?status=complete",
        "admin_jobs_sort_task": "/admin/taskito/jobs/?o=task",
        "admin_job": f"/admin/taskito/jobs/{job_id}/",
        "admin_dead": "/admin/taskito/dead/",
        "admin_schedules": "/admin/taskito/schedules/",
    }
    times: dict[str, Any] = {}
    for name, url in pages.items():
        samples = []
        for _ in range(3):
            started = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}")
        times[name] = round(statistics.median(samples), 1)
    print(json.dumps(times))


if __name__ == "__main__":
    main()
