"""Taskito's pages in the Django admin: ``/admin/taskito/`` on the default site, or any site you pass.

No model is registered (there is no table of ours in your database): the pages are added
to the site's URLs and a "Taskito" section to its app list (index page and sidebar).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import AdminSite
from django.http import HttpRequest

from .views import TaskitoAdminViews, can_view


def register_taskito_admin(site: AdminSite) -> None:
    """Add the taskito pages to ``site`` (call it before ``site.urls`` is included in your URLconf)."""
    if getattr(site, "_taskito_views", None) is not None:
        return
    views = TaskitoAdminViews(site)
    site._taskito_views = views  # type: ignore[attr-defined]
    site_get_urls = site.get_urls
    site_get_app_list = site.get_app_list

    def get_urls() -> list[Any]:
        return views.get_urls() + site_get_urls()

    def get_app_list(request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        app_list = site_get_app_list(request, app_label)
        if app_label is None and site.has_permission(request) and can_view(request):
            app_list = sorted([*app_list, views.app_list_entry(request)], key=lambda app: app["name"].lower())
        return app_list

    site.get_urls = get_urls  # type: ignore[method-assign]
    site.get_app_list = get_app_list  # type: ignore[method-assign]


register_taskito_admin(admin.site)
