"""The taskito web dashboard (a WSGI app) served from a Django URL, for staff with the Taskito permissions.

Django authenticates (staff members with ``taskito_django.view_taskito``; the dashboard's own
token is not used); without ``taskito_django.change_taskito`` the dashboard is read-only. The
dashboard keeps its own CSRF protection for its JSON API (a cookie plus the header its page
sends), so these views are exempt from Django's CSRF middleware.
"""

from __future__ import annotations

import io
import threading
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from .models import VIEW_PERMISSION
from .project import queue

_apps: dict[bool, Any] = {}
_lock = threading.Lock()


def dashboard_app(read_only: bool = False) -> Any:
    """One dashboard for the project queue, and one read-only (they follow the queue when settings rebuild it)."""
    with _lock:
        if read_only not in _apps:
            try:
                from taskito.dashboard import create_app
            except ImportError as exc:
                raise ImportError(f"the taskito dashboard is not available in this installation: {exc}") from exc
            _apps[read_only] = create_app(queue, read_only=read_only)
    return _apps[read_only]


def serve_dashboard(request: HttpRequest, prefix: str, read_only: bool) -> HttpResponse:
    """Run the dashboard WSGI app for ``request``, mounted at the URL path ``prefix``."""
    environ = dict(request.META)
    body = request.body
    rest = request.path[len(prefix):] if request.path.startswith(prefix) else ""
    environ.update({
        "REQUEST_METHOD": request.method or "GET",
        "SCRIPT_NAME": prefix.rstrip("/"),
        "PATH_INFO": "/" + rest,
        "QUERY_STRING": request.META.get("QUERY_STRING", ""),
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": request.scheme or "http",
    })
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started["status"], started["headers"] = status, headers
        return lambda data: None

    chunks = dashboard_app(read_only)(environ, start_response)
    try:
        content = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    code, _, reason = started["status"].partition(" ")
    response = HttpResponse(content, status=int(code), reason=reason or None)
    for name, value in started["headers"]:
        if name.lower() == "set-cookie":
            _copy_cookie(response, value)
        else:
            response[name] = value
    return response


def _copy_cookie(response: HttpResponse, header: str) -> None:
    from http.cookies import SimpleCookie

    parsed: SimpleCookie = SimpleCookie()
    parsed.load(header)
    for name, morsel in parsed.items():
        response.cookies[name] = morsel.value
        for key, value in morsel.items():
            if value:
                response.cookies[name][key] = value


@csrf_exempt
@staff_member_required
def dashboard_view(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Mount with ``path("taskito/", include("taskito_django.urls"))``; staff with the Taskito permissions."""
    from .views import can_change, can_view

    if not can_view(request):
        raise PermissionDenied(f"The taskito dashboard needs the permission {VIEW_PERMISSION!r}.")
    prefix = request.path[: len(request.path) - len(rest)] if rest else request.path
    return serve_dashboard(request, prefix, read_only=not can_change(request))
