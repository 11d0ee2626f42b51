"""SIGINT and SIGTERM in a worker process: the first drains, a second stops at once.

A worker command installs ``StopSignals`` on its first line, before the ``--app`` module is
imported and the database reached; the worker then takes over that same instance. So a
signal is never lost, nor fatal, at any point of start-up: until the worker runs there is
nothing to drain, and the signal ends the start-up at once (``StartupInterrupted``), which
the command reports as a clean stop (exit status 0).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

logger = logging.getLogger("taskito.worker")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StartupInterrupted(BaseException):
    """SIGINT/SIGTERM arrived while the worker was starting.

    A BaseException so that the ``except Exception`` of the code being imported lets it through.
    """


class StopSignals:
    """The stop requests of one worker process: ``stop`` (drain) and ``force`` (stop at once)."""

    _installed: StopSignals | None = None  # the instance whose handlers are in place, if any

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.force = threading.Event()
        self._drain_timeout: float | None = None  # set once the worker runs; None while it starts
        self._previous: dict[int, Any] = {}

    @classmethod
    def for_worker(cls) -> StopSignals:
        """The instance a worker command installed in this thread, else a fresh one (a worker run from Python)."""
        installed = cls._installed
        if installed is not None and threading.current_thread() is threading.main_thread():
            return installed
        return cls()

    def __enter__(self) -> StopSignals:
        """Take SIGINT/SIGTERM (only the main thread can; elsewhere the caller's handlers stay)."""
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._on_signal) for sig in SIGNALS}
            StopSignals._installed = self
        return self

    def __exit__(self, *_: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if StopSignals._installed is self:
            StopSignals._installed = None

    @contextmanager
    def running(self, drain_timeout: float) -> Iterator[None]:
        """While the worker runs: a first signal asks for a drain of up to ``drain_timeout`` seconds."""
        self._drain_timeout = drain_timeout
        if StopSignals._installed is self:
            yield
        else:
            with self:
                yield

    def _on_signal(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if self._drain_timeout is None:  # still starting: nothing runs, nothing to drain
            if not self.stop.is_set():  # once: a second signal must not interrupt the unwinding
                self.stop.set()
                raise StartupInterrupted(name)
            return
        if self.stop.is_set():
            logger.warning("%s again: stopping now, putting running jobs back", name)
            self.force.set()
        else:
            logger.info("%s received: finishing running jobs (up to %gs), then stopping; "
                        "send it again to stop at once", name, self._drain_timeout)
            self.stop.set()
