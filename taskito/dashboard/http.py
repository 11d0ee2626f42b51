"""A tiny request/response layer over WSGI, so the dashboard needs no web framework."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs

MAX_BODY = 64 * 1024  # every request the dashboard accepts is small

# Sent with every response, whatever its route or status.
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
     "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)


class HTTPError(Exception):
    """Raised by handlers to answer with a JSON error (or plain text outside /api)."""

    def __init__(self, status: int, message: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = list(headers)


class Request:
    """The parts of a WSGI environ the dashboard reads."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        # PEP 3333 hands the path over as latin-1 decoded bytes; names may be UTF-8.
        self.path = _wsgi_str(environ.get("PATH_INFO", ""))
        self.script_name = _wsgi_str(environ.get("SCRIPT_NAME", "")).rstrip("/")
        self.query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
        self.secure = environ.get("wsgi.url_scheme") == "https"
        self.cookies = _parse_cookies(str(environ.get("HTTP_COOKIE", "")))
        self._body: bytes | None = None

    def header(self, name: str) -> str | None:
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"))

    def body(self) -> bytes:
        if self._body is None:
            try:
                length = int(self.environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                raise HTTPError(400, "Content-Length is not a number") from None
            if length > MAX_BODY:
                raise HTTPError(413, f"request body of {length} bytes is over the {MAX_BODY} byte limit")
            self._body = self.environ["wsgi.input"].read(length) if length > 0 else b""
        return self._body

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body().decode("utf-8", "replace"), keep_blank_values=True)
        return {key: values[0] for key, values in parsed.items()}

    @property
    def cookie_path(self) -> str:
        """Cookies stay under the mount point, so two dashboards on one host keep apart."""
        return (self.script_name or "") + "/"


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)

    def set_cookie(self, name: str, value: str, *, path: str, secure: bool, max_age: int | None = None) -> None:
        parts = [f"{name}={value}", f"Path={path}", "HttpOnly", "SameSite=Strict"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        if secure:
            parts.append("Secure")
        self.headers.append(("Set-Cookie", "; ".join(parts)))

    def __call__(self, start_response: Callable[..., Any], head: bool = False) -> list[bytes]:
        phrase = HTTPStatus(self.status).phrase
        headers = [("Content-Type", self.content_type), ("Content-Length", str(len(self.body)))]
        names = {name.lower() for name, _ in self.headers}
        if "cache-control" not in names:
            headers.append(("Cache-Control", "no-store"))
        headers += self.headers + list(SECURITY_HEADERS)
        start_response(f"{self.status} {phrase}", headers)
        return [] if head else [self.body]


def json_response(data: Any, status: int = 200) -> Response:
    return Response(status, dumps(data).encode("utf-8"))


def dumps(data: Any) -> str:
    """JSON that browsers accept: NaN/Infinity (a task may return them) become strings."""
    try:
        return json.dumps(data, allow_nan=False, default=repr)
    except ValueError:
        return json.dumps(_finite(data), allow_nan=False, default=repr)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _wsgi_str(value: str) -> str:
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _parse_cookies(header: str) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for chunk in header.split(";"):  # parse one by one: one malformed cookie must not hide the others
        try:
            parsed = SimpleCookie(chunk)
        except CookieError:
            continue
        for name, morsel in parsed.items():
            cookies.setdefault(name, morsel.value)
    return cookies


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[..., Response]
    public: bool = False      # reachable without the token
    csrf: bool = False        # a browser must prove the call comes from the dashboard's own page
    mutating: bool = False    # changes the queue: refused when read-only (and needs CSRF)


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, path: str, handler: Callable[..., Response], **flags: bool) -> None:
        self.routes.append(Route(method, re.compile(f"^{path}$"), handler, **flags))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route for this request; 404 if no path matches, 405 if only the method is wrong."""
        if "\x00" in path:  # ids and queue names are PostgreSQL text, which cannot hold it
            raise HTTPError(400, "the path must not contain a NUL character")
        allowed: list[str] = []
        for route in self.routes:
            found = route.pattern.match(path)
            if not found:
                continue
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route, found.groupdict()
            allowed.append(route.method)
        if allowed:
            allow = ", ".join(sorted(set(allowed) | ({"HEAD"} if "GET" in allowed else set())))
            raise HTTPError(405, f"{method} is not allowed on {path}; use {allow}", [("Allow", allow)])
        raise HTTPError(404, f"no such page: {path}")
