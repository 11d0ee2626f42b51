"""The dashboard as one WSGI application: pages, static files, the JSON API, /health and /metrics.

It mounts anywhere a WSGI app does (gunicorn, Flask's DispatcherMiddleware, a
Django URL) because every link the page uses is relative to its mount point.

Security model:
- ``token`` set (or ``TASKITO_DASHBOARD_TOKEN``): every page and API call needs it, as a session cookie set by the
  login form (HttpOnly, SameSite=Strict) or as ``Authorization: Bearer <token>``.
  ``/health`` stays open (it says only whether the database answers) so that
  load balancers can probe it.
- Sessions are random ids held in this process's memory (nothing in the cookie is derived from the
  token): they end at sign-out, after ``session_ttl`` seconds, and with the process, so a restart
  with a new token signs everyone out.
- Wrong tokens (login form or bearer header) are counted per client address: after
  ``_Throttle.LIMIT`` within a minute the client gets 429 with Retry-After, whatever token it sends.
- Calls that change something are POST and, unless they carry the bearer token,
  need the CSRF token (double submit: an HttpOnly cookie plus the
  ``X-CSRF-Token`` header the page sends; signed with the token when there is one).
- ``read_only``: every call that changes the queue answers 403.
- Every response carries the security headers of ``http.SECURITY_HEADERS``; the
  page's script is a file, so the Content-Security-Policy forbids inline script.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from importlib import resources
from typing import TYPE_CHECKING, Any

from .. import __version__, config
from . import api
from .http import HTTPError, Request, Response, Router, json_response
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import render_metrics

if TYPE_CHECKING:
    from ..queue import Queue

logger = logging.getLogger("taskito.dashboard")

SESSION_COOKIE = "taskito_session"
CSRF_COOKIE = "taskito_csrf"
CSRF_HEADER = "X-CSRF-Token"
TOKEN_ENV = "TASKITO_DASHBOARD_TOKEN"

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Served without the token: the login page needs its stylesheet and icon, neither says anything about jobs.
_PUBLIC_STATIC = {"app.css", "favicon.svg"}
_LOGIN_FAILED = '<p class="login-error" role="alert">That token is not right. Try again.</p>'
_LOGIN_THROTTLED = ('<p class="login-error" role="alert">Too many wrong tokens from your address: '
                    'wait {seconds} s before the next try.</p>')


class _Sessions:
    """Sign-ins of one dashboard: random ids, each valid until it expires or is ended.

    Kept in memory (as sha256 digests, so a timing side channel on the lookup reveals nothing usable);
    at most ``MAX`` at once, the oldest dropped first, so sign-ins cannot grow the process without end.
    """

    MAX = 10_000

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._expiry: dict[bytes, float] = {}  # in creation order, which is also expiry order
        self._lock = threading.Lock()

    @staticmethod
    def _digest(session_id: str) -> bytes:
        return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).digest()

    def start(self) -> str:
        session_id = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            for digest, expires in list(self._expiry.items()):
                if expires > now and len(self._expiry) < self.MAX:
                    break
                del self._expiry[digest]
            self._expiry[self._digest(session_id)] = now + self.ttl
        return session_id

    def valid(self, session_id: str) -> bool:
        if not session_id:
            return False
        digest = self._digest(session_id)
        with self._lock:
            expires = self._expiry.get(digest)
            if expires is not None and expires <= time.monotonic():
                del self._expiry[digest]
                expires = None
        return expires is not None

    def end(self, session_id: str) -> None:
        with self._lock:
            self._expiry.pop(self._digest(session_id), None)


class _Throttle:
    """Wrong tokens per client address: ``LIMIT`` of them within ``WINDOW`` seconds lock it out.

    A locked-out client is answered 429 without its token being looked at (so guessing cannot go
    on at full speed) until ``LOCKOUT`` seconds after its last counted failure. Other clients,
    and sessions already signed in, are not affected. Behind a reverse proxy every client shares
    the proxy's address.
    """

    LIMIT = 5
    WINDOW = 60.0
    LOCKOUT = 60.0
    MAX_CLIENTS = 10_000

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """Seconds this client must wait before its next token is checked (0: go ahead)."""
        with self._lock:
            failures = self._failures.get(client)
            if failures is None or len(failures) < self.LIMIT:
                return 0
            wait = failures[-1] + self.LOCKOUT - time.monotonic()
            if wait <= 0:
                del self._failures[client]
                return 0
            return math.ceil(wait)

    def failed(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            failures = self._failures.pop(client, None) or deque(maxlen=self.LIMIT)
            while failures and failures[0] <= now - self.WINDOW:
                failures.popleft()
            failures.append(now)
            self._failures[client] = failures  # re-inserted: the dict stays in order of last failure
            while len(self._failures) > self.MAX_CLIENTS:
                del self._failures[next(iter(self._failures))]

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


def _load_static() -> dict[str, tuple[bytes, str, str]]:
    folder = resources.files(__package__).joinpath("static")
    files = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _CONTENT_TYPES:
            body = entry.read_bytes()
            files[entry.name] = (body, _CONTENT_TYPES[suffix], '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    return files


class DashboardApp:
    """The WSGI callable ``create_app`` returns."""

    def __init__(self, queue: Queue, *, token: str | None = None, read_only: bool = False,
                 session_ttl: float | None = None) -> None:
        if token is None:
            token = os.environ.get(TOKEN_ENV, "").strip() or None
        elif not isinstance(token, str) or not token.strip():
            raise ValueError(f"token must be a non-empty string, got {token!r}; pass None for no token")
        else:
            token = token.strip()  # read from a secrets file, it ends in a newline no one types
        self.queue = queue
        self.token = token
        self.read_only = bool(read_only)
        self._key = token.encode("utf-8") if token else b""
        self.session_ttl = float(config.resolve("session_ttl", session_ttl))
        self._sessions = _Sessions(self.session_ttl)
        self._throttle = _Throttle()
        self._static = _load_static()
        self.router = Router()
        self._routes()

    def __repr__(self) -> str:
        mode = ("token" if self.token else "no token") + (", read-only" if self.read_only else "")
        return f"<taskito dashboard for {self.queue!r} ({mode})>"

    # -- wiring ----------------------------------------------------------------------------
    def _routes(self) -> None:
        add = self.router.add
        add("GET", "/", self.index)
        add("GET", "/static/(?P<name>[A-Za-z0-9_.-]+)", self.static, public=True)
        add("GET", "/login", self.login_page, public=True)
        add("POST", "/login", self.login, public=True)
        add("POST", "/logout", self.logout, csrf=True)
        add("GET", "/health", self.health, public=True)
        add("GET", "/ready", self.ready, public=True)
        add("GET", "/metrics", self.metrics)
        add("GET", "/api/session", self.session)
        api.register(self.queue, self.router)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        req = Request(environ)
        try:
            response = self._dispatch(req)
        except HTTPError as exc:
            response = self._error(req, exc)
        except Exception:
            logger.exception("dashboard: %s %s failed", req.method, req.path)
            response = self._error(req, HTTPError(500, "internal error; the dashboard's log has the details"))
        return response(start_response, head=req.method == "HEAD")

    def _dispatch(self, req: Request) -> Response:
        if req.path == "":  # mounted at /prefix and asked for /prefix: relative links need the slash
            return _redirect(req.cookie_path, 308)
        route, params = self.router.match(req.method, req.path)
        if req.method == "POST" and req.header("Sec-Fetch-Site") == "cross-site":
            # Browsers say where a request comes from: no other site may post here, not even a login.
            raise HTTPError(403, "cross-site request refused: use the dashboard page itself")
        bearer = False
        if not route.public:
            authenticated, bearer = self._authenticate(req)
            if not authenticated:
                if req.path == "/":
                    return _redirect("login")
                raise HTTPError(401, f"this dashboard needs its token: sign in, or send 'Authorization: Bearer "
                                     f"<token>' (set with --token / {TOKEN_ENV})",
                                [("WWW-Authenticate", 'Bearer realm="taskito"')])
        if route.mutating and self.read_only:
            raise HTTPError(403, "this dashboard is read-only (--read-only): it shows the queue but changes "
                                 "nothing; use the taskito CLI or a dashboard without --read-only")
        if (route.csrf or route.mutating) and not bearer:
            self._check_csrf(req)
        return route.handler(req, **params)

    def _error(self, req: Request, exc: HTTPError) -> Response:
        if req.path.startswith("/api/") or req.path == "/metrics" or req.path == "/logout":
            response = json_response({"error": exc.message, "status": exc.status}, exc.status)
        else:
            response = Response(exc.status, exc.message.encode("utf-8"), "text/plain; charset=utf-8")
        response.headers += exc.headers
        return response

    # -- authentication and CSRF -------------------------------------------------------------
    def _sign(self, purpose: str) -> str:
        return hmac.new(self._key, f"taskito-dashboard:{purpose}".encode(), hashlib.sha256).hexdigest()

    def _authenticate(self, req: Request) -> tuple[bool, bool]:
        """(allowed, by bearer header). Without a token everyone is allowed."""
        if not self.token:
            return True, False
        header = req.header("Authorization") or ""
        scheme, _, credential = header.partition(" ")
        if scheme.lower() == "bearer" and credential:
            client = _client(req)
            wait = self._throttle.retry_after(client)
            if wait:
                raise HTTPError(429, f"too many wrong tokens from {client}: try again in {wait} s",
                                [("Retry-After", str(wait))])
            if self._token_matches(credential):
                self._throttle.succeeded(client)
                return True, True
            self._throttle.failed(client)
            logger.warning("dashboard: wrong bearer token from %s", client)
            return False, False
        return self._sessions.valid(req.cookies.get(SESSION_COOKIE, "")), False

    def _token_matches(self, given: str) -> bool:
        return hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), self._key)

    def _csrf_valid(self, value: str) -> bool:
        nonce, dot, signature = value.partition(".")
        if not nonce or len(value) > 200:
            return False
        if not self.token:
            return not dot
        return bool(dot) and hmac.compare_digest(signature.encode(), self._sign("csrf:" + nonce).encode())

    def _new_csrf(self) -> str:
        nonce = secrets.token_urlsafe(24)
        return f"{nonce}.{self._sign('csrf:' + nonce)}" if self.token else nonce

    def _csrf_for(self, req: Request, response: Response) -> str:
        """The request's CSRF token, or a new one set as a cookie on ``response``."""
        current = req.cookies.get(CSRF_COOKIE, "")
        if current and self._csrf_valid(current):
            return current
        fresh = self._new_csrf()
        response.set_cookie(CSRF_COOKIE, fresh, path=req.cookie_path, secure=req.secure)
        return fresh

    def _check_csrf(self, req: Request) -> None:
        cookie = req.cookies.get(CSRF_COOKIE, "")
        header = req.header(CSRF_HEADER) or ""
        if not cookie or not header:
            raise HTTPError(403, f"CSRF check failed: send the {CSRF_HEADER} header from GET api/session "
                                 "(the dashboard page does this; scripts can use the bearer token instead)")
        if not (hmac.compare_digest(cookie.encode(), header.encode()) and self._csrf_valid(cookie)):
            raise HTTPError(403, "CSRF check failed: the X-CSRF-Token header does not match this session; "
                                 "reload the page")

    # -- pages -------------------------------------------------------------------------------
    def _file(self, req: Request, name: str) -> Response:
        try:
            body, content_type, etag = self._static[name]
        except KeyError:
            raise HTTPError(404, f"no such file: static/{name}") from None
        headers = [("ETag", etag), ("Cache-Control", "no-cache")]
        if req.header("If-None-Match") == etag:
            return Response(304, b"", content_type, headers)
        return Response(200, body, content_type, headers)

    def index(self, req: Request) -> Response:
        response = self._file(req, "index.html")
        self._csrf_for(req, response)
        return response

    def static(self, req: Request, name: str) -> Response:
        if name not in _PUBLIC_STATIC and not self._authenticate(req)[0]:
            raise HTTPError(401, "sign in first")
        if name in ("index.html", "login.html"):
            raise HTTPError(404, f"no such file: static/{name}")
        return self._file(req, name)

    def login_page(self, req: Request) -> Response:
        if not self.token or self._authenticate(req)[0]:
            return _redirect("./")
        return self._login_form(200)

    def _login_form(self, status: int, message: str = "", headers: Iterable[tuple[str, str]] = ()) -> Response:
        body = self._static["login.html"][0].replace(b"<!--message-->", message.encode())
        return Response(status, body, "text/html; charset=utf-8", list(headers))

    def login(self, req: Request) -> Response:
        if not self.token:
            return _redirect("./")
        client = _client(req)
        wait = self._throttle.retry_after(client)
        if wait:
            return self._login_form(429, _LOGIN_THROTTLED.format(seconds=wait), [("Retry-After", str(wait))])
        given = req.form().get("token", "").strip()
        if not given or not self._token_matches(given):
            if given:
                self._throttle.failed(client)
            logger.warning("dashboard: failed sign-in from %s", client)
            return self._login_form(401, _LOGIN_FAILED)
        self._throttle.succeeded(client)
        response = _redirect("./")
        response.set_cookie(SESSION_COOKIE, self._sessions.start(), path=req.cookie_path, secure=req.secure,
                            max_age=math.ceil(self.session_ttl))
        response.set_cookie(CSRF_COOKIE, self._new_csrf(), path=req.cookie_path, secure=req.secure)
        return response

    def logout(self, req: Request) -> Response:
        """End the session on the server too: a copy of the cookie is worth nothing afterwards."""
        self._sessions.end(req.cookies.get(SESSION_COOKIE, ""))
        response = json_response({"signed_out": True})
        response.set_cookie(SESSION_COOKIE, "", path=req.cookie_path, secure=req.secure, max_age=0)
        return response

    # -- machine endpoints -----------------------------------------------------------------
    def health(self, req: Request) -> Response:
        """200 when the database answers, 503 otherwise (open even with a token: says nothing else)."""
        try:
            self.queue.paused_queues()
        except Exception as exc:
            logger.warning("dashboard: health check failed: %s", exc)
            return json_response({"status": "unavailable"}, 503)
        return json_response({"status": "ok"})

    def ready(self, req: Request) -> Response:
        """200 when the database answers and at least one worker is live, 503 otherwise (open like /health:
        says only that). For readiness probes of a deployment that needs its workers up."""
        try:
            workers = len(self.queue.workers())
        except Exception as exc:
            logger.warning("dashboard: readiness check failed: %s", exc)
            return json_response({"status": "unavailable", "database": False, "workers": 0}, 503)
        if not workers:
            return json_response({"status": "no live worker", "database": True, "workers": 0}, 503)
        return json_response({"status": "ok", "database": True, "workers": workers})

    def metrics(self, req: Request) -> Response:
        return Response(200, render_metrics(self.queue).encode("utf-8"), METRICS_CONTENT_TYPE)

    def session(self, req: Request) -> Response:
        """What the page needs to start: its CSRF token and the dashboard's mode."""
        response = json_response({})
        csrf = self._csrf_for(req, response)
        response.body = json_response({"csrf_token": csrf, "auth": bool(self.token), "read_only": self.read_only,
                                       "version": __version__, "queue": queue_label(self.queue)}).body
        return response


