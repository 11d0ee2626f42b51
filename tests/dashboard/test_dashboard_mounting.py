"""Serving the dashboard: as a plain WSGI callable (what gunicorn runs), inside Flask, and from the CLI."""

from __future__ import annotations

import json
import re
import signal
import socket
import textwrap
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.cookiejar import CookieJar
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from taskito import Queue
from taskito.dashboard import create_app, is_loopback
from tests.dashboard.conftest import Populated
from tests.support import TASKITO, Process, run_cli, start_worker, wait_until

TOKEN = "mount-test-token-0123456789"

APP_SOURCE = textwrap.dedent('''
    import os
    from taskito import Queue

    queue = Queue(db_path=os.environ["TASKITO_DB_PATH"], workers=2)

    @queue.task(name="demo.add")
    def add(a, b):
        return a + b

    @queue.task(name="demo.fail", max_retries=0)
    def fail():
        raise ValueError("nope")
''')


def fetch(url: str, method: str = "GET", headers: dict[str, str] | None = None,
          opener: urllib.request.OpenerDirector | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers=headers or {},
                                     data=b"{}" if method == "POST" else None)
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


# -- a plain WSGI callable (gunicorn: `gunicorn 'myproject.dashboard:app'`) ------------------------------
def test_served_as_a_plain_wsgi_app_by_a_real_server(dashboard_server, queue: Queue, populated: Populated) -> None:
    server = dashboard_server(create_app(queue))
    jar = CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    status, headers, body = fetch(server.url + "/", opener=browser)
    assert status == 200 and b'<script src="static/app.js" defer></script>' in body
    assert headers["X-Frame-Options"] == "DENY"
    status, _, body = fetch(server.url + "/api/stats")
    assert json.loads(body)["stats"] == queue.stats()

    _, _, body = fetch(server.url + "/api/session", opener=browser)
    csrf = json.loads(body)["csrf_token"]
    status, _, body = fetch(server.url + "/api/queues/mail/pause", "POST",
                            {"X-CSRF-Token": csrf, "Content-Type": "application/json"}, opener=browser)
    assert status == 200, body
    assert queue.paused_queues() == ["mail"]

    # threaded: parallel requests are all answered
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: fetch(server.url + "/api/jobs?limit=5")[0], range(16)))
    assert statuses == [200] * 16


def test_the_app_follows_the_wsgi_spec(queue: Queue, populated: Populated) -> None:
    """wsgiref's validator checks every PEP 3333 rule (header types, status line, iterable body...)."""
    from wsgiref.validate import validator

    from werkzeug.test import Client

    http = Client(validator(create_app(queue, token=TOKEN)))
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    for path in ("/", "/static/app.js", "/api/stats", f"/api/jobs/{populated['dead'][0]}", "/metrics", "/health",
                 "/nope", "/login"):
        http.get(path).close()
        http.get(path, headers=bearer).close()
    http.post("/api/queues/mail/pause", headers=bearer).close()
    http.post("/login", data={"token": TOKEN}).close()
    assert queue.paused_queues() == ["mail"]


# -- Flask, via werkzeug's DispatcherMiddleware ------------------------------------------------------------
@pytest.fixture
def flask_app(queue: Queue) -> Flask:
    app = Flask("shop")

    @app.get("/")
    def home() -> str:
        return "the shop"

    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/ops/taskito": create_app(queue, token=TOKEN)})
    return app


