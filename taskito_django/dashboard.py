"""The taskito web dashboard (a WSGI app) served from a Django URL, for staff only.

Django authenticates (staff members; the dashboard's own token is not used) and the
dashboard keeps its own CSRF protection for its JSON API (a cookie plus the header its
page sends), so these views are exempt from Django's CSRF middleware.
"""

from __future__ import annotations

import io
import threading
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from .project import queue

_app: Any = None
_lock = threading.Lock()


def dashboard_app() -> Any:
    """One dashboard for the project queue (it follows the queue when settings rebuild it)."""
    global _app
    with _lock:
        if _app is None:
            try:
                from taskito.dashboard import create_app
            except ImportError as exc:
                raise ImportError(f"the taskito dashboard is not available in this installation: {exc}") from exc
            _app = create_app(queue)
    return _app


def serve_dashboard(request: HttpRequest, prefix: str) -> HttpResponse:
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

    chunks = dashboard_app()(environ, start_response)
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
    """Mount with ``path("taskito/", include("taskito_django.urls"))``; staff only."""
    prefix = request.path[: len(request.path) - len(rest)] if rest else request.path
    return serve_dashboard(request, prefix)