def queue_label(queue: Queue) -> str:
    """What the page calls the queue: the database file's name or the schema, never a path on the server."""
    if queue.backend == "sqlite":
        return os.path.basename(queue.db_path) or queue.db_path
    return f"{queue.backend} schema {queue.schema}"


def _client(req: Request) -> str:
    """Who is guessing: the peer address (a proxy's X-Forwarded-For is anyone's to forge)."""
    return str(req.environ.get("REMOTE_ADDR") or "?")


def _redirect(location: str, status: int = 303) -> Response:
    return Response(status, b"", "text/plain; charset=utf-8", [("Location", location)])


def create_app(queue: Queue, *, token: str | None = None, read_only: bool = False,
               session_ttl: float | None = None) -> DashboardApp:
    """The dashboard for ``queue`` as a WSGI application.

    ``token``: require it on every page and API call; None reads ``TASKITO_DASHBOARD_TOKEN``, and with
    that unset too the dashboard is open to whoever reaches it.
    ``read_only``: refuse every call that would change the queue.
    ``session_ttl``: seconds a sign-in lasts; None reads ``TASKITO_DASHBOARD_SESSION_TTL`` (default 12 h).
    Sessions live in this process: serve the app from one process (threads are fine).
    """
    return DashboardApp(queue, token=token, read_only=read_only, session_ttl=session_ttl)
