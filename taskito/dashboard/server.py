"""Serve the dashboard with the standard library: a wsgiref server with a bounded set of threads.

Good for the dashboard's load (a few people and a Prometheus scraper). Behind
gunicorn or inside a web app, use the WSGI app from ``create_app`` instead.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import queue
import re
import selectors
import signal
import socket
import sys
import threading
import time
from typing import Any, cast
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from .http import MAX_BODY

logger = logging.getLogger("taskito.dashboard.server")
access_logger = logging.getLogger("taskito.dashboard.access")


MAX_HEAD = 64 * 1024  # request line and headers; wsgiref refuses longer lines itself
_CONTENT_LENGTH = re.compile(rb"^content-length:[ \t]*(\d+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)


def _request_complete(data: bytes | bytearray) -> bool:
    """Whether ``data`` holds a whole request (head, and body up to MAX_BODY), or more than is ever waited for."""
    if len(data) > MAX_HEAD + MAX_BODY:
        return True
    for blank_line in (b"\r\n\r\n", b"\n\n"):
        end = data.find(blank_line)
        if end >= 0:
            length = _CONTENT_LENGTH.search(data, 0, end)
            body = len(data) - end - len(blank_line)
            return body >= min(int(length.group(1)) if length else 0, MAX_BODY)
    return len(data) > MAX_HEAD


class DashboardServer(WSGIServer):
    """A WSGI server whose thread count stays bounded whatever clients do.

    A connection costs no thread while its request arrives: one thread watches them all (a
    selector) and collects each request whole (head, and a body of up to MAX_BODY), closing
    connections that have not sent it within ``request_timeout`` seconds; at most ``max_waiting``
    wait at once, the oldest dropped first. Only then does one of at most ``max_threads`` threads
    run the app on it, with ``request_timeout`` on writing the response. So idle and slow clients
    cannot pile up threads or hold them, and a normal request is still answered.
    """

    RequestHandlerClass: type[_RequestHandler]  # also given the request's bytes (see serve_request)
    max_threads = 16
    max_waiting = 256  # well under the usual 1024 open files, so accept() never runs out of them
    request_timeout = 10.0
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._ready: queue.SimpleQueue[tuple[socket.socket, Any, bytes] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = threading.Semaphore(0)  # one count per thread waiting for a request
        self._lock = threading.Lock()
        self._waiting = _WaitingRoom(self)
        super().__init__(*args, **kwargs)  # last: a failed bind calls server_close(), which needs the above

    # socketserver calls these -----------------------------------------------------------------
    def process_request(self, request: Any, client_address: Any) -> None:
        """Let the new connection's request arrive in the waiting room (socketserver's hook, after accept)."""
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
    def serve_request(self, request: socket.socket, client_address: Any, received: bytes) -> None:
        """Hand a connection whose request has arrived to a thread (a new one only while all are busy)."""
        self._ready.put((request, client_address, received))
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
            request, client_address, received = item
            try:
                request.settimeout(self.request_timeout)
                self.RequestHandlerClass(request, client_address, self, received)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)
            self._idle.release()


class _Arriving:
    """A connection whose request is still coming in."""

    __slots__ = ("client_address", "data", "deadline")

    def __init__(self, client_address: Any, deadline: float) -> None:
        self.client_address = client_address
        self.deadline = deadline
        self.data = bytearray()


class _WaitingRoom:
    """The connections of a DashboardServer whose request is arriving, watched by one thread."""

    def __init__(self, server: DashboardServer) -> None:
        self.server = server
        self._selector = selectors.DefaultSelector()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        self._selector.register(self._wake_reader, selectors.EVENT_READ)
        self._arrivals: queue.SimpleQueue[tuple[socket.socket, Any]] = queue.SimpleQueue()
        self._arriving: dict[socket.socket, _Arriving] = {}  # in arrival order, so in deadline order
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
        except OSError:
            pass  # a wake-up is pending already (the buffer is full), or we are closing

    def _watch(self) -> None:
        try:
            while not self._closed.is_set():
                timeout = None
                if self._arriving:
                    timeout = max(0.0, next(iter(self._arriving.values())).deadline - time.monotonic())
                for key, _ in self._selector.select(timeout):
                    if key.fileobj is self._wake_reader:
                        self._drain_wake_ups()
                    else:
                        self._receive(cast(socket.socket, key.fileobj))  # the wake-up pipe aside, only sockets
                self._admit()
                self._expire()
        finally:
            for request in list(self._arriving):
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
            if len(self._arriving) >= self.server.max_waiting:
                logger.debug("dashboard: %d connections are waiting: dropping the oldest", len(self._arriving))
                self._drop(next(iter(self._arriving)))
            try:
                request.setblocking(False)
                self._selector.register(request, selectors.EVENT_READ)
            except (OSError, ValueError):
                self.server.shutdown_request(request)
                continue
            self._arriving[request] = _Arriving(client_address, time.monotonic() + self.server.request_timeout)

    def _receive(self, request: socket.socket) -> None:
        arriving = self._arriving[request]
        try:
            chunk = request.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:  # the client went away
            self._drop(request)
            return
        arriving.data += chunk
        if _request_complete(arriving.data):
            self._selector.unregister(request)
            del self._arriving[request]
            self.server.serve_request(request, arriving.client_address, bytes(arriving.data))

    def _expire(self) -> None:
        now = time.monotonic()
        while self._arriving:
            request, arriving = next(iter(self._arriving.items()))
            if arriving.deadline > now:
                return
            logger.debug("dashboard: %s sent no whole request within %ss: closing", arriving.client_address[0],
                         self.server.request_timeout)
            self._drop(request)

    def _drop(self, request: socket.socket) -> None:
        self._arriving.pop(request, None)
        try:
            self._selector.unregister(request)
        except (KeyError, ValueError):
            pass
        self.server.shutdown_request(request)


class DashboardServer6(DashboardServer):
    address_family = socket.AF_INET6


class _RequestHandler(WSGIRequestHandler):
    """Reads the request the waiting room collected; sends the access log to ``taskito.dashboard.access``."""

    def __init__(self, request: socket.socket, client_address: Any, server: DashboardServer,
                 received: bytes) -> None:
        self.received = received
        super().__init__(request, client_address, server)

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the request is here already: no thread ever waits on the client's sending
        self.rfile = io.BytesIO(self.received)

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
