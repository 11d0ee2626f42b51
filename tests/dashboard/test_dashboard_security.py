"""Token, CSRF, read-only mode, security headers and escaping, through the WSGI app."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from taskito import Queue
from taskito.dashboard import create_app
from taskito.exceptions import ConfigurationError
from tests.dashboard.conftest import SCRIPT_ARG, DashClient, Populated
from tests.support import wait_until

TOKEN = "correct-horse-battery-staple-42"
BEARER = {"Authorization": f"Bearer {TOKEN}"}

GET_ROUTES = ["/", "/static/app.js", "/metrics", "/api/session", "/api/stats", "/api/queues", "/api/queues/default",
              "/api/jobs", "/api/jobs/{job}", "/api/dead-letters", "/api/workers", "/api/tasks", "/api/throughput",
              "/api/stats/queues", "/api/jobs/{job}/result", "/api/schedules", "/api/workflows/{workflow}",
              "/api/jobs/{job}/logs", "/api/search", "/api/task-series", "/api/workflows"]
MUTATING_ROUTES = ["/api/queues/default/pause", "/api/queues/default/resume", "/api/jobs/{pending}/cancel",
                   "/api/dead-letters/purge", "/api/dead-letters/{dead}/retry", "/api/dead-letters/{dead}/delete",
                   "/api/queues/default/purge", "/api/tasks/some.task/revoke", "/api/schedules/some.schedule/pause",
                   "/api/schedules/some.schedule/resume", "/api/schedules/some.schedule/run",
                   "/api/jobs/{dead}/replay", "/api/dead-letters/retry-all", "/api/jobs/cancel",
                   "/api/dead-letters/retry", "/api/dead-letters/delete"]
PUBLIC_GET = ["/health", "/login", "/static/app.css", "/static/favicon.svg"]
PUBLIC_PROBES = ["/ready"]  # open too, but 503 until a worker runs (test_dashboard_observability.py)


def fill(path: str, populated: Populated) -> str:
    return path.format(job=populated["dead"][0], pending=populated["pending"][0], dead=populated["dead"][0],
                       workflow=populated["workflow"][0])


def snapshot(queue: Queue) -> tuple[object, ...]:
    return queue.stats(), queue.paused_queues(), [job.id for job in queue.list_jobs(limit=100)]


def test_the_route_lists_here_cover_every_route_of_the_app(queue: Queue) -> None:
    """So that a new route cannot be added without these tests covering it."""
    app = create_app(queue)
    listed = GET_ROUTES + MUTATING_ROUTES + PUBLIC_GET + PUBLIC_PROBES + ["/logout"]
    for route in app.router.routes:
        concrete = [path for path in listed
                    if route.pattern.match(path.format(job="j", pending="p", dead="d", workflow="w"))]
        assert concrete, f"route {route.pattern.pattern} is not exercised by the security tests"


# -- with a token ------------------------------------------------------------------------------
@pytest.fixture
def guarded(make_client) -> DashClient:
    return make_client(token=TOKEN)


@pytest.mark.parametrize("path", GET_ROUTES)
def test_token_protects_every_page_and_api_call(guarded: DashClient, populated: Populated, path: str) -> None:
    response = guarded.get(fill(path, populated))
    if path == "/":
        assert response.status_code == 303 and response.headers["Location"] == "login"
        return
    assert response.status_code == 401
    assert "needs its token" in response.get_data(as_text=True) or path.startswith("/static")
    if path.startswith("/api") or path == "/metrics":
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="taskito"'
        assert response.json["status"] == 401


@pytest.mark.parametrize("path", MUTATING_ROUTES + ["/logout"])
def test_token_protects_every_state_changing_call(guarded: DashClient, queue: Queue, populated: Populated,
                                                  path: str) -> None:
    before = snapshot(queue)
    response = guarded.post(fill(path, populated), csrf=False)
    assert response.status_code == 401
    assert snapshot(queue) == before


@pytest.mark.parametrize("path", GET_ROUTES)
def test_bearer_token_opens_every_get_route(guarded: DashClient, populated: Populated, path: str) -> None:
    assert guarded.get(fill(path, populated), headers=BEARER).status_code == 200


@pytest.mark.parametrize("header", [f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN[:-1]}"])
def test_a_wrong_or_malformed_authorization_header_is_refused(guarded: DashClient, header: str) -> None:
    assert guarded.get("/api/stats", headers={"Authorization": header}).status_code == 401


def test_scripts_with_the_bearer_token_need_no_csrf_token(guarded: DashClient, queue: Queue) -> None:
    response = guarded.post("/api/queues/mail/pause", csrf=False, headers=BEARER)
    assert response.status_code == 200
    assert queue.paused_queues() == ["mail"]


def test_public_endpoints_stay_reachable_without_the_token(guarded: DashClient) -> None:
    for path in PUBLIC_GET:
        assert guarded.get(path).status_code == 200, path
    assert guarded.get("/health").json == {"status": "ok"}  # and says nothing else


def test_login_form_sets_a_strict_httponly_session_cookie(guarded: DashClient, queue: Queue) -> None:
    page = guarded.get("/login")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert b'<form method="post" action="login">' in page.get_data()

    wrong = guarded.http.post("/login", data={"token": "guess"})
    assert wrong.status_code == 401
    assert b"That token is not right" in wrong.get_data()
    assert not wrong.headers.getlist("Set-Cookie")
    assert guarded.get("/api/stats").status_code == 401

    right = guarded.http.post("/login", data={"token": TOKEN})
    assert right.status_code == 303 and right.headers["Location"] == "./"
    cookies = {c.split("=", 1)[0]: c for c in right.headers.getlist("Set-Cookie")}
    session = cookies["taskito_session"]
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/"):
        assert attribute in session
    assert TOKEN not in session  # a random session id, not the token
    assert "HttpOnly" in cookies["taskito_csrf"]

    assert guarded.get("/api/stats").status_code == 200
    assert guarded.get("/").status_code == 200
    assert guarded.get("/login").status_code == 303  # already signed in: back to the page

    refused = guarded.post("/api/queues/mail/pause", csrf=False)
    assert refused.status_code == 403 and "CSRF" in refused.json["error"]
    assert queue.paused_queues() == []
    assert guarded.post("/api/queues/mail/pause").status_code == 200
    assert queue.paused_queues() == ["mail"]

    assert guarded.post("/logout").json == {"signed_out": True}
    assert guarded.get("/api/stats").status_code == 401


def test_login_page_does_not_reflect_what_was_typed(guarded: DashClient) -> None:
    response = guarded.http.post("/login", data={"token": SCRIPT_ARG})
    assert response.status_code == 401
    assert b"__pwned" not in response.get_data()


def test_a_forged_csrf_pair_is_refused_when_a_token_is_set(guarded: DashClient, queue: Queue) -> None:
    """Someone able to plant cookies still cannot make a CSRF token: it is signed with the dashboard token."""
    assert guarded.http.post("/login", data={"token": TOKEN}).status_code == 303
    guarded.http.set_cookie("taskito_csrf", "planted")
    response = guarded.post("/api/queues/mail/pause", csrf=False, headers={"X-CSRF-Token": "planted"})
    assert response.status_code == 403
    assert queue.paused_queues() == []


def test_without_a_token_there_is_no_login(client: DashClient) -> None:
    assert client.get("/login").status_code == 303
    assert client.http.post("/login", data={"token": "x"}).status_code == 303
    assert client.get("/").status_code == 200


def test_the_token_can_come_from_the_environment(queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    from werkzeug.test import Client

    monkeypatch.setenv("TASKITO_DASHBOARD_TOKEN", TOKEN)
    http = Client(create_app(queue))
    assert http.get("/api/stats").status_code == 401
    assert http.get("/api/stats", headers=BEARER).status_code == 200
    assert Client(create_app(queue, token="explicit-wins")).get("/api/stats", headers=BEARER).status_code == 401
    monkeypatch.setenv("TASKITO_DASHBOARD_TOKEN", "  ")  # set but empty: no token
    assert Client(create_app(queue)).get("/api/stats").status_code == 200


def test_a_token_read_from_a_file_with_its_newline_still_works(queue: Queue) -> None:
    from werkzeug.test import Client

    http = Client(create_app(queue, token=TOKEN + "\n"))
    assert http.get("/api/stats", headers=BEARER).status_code == 200
    assert http.post("/login", data={"token": TOKEN}).status_code == 303


# -- sessions and guessing ---------------------------------------------------------------------------
def sign_in(app: object, client: str = "127.0.0.1") -> str:
    """The session cookie value a successful sign-in from ``client`` sets."""
    from werkzeug.test import Client

    response = Client(app).post("/login", data={"token": TOKEN}, environ_base={"REMOTE_ADDR": client})
    assert response.status_code == 303, response.get_data(as_text=True)
    [value] = [c.split(";")[0].split("=", 1)[1] for c in response.headers.getlist("Set-Cookie")
               if c.startswith("taskito_session=")]
    return value


def with_session(app: object, session: str, path: str = "/api/stats") -> int:
    """The status of a request that carries only ``session`` (as a copied cookie would)."""
    from werkzeug.test import Client

    http = Client(app)
    http.set_cookie("taskito_session", session)
    return http.get(path).status_code


def test_each_sign_in_gets_its_own_random_session(queue: Queue) -> None:
    app = create_app(queue, token=TOKEN)
    first, second = sign_in(app), sign_in(app)
    assert first != second and len(first) >= 32
    assert with_session(app, first) == with_session(app, second) == 200
    assert with_session(app, first[:-1] + ("A" if first[-1] != "A" else "B")) == 401


def test_a_session_copied_before_sign_out_is_refused_after_it(queue: Queue) -> None:
    app = create_app(queue, token=TOKEN)
    stolen = sign_in(app)
    other = sign_in(app)
    client = DashClient(app)
    client.http.set_cookie("taskito_session", stolen)
    assert client.post("/logout").json == {"signed_out": True}
    assert with_session(app, stolen) == 401
    assert with_session(app, stolen, "/") == 303  # back to the login form
    assert with_session(app, other) == 200  # another sign-in goes on


def test_a_session_from_before_a_token_change_is_refused(queue: Queue) -> None:
    """A new token means a new dashboard (a restart, or a new create_app): no session carries over."""
    session = sign_in(create_app(queue, token=TOKEN))
    assert with_session(create_app(queue, token="a-brand-new-token-9"), session) == 401
    assert with_session(create_app(queue, token=TOKEN), session) == 401  # nor does a restart with the same one


def test_a_session_expires_after_its_ttl(queue: Queue) -> None:
    app = create_app(queue, token=TOKEN, session_ttl=1.0)
    from werkzeug.test import Client

    response = Client(app).post("/login", data={"token": TOKEN})
    assert "Max-Age=1" in [c for c in response.headers.getlist("Set-Cookie") if "taskito_session" in c][0]
    session = sign_in(app)
    assert with_session(app, session) == 200
    wait_until(lambda: with_session(app, session) == 401, timeout=5, message="the session to expire")
    assert with_session(app, sign_in(app)) == 200  # signing in again works


def test_the_session_ttl_setting(queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    assert create_app(queue, token=TOKEN).session_ttl == 12 * 3600
    monkeypatch.setenv("TASKITO_DASHBOARD_SESSION_TTL", "90")
    assert create_app(queue, token=TOKEN).session_ttl == 90
    assert create_app(queue, token=TOKEN, session_ttl=5).session_ttl == 5  # the argument wins
    monkeypatch.setenv("TASKITO_DASHBOARD_SESSION_TTL", "soon")
    with pytest.raises(ConfigurationError, match="TASKITO_DASHBOARD_SESSION_TTL='soon'"):
        create_app(queue, token=TOKEN)
    with pytest.raises(ValueError, match=r"session_ttl must be greater than 0 \(seconds\), got 0"):
        create_app(queue, token=TOKEN, session_ttl=0)


def test_guessing_the_token_is_throttled_per_client(queue: Queue) -> None:
    from werkzeug.test import Client

    app = create_app(queue, token=TOKEN)
    kept = sign_in(app, "10.0.0.1")
    guesser = Client(app)
    attacker = {"REMOTE_ADDR": "10.0.0.1"}
    for n in range(5):
        response = guesser.post("/login", data={"token": f"guess-{n}"}, environ_base=attacker)
        assert response.status_code == 401, n
    throttled = guesser.post("/login", data={"token": "guess-5"}, environ_base=attacker)
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["Retry-After"]) <= 60
    assert b"Too many wrong tokens" in throttled.get_data()
    # While locked out even the right token is not looked at: guessing cannot go on at full speed.
    right = guesser.post("/login", data={"token": TOKEN}, environ_base=attacker)
    assert right.status_code == 429 and not right.headers.getlist("Set-Cookie")
    bearer = guesser.get("/api/stats", headers=BEARER, environ_base=attacker)
    assert bearer.status_code == 429 and "Retry-After" in bearer.headers and "try again" in bearer.json["error"]
    # Other clients, and a session signed in before, are not affected.
    assert with_session(app, kept) == 200
    assert sign_in(app, "10.0.0.2")
    assert guesser.get("/api/stats", headers=BEARER, environ_base={"REMOTE_ADDR": "10.0.0.3"}).status_code == 200


def test_guessing_with_the_bearer_header_is_throttled_too(queue: Queue) -> None:
    from werkzeug.test import Client

    http = Client(create_app(queue, token=TOKEN))
    for n in range(5):
        assert http.get("/api/stats", headers={"Authorization": f"Bearer guess-{n}"}).status_code == 401
    response = http.get("/api/stats", headers={"Authorization": "Bearer guess-5"})
    assert response.status_code == 429 and 0 < int(response.headers["Retry-After"]) <= 60
    assert http.post("/login", data={"token": TOKEN}).status_code == 429


def test_a_lockout_ends(queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    from werkzeug.test import Client

    from taskito.dashboard.app import _Throttle

    monkeypatch.setattr(_Throttle, "LOCKOUT", 0.3)
    http = Client(create_app(queue, token=TOKEN))
    for n in range(6):
        http.post("/login", data={"token": f"guess-{n}"})
    assert http.get("/api/stats", headers=BEARER).status_code == 429
    wait_until(lambda: http.get("/api/stats", headers=BEARER).status_code == 200, timeout=5,
               message="the lockout to end")


@pytest.mark.parametrize("token", ["", "   "])
def test_an_empty_token_is_a_clear_error(queue: Queue, token: str) -> None:
    with pytest.raises(ValueError, match="token must be a non-empty string"):
        create_app(queue, token=token)


# -- CSRF without a token -------------------------------------------------------------------------
@pytest.mark.parametrize("path", MUTATING_ROUTES)
def test_state_changing_calls_need_the_csrf_token(client: DashClient, queue: Queue, populated: Populated,
                                                  path: str) -> None:
    before = snapshot(queue)
    no_header = client.post(fill(path, populated), csrf=False)
    assert no_header.status_code == 403 and "CSRF" in no_header.json["error"]
    client.csrf()  # now the browser holds the cookie...
    mismatch = client.post(fill(path, populated), csrf=False, headers={"X-CSRF-Token": "something-else"})
    assert mismatch.status_code == 403  # ...but the header must match it
    assert snapshot(queue) == before


def test_a_cross_site_form_post_is_refused(client: DashClient, queue: Queue) -> None:
    client.csrf()
    response = client.http.post("/api/queues/default/pause", data={"x": "1"})  # what a hostile page can send
    assert response.status_code == 403
    assert queue.paused_queues() == []


@pytest.mark.parametrize("path", ["/api/queues/default/pause", "/login"])
def test_posts_a_browser_marks_cross_site_are_refused(make_client, queue: Queue, path: str) -> None:
    guarded = make_client(token=TOKEN)
    response = guarded.http.post(path, data={"token": TOKEN}, headers={**BEARER, "Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403 and "cross-site" in response.get_data(as_text=True)
    assert queue.paused_queues() == [] and not response.headers.getlist("Set-Cookie")
    same = guarded.http.post("/api/queues/default/pause", headers={**BEARER, "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 200


def test_a_csrf_header_without_the_cookie_is_refused(queue: Queue) -> None:
    from werkzeug.test import Client

    fresh = Client(create_app(queue), use_cookies=False)
    response = fresh.post("/api/queues/default/pause", headers={"X-CSRF-Token": "abc"})
    assert response.status_code == 403
    assert queue.paused_queues() == []


# -- read-only --------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", MUTATING_ROUTES)
def test_read_only_refuses_every_state_changing_call(make_client, queue: Queue, populated: Populated,
                                                     path: str) -> None:
    before = snapshot(queue)
    plain = make_client(read_only=True)
    response = plain.post(fill(path, populated))
    assert response.status_code == 403 and "read-only" in response.json["error"]
    guarded = make_client(read_only=True, token=TOKEN)
    assert guarded.post(fill(path, populated), csrf=False, headers=BEARER).status_code == 403
    assert snapshot(queue) == before


@pytest.mark.parametrize("path", GET_ROUTES)
def test_read_only_still_shows_everything(make_client, populated: Populated, path: str) -> None:
    assert make_client(read_only=True).get(fill(path, populated)).status_code == 200


# -- headers and escaping ----------------------------------------------------------------------------
def test_security_headers_on_every_response(make_client, queue: Queue, populated: Populated, monkeypatch) -> None:
    open_client = make_client()
    guarded = make_client(token=TOKEN)
    responses = {
        "page": open_client.get("/"),
        "script": open_client.get("/static/app.js"),
        "api": open_client.get("/api/stats"),
        "metrics": open_client.get("/metrics"),
        "health": open_client.get("/health"),
        "404": open_client.get("/nope"),
        "405": open_client.post("/api/stats"),
        "403": open_client.post("/api/queues/default/pause", csrf=False),
        "401": guarded.get("/api/stats"),
        "redirect": guarded.get("/"),
        "login": guarded.get("/login"),
        "static 304": open_client.get("/static/app.css",
                                      headers={"If-None-Match": open_client.get("/static/app.css").headers["ETag"]}),
    }
    monkeypatch.setattr(queue, "workers", lambda: 1 / 0)
    responses["500"] = open_client.get("/api/workers")
    assert responses["500"].status_code == 500 and responses["static 304"].status_code == 304
    for name, response in responses.items():
        csp = response.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp, name
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, name
        assert response.headers.get("X-Frame-Options") == "DENY", name
        assert response.headers.get("X-Content-Type-Options") == "nosniff", name
        assert response.headers.get("Referrer-Policy") == "no-referrer", name


def test_the_page_has_no_inline_script_and_never_parses_job_values_as_html() -> None:
    static = resources.files("taskito.dashboard").joinpath("static")
    for page in ("index.html", "login.html"):
        html = static.joinpath(page).read_text()
        scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S)
        assert all(not body.strip() for body in scripts), f"inline script in {page}"
        assert all("src=" in tag for tag in re.findall(r"<script\b[^>]*>", html))
        assert not re.search(r"\son\w+\s*=", html), f"inline event handler in {page}"
        assert "http://" not in html and "https://" not in html, f"{page} fetches something from the internet"
    script = static.joinpath("app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, f"app.js uses {sink}"
    assert "https://" not in script and "http://www.w3.org/2000/svg" in script  # the SVG namespace, not a fetch


def test_job_values_travel_as_json_data(client: DashClient, populated: Populated) -> None:
    response = client.get(f"/api/jobs/{populated['pending'][1]}")
    assert response.mimetype == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.json["args"] == [SCRIPT_ARG]


def test_static_files_cannot_escape_their_folder(client: DashClient) -> None:
    for path in ("/static/../app.py", "/static/..%2Fapp.py", "/static/nope.js", "/static/index.html",
                 "/static/login.html"):
        assert client.get(path).status_code == 404, path
    script = client.get("/static/app.js")
    assert script.mimetype == "text/javascript" and script.headers["Cache-Control"] == "no-cache"
