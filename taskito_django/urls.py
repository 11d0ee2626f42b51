"""The taskito web dashboard under a URL of your project, for staff members only.

    urlpatterns = [..., path("taskito/", include("taskito_django.urls"))]

(The same dashboard is also in the admin at ``/admin/taskito/dashboard/``.)
"""

from __future__ import annotations

from django.urls import path

from .dashboard import dashboard_view

app_name = "taskito"

urlpatterns = [
    path("", dashboard_view, name="dashboard"),
    path("<path:rest>", dashboard_view, name="dashboard_path"),
]
