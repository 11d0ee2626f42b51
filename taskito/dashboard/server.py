"""Serve the dashboard with the standard library: a wsgiref server with a bounded set of threads.

Good for the dashboard's load (a few people and a Prometheus scraper). Behind
gunicorn or inside a web app, use the WSGI app from ``create_app`` instead.
"""

from __future__ import annotations

import ipaddress
import logging
import queue
import selectors
import signal
import socket
import sys
import threading
import time
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

logger = logging.getLogger("taskito.dashboard.server")
access_logger = logging.getLogger("taskito.dashboard.access")


class DashboardServer(WSGIServer):
    """A WSGI server whose thread count stays bounded whatever clients do.

    An accepted connection costs no thread until its request starts to arrive: it waits in a
    selector, and is closed if nothing comes within ``request_timeout`` seconds (at most
    ``max_waiting`` wait at once, the oldest dropped first). Requests are then served by at most
    ``max_threads`` threads, each socket read or write limited to ``request_timeout``, so a slow
    client is dropped too. A flood of idle connections thus cannot pile up threads, and a normal
    request is still answered.
    """

    max_threads = 16
    max_waiting = 256  # well under the usual 1024 open files, so accept() never runs out of them
    request_timeout = 10.0
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._ready: queue.SimpleQueue[tuple[socket.socket, Any] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = threading.Semaphore(0)  # one count per thread waiting for a connection
        self._lock = threading.Lock()
        self._waiting = _WaitingRoom(self)
        super().__init__(*args, **kwargs)  # last: a failed bind calls server_close(), which needs the above

    # socketserver calls these -----------------------------------------------------------------
    def process_request(self, request: Any, client_address: Any) -> None:
        """Park the new connection until it sends something (socketserver's hook, after accept)."""
        self._waiting.add(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away or was too slow is routine; anything else is logged in full."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            logger.debug("dashboard: connection from %s dropped: %s", client_address[0], error)
        else:
            logger.exception("dashboard: serving %s failed", client_address[0])

    def server_close(self) -> None:
        super().server_close()
        self._waiting.close()
        with self._lock:
            for _ in self._threads:
                self._ready.put(None)

    # the threads ------------------------------------------------------------------------------
    def serve_connection(self, request: socket.socket, client_address: Any) -> None:
        """Hand a connection whose request is arriving to a thread (a new one only while all are busy)."""
        self._ready.put((request, client_address))
        if self._idle.acquire(blocking=False):
            return
        with self._lock:
            if len(self._threads) < self.max_threads:
                thread = threading.Thread(target=self._work, name=f"taskito-dashboard-{len(self._threads) + 1}",
                                          daemon=True)
                self._threads.append(thread)
                thread.start()

    def _work(self) -> None:
        while (item := self._ready.get()) is not None:
            request, client_address = item
            try:
                request.settimeout(self.request_timeout)
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)
            self._idle.release()


class _WaitingRoom:
    """Accepted connections of a DashboardServer waiting for their first bytes, watched by one thread."""

    def __init__(self, server: DashboardServer) -> None:
        self.server = server
        self._selector = selectors.DefaultSelector()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        self._selector.register(self._wake_reader, selectors.EVENT_READ)
        self._arrivals: queue.SimpleQueue[tuple[socket.socket, Any]] = queue.SimpleQueue()
        self._deadlines: dict[socket.socket, tuple[float, Any]] = {}  # in arrival order
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="taskito-dashboard-waiting", daemon=True)
        self._thread.start()

    def add(self, request: socket.socket, client_address: Any) -> None:
        self._arrivals.put((request, client_address))
        self._wake()

    def close(self) -> None:
        self._closed.set()
        self._wake()
        self._thread.join(5)

    def _wake(self) -> None:
        try:
            self._wake_writer.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # a wake-up is pending already, or we are closing

    def _watch(self) -> None:
        try:
            while not self._closed.is_set():
                timeout = None
                if self._deadlines:
                    timeout = max(0.0, next(iter(self._deadlines.values()))[0] - time.monotonic())
                for key, _ in self._selector.select(timeout):
                    if key.fileobj is self._wake_reader:
                        self._drain_wake_ups()
                    else:
                        self._dispatch(key.fileobj)  # type: ignore[arg-type]
                self._admit()
                self._expire()
        finally:
            for request in list(self._deadlines):
                self._drop(request)
            self._selector.close()
            self._wake_reader.close()
            self._wake_writer.close()

    def _drain_wake_ups(self) -> None:
        try:
            while self._wake_reader.recv(4096):
                pass
        except BlockingIOError:
            pass

    def _admit(self) -> None:
        while True:
            try:
                request, client_address = self._arrivals.get_nowait()
            except queue.Empty:
                return
            if len(self._deadlines) >= self.server.max_waiting:
                oldest = next(iter(self._deadlines))
                logger.debug("dashboard: %d connections wait for a request: dropping the oldest",
                             len(self._deadlines))
                self._drop(oldest)
            try:
                self._selector.register(request, selectors.EVENT_READ)
            except (OSError, ValueError):
                self.server.shutdown_request(request)
                continue
            self._deadlines[request] = (time.monotonic() + self.server.request_timeout, client_address)

    def _dispatch(self, request: socket.socket) -> None:
        self._selector.unregister(request)
        _, client_address = self._deadlines.pop(request)
        self.server.serve_connection(request, client_address)

    def _expire(self) -> None:
        now = time.monotonic()
        while self._deadlines:
            request, (deadline, client_address) = next(iter(self._deadlines.items()))
            if deadline > now:
                return
            logger.debug("dashboard: %s sent no request within %ss: closing", client_address[0],
                         self.server.request_timeout)
            self._drop(request)

    def _drop(self, request: socket.socket) -> None:
        self._deadlines.pop(request, None)
        try:
            self._selector.unregister(request)
        except (KeyError, ValueError):
            pass
        self.server.shutdown_request(request)


class DashboardServer6(DashboardServer):
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


def make_server(app: Any, host: str = "127.0.0.1", port: int = 8080) -> DashboardServer:
    """Bind (port 0 picks a free port: read ``server.server_port``) without serving yet."""
    server_class = DashboardServer6 if ":" in host else DashboardServer
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


def serve_until_stopped(server: DashboardServer) -> None:
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