def test_mounted_in_flask_with_dispatcher_middleware(flask_app: Flask, queue: Queue, populated: Populated) -> None:
    http = flask_app.test_client()
    assert http.get("/").get_data(as_text=True) == "the shop"

    bare = http.get("/ops/taskito")
    assert bare.status_code == 308 and bare.headers["Location"].endswith("/ops/taskito/")
    first = http.get("/ops/taskito/")
    assert first.status_code == 303 and first.headers["Location"] == "login"  # relative: stays under the mount
    assert http.get("/ops/taskito/login").status_code == 200
    assert http.get("/ops/taskito/api/stats").status_code == 401

    signed_in = http.post("/ops/taskito/login", data={"token": TOKEN})
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "./"
    assert all("Path=/ops/taskito/" in c for c in signed_in.headers.getlist("Set-Cookie"))

    page = http.get("/ops/taskito/")
    assert page.status_code == 200 and b'href="static/app.css"' in page.get_data()
    assert http.get("/ops/taskito/static/app.js").status_code == 200
    assert http.get("/ops/taskito/api/stats").json["stats"] == queue.stats()

    csrf = http.get("/ops/taskito/api/session").json["csrf_token"]
    assert http.post("/ops/taskito/api/queues/mail/pause", json={}).status_code == 403
    paused = http.post("/ops/taskito/api/queues/mail/pause", json={}, headers={"X-CSRF-Token": csrf})
    assert paused.status_code == 200 and queue.paused_queues() == ["mail"]
    retried = http.post(f"/ops/taskito/api/dead-letters/{populated['dead'][0]}/retry", json={},
                        headers={"X-CSRF-Token": csrf})
    assert retried.status_code == 200 and queue.get_job(retried.json["new_id"]).status == "pending"

    # the session cookie belongs to the mount, not to the rest of the site
    assert "taskito_session" not in (http.get("/").request.headers.get("Cookie") or "")


# -- the taskito dashboard command ---------------------------------------------------------------------------
@pytest.fixture
def project(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "dash_app.py").write_text(APP_SOURCE)
    return {"TASKITO_DB_PATH": str(tmp_path / "taskito.db"), "TASKITO_LEASE_SECONDS": "2",
            "TASKITO_DASHBOARD_TOKEN": ""}


def start_dashboard(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[Process, str]:
    process = Process([TASKITO, "dashboard", "--app", "dash_app:queue", "--port", "0", *args], cwd=tmp_path, env=env)
    line = process.wait_for_line("serving on http://")
    port = re.search(r":(\d+)/", line.split("serving on ", 1)[1]).group(1)
    return process, f"http://127.0.0.1:{port}"


def test_cli_serves_the_dashboard_and_stops_cleanly(tmp_path: Path, project: dict[str, str]) -> None:
    queue = Queue(db_path=project["TASKITO_DB_PATH"])
    queue.enqueue("demo.add", args=(1, 2))
    process, url = start_dashboard(tmp_path, project)
    try:
        assert "(no token)" in process.output and "warning" not in process.output
        status, headers, body = fetch(url + "/")
        assert status == 200 and b"taskito dashboard" in body
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert json.loads(fetch(url + "/api/stats")[2])["stats"]["pending"] == 1
        assert json.loads(fetch(url + "/health")[2]) == {"status": "ok"}
    finally:
        process.signal(signal.SIGINT)
    assert process.wait() == 0
    assert "Traceback" not in process.output


def thread_count(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Threads:\s+(\d+)", status, re.MULTILINE).group(1))


def test_idle_and_slow_connections_do_not_pile_up_threads(tmp_path: Path, project: dict[str, str]) -> None:
    """200 clients that connect and say nothing, and 50 that send half a request, hold no thread each,
    and a real request is still answered at once."""
    process, url = start_dashboard(tmp_path, project)
    port = int(url.rsplit(":", 1)[1])
    idle: list[socket.socket] = []
    try:
        assert fetch(url + "/health")[0] == 200
        before = thread_count(process.proc.pid)
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(250)]
        for sock in idle[200:]:
            sock.sendall(b"GET /api/stats HTTP/1.0\r\nHost: x\r\n")  # ... and the headers never end
        started = time.monotonic()
        status, _, body = fetch(url + "/api/stats")  # accepted after the others: they are all in by now
        assert status == 200 and json.loads(body)["stats"]["pending"] == 0
        assert time.monotonic() - started < 3, "the request waited for threads held by slow clients"
        assert thread_count(process.proc.pid) <= before + 17, "each idle connection got a thread"
        for sock in idle[:20]:  # the server still holds them open (dropped only after its request timeout)
            sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")
            assert sock.recv(1024).startswith(b"HTTP/1.0 200")
    finally:
        for sock in idle:
            sock.close()
        process.stop()


def test_idle_and_slow_clients_are_dropped_after_the_request_timeout(queue: Queue, dashboard_server) -> None:
    live = dashboard_server(create_app(queue))
    live.server.request_timeout = 0.3
    port = live.server.server_port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as idle, \
            socket.create_connection(("127.0.0.1", port), timeout=5) as slow:
        slow.sendall(b"GET /health HTTP/1.0\r\nHost: x\r\n")  # the headers never end
        for sock in (idle, slow):
            assert sock.recv(1024) == b""  # closed by the server (a timeout here fails the test)
        assert fetch(live.url + "/health")[0] == 200


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.10", False), ("dashboard.internal", False),
])
def test_which_hosts_count_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_cli_on_every_interface_without_token_warns(tmp_path: Path, project: dict[str, str]) -> None:
    process, url = start_dashboard(tmp_path, project, "--host", "0.0.0.0")
    try:
        assert fetch(url + "/health")[0] == 200
        process.wait_for_line("warning: the dashboard listens on 0.0.0.0 without a token")
    finally:
        process.signal(signal.SIGTERM)  # what `docker stop` sends
    assert process.wait() == 0


