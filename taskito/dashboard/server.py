"""Serve the dashboard with the standard library: a threaded wsgiref server.

Good for the dashboard's load (a few people and a Prometheus scraper). Behind
gunicorn or inside a web app, use the WSGI app from ``create_app`` instead.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

logger = logging.getLogger("taskito.dashboard.server")
access_logger = logging.getLogger("taskito.dashboard.access")


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """One thread per request, so a slow request never holds up the page's refreshes."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


class ThreadingWSGIServer6(ThreadingWSGIServer):
    address_family = socket.AF_INET6


class _RequestHandler(WSGIRequestHandler):
    """Sends the access log to logging (``taskito.dashboard.access``) instead of stderr."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        access_logger.debug("%s %s", self.address_string(), format % args)

    def address_string(self) -> str:
        return str(self.client_address[0])


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def make_server(app: Any, host: str = "127.0.0.1", port: int = 8080) -> ThreadingWSGIServer:
    """Bind (port 0 picks a free port: read ``server.server_port``) without serving yet."""
    server_class = ThreadingWSGIServer6 if ":" in host else ThreadingWSGIServer
    try:
        server = server_class((host.strip("[]"), port), _RequestHandler)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}; "
                                 "pick another --host/--port") from None
    server.set_app(app)
    return server


def serve(app: Any, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then return (a clean stop, exit status 0)."""
    server = make_server(app, host, port)
    serve_until_stopped(server)


def serve_until_stopped(server: ThreadingWSGIServer) -> None:
    """Run ``server`` in this thread; SIGINT/SIGTERM (main thread only) stop it cleanly."""
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        def stop(signum: int, _frame: Any) -> None:
            raise KeyboardInterrupt

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    logger.info("dashboard listening on %s:%s", *server.server_address[:2])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        logger.info("dashboard stopping")
    finally:
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
