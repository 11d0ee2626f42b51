"""An app whose PostgreSQL is not up yet: it starts anyway, /health says 503, then 200 once the server is up."""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit

from flask import Flask

from taskito_flask import Taskito
from tests.conftest import PG_URL


class Forwarder:
    """A TCP relay to the test server on a port of its own: "PostgreSQL" is up once it is started."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as probe:  # a port nothing listens on until start()
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._server: socket.socket | None = None
        self._sockets: list[socket.socket] = []

    def start(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        for sock in [*self._sockets, *filter(None, [self._server])]:
            sock.close()


def test_app_starts_without_its_database_and_health_follows_it(pg_schema: str) -> None:
    pg = urlsplit(PG_URL)
    relay = Forwarder((pg.hostname or "127.0.0.1", pg.port or 5432))
    url = pg._replace(netloc=pg.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{relay.port}").geturl()
    ext = Taskito()

    @ext.task(name="down.add")
    def add(a: int, b: int) -> int:
        return a + b

    app = Flask("down")
    app.config.update(TASKITO_BACKEND="postgres", TASKITO_DB_URL=url, TASKITO_SCHEMA=pg_schema)
    ext.init_app(app)  # the database is not reachable: the app is created all the same
    client = app.test_client()
    try:
        for _ in range(2):  # a failed attempt is not remembered: each check tries again
            down = client.get("/taskito/health")
            assert down.status_code == 503 and down.json == {"error": "the taskito database is unavailable",
                                                             "status": "unavailable"}
        assert client.get("/taskito/stats").status_code == 503

        relay.start()
        up = client.get("/taskito/health")
        assert up.status_code == 200 and up.json == {"status": "ok", "workers": 0}
        queue = ext.queue_for(app)
        assert "down.add" in queue.tasks  # the tasks declared before init_app are on the queue built late
        with app.app_context():
            assert add.delay(1, 2).status == "pending"
        assert client.get("/taskito/stats").json["pending"] == 1
        queue.close()
    finally:
        relay.close()