def test_cli_token_from_the_environment_protects_everything(tmp_path: Path, project: dict[str, str]) -> None:
    env = {**project, "TASKITO_DASHBOARD_TOKEN": TOKEN}
    process, url = start_dashboard(tmp_path, env, "--host", "0.0.0.0", "--read-only")
    try:
        assert "(token required, read-only)" in process.output
        assert "warning" not in process.output
        assert fetch(url + "/api/stats")[0] == 401
        assert fetch(url + "/api/stats", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
        status, _, body = fetch(url + "/api/queues/default/pause", "POST", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 403 and b"read-only" in body
    finally:
        process.stop()
    assert Queue(db_path=project["TASKITO_DB_PATH"]).paused_queues() == []


def test_cli_bad_app_and_busy_port_are_one_line_errors(tmp_path: Path, project: dict[str, str]) -> None:
    bad = run_cli("dashboard", "--app", "nowhere:queue", cwd=tmp_path, env=project)
    assert bad.returncode == 2 and "no module named 'nowhere'" in bad.stderr and "Traceback" not in bad.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        busy = run_cli("dashboard", "--app", "dash_app:queue", "--port", port, cwd=tmp_path, env=project)
    assert busy.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in busy.stderr and "Traceback" not in busy.stderr


def test_dashboard_shows_a_real_worker_and_its_work(tmp_path: Path, project: dict[str, str], dashboard_server) -> None:
    """A worker subprocess runs jobs; the dashboard (another process's view of the same file) sees it all."""
    queue = Queue(db_path=project["TASKITO_DB_PATH"])
    worker = start_worker("dash_app:queue", tmp_path, env=project)
    try:
        server = dashboard_server(create_app(queue))
        jobs = [queue.enqueue("demo.add", args=(n, n)) for n in range(5)]
        failing = queue.enqueue("demo.fail")
        assert [job.result(timeout=20) for job in jobs] == [0, 2, 4, 6, 8]
        wait_until(lambda: queue.get_job(failing.id).status == "dead", 20, message="the failing job to die")

        workers = json.loads(fetch(server.url + "/api/workers")[2])["workers"]
        assert len(workers) == 1 and workers[0]["pid"] == worker.proc.pid
        assert workers[0]["hostname"] == socket.gethostname()
        points = json.loads(fetch(server.url + "/api/throughput?window=60&step=10")[2])["points"]
        assert sum(p["completed"] for p in points) == 5 and sum(p["dead"] for p in points) == 1
        metrics = fetch(server.url + "/metrics")[2].decode()
        assert 'taskito_task_completions{task="demo.add"} 5' in metrics
        assert 'taskito_task_failures{task="demo.fail"} 1' in metrics
        assert 'taskito_task_runtime_seconds_count{task="demo.add"} 5' in metrics
        assert "taskito_workers 1" in metrics
        dead = json.loads(fetch(server.url + "/api/dead-letters")[2])["jobs"]
        assert [job["id"] for job in dead] == [failing.id] and "nope" in dead[0]["error"]
    finally:
        worker.stop()
