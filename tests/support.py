"""Helpers shared by the test suites: real worker subprocesses and polling with deadlines."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

TASKITO = str(Path(sys.executable).with_name("taskito"))


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02,
               message: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class Process:
    """A CLI subprocess whose stderr/stdout lines are collected as they arrive."""

    def __init__(self, args: Sequence[str], cwd: str | os.PathLike[str], env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.args = list(args)
        self.proc = subprocess.Popen(self.args, cwd=cwd, env=full_env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float = 20.0) -> str:
        def found() -> str | None:
            if self.proc.poll() is not None and not any(text in line for line in self.lines):
                self._reader.join(2)
                raise AssertionError(f"process exited ({self.proc.returncode}) before printing {text!r}:\n"
                                     f"{self.output}")
            return next((line for line in self.lines if text in line), None)

        return wait_until(found, timeout, message=f"{text!r} in the output of {self.args}")

    def signal(self, signum: int = signal.SIGINT) -> None:
        self.proc.send_signal(signum)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def wait(self, timeout: float = 30.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def start_worker(app: str, cwd: str | os.PathLike[str], *extra: str, env: dict[str, str] | None = None,
                 ready: bool = True) -> Process:
    """Start ``taskito worker --app app`` and wait until it says it started."""
    process = Process([TASKITO, "worker", "--app", app, *extra], cwd=cwd, env=env)
    if ready:
        process.wait_for_line("started:")
    return process


def run_cli(*args: str, cwd: str | os.PathLike[str], env: dict[str, str] | None = None,
            timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TASKITO, *args], cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout)


@contextmanager
def database_locked(settings: dict[str, str]) -> Iterator[None]:
    """Hold the write lock of a test's database (``engine_settings`` or ``engine_env``) inside the block:
    every write waits meanwhile (SQLite: an exclusive transaction; PostgreSQL: the jobs table locked)."""
    db_path = settings.get("db_path") or settings.get("TASKITO_DB_PATH")
    if db_path:
        import sqlite3

        lite = sqlite3.connect(db_path, isolation_level=None)
        lite.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            lite.execute("ROLLBACK")
            lite.close()
        return
    import psycopg

    schema = settings.get("schema") or settings["TASKITO_SCHEMA"]
    with psycopg.connect(settings.get("db_url") or settings["TASKITO_DB_URL"]) as conn:
        conn.execute(f'LOCK TABLE "{schema}".taskito_jobs IN ACCESS EXCLUSIVE MODE')
        try:
            yield
        finally:
            conn.rollback()


CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def headless_chromium(profile_dir: str | os.PathLike[str], what: str) -> Any:
    """A selenium driver for Debian's headless Chromium; fails (never skips) when it is missing."""
    import pytest

    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    if missing:
        pytest.fail(f"{what} needs headless Chromium, but {', '.join(missing)} is missing: install the Debian "
                    "packages with `apt-get install -y chromium chromium-driver` (.ci/run does this)",
                    pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-dev-shm-usage", "--window-size=1400,1100", f"--user-data-dir={profile_dir}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver


def wait_in_browser(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = 15) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition, f"timed out waiting for {what}")


def jobs_in_database_file(db: str | os.PathLike[str], status: str) -> int:
    """Jobs of ``status`` in a SQLite database file itself, not counting its WAL (what checkpoints copied
    there); -1 while that cannot be read (no table there yet, or a page caught mid-write)."""
    try:
        with closing(sqlite3.connect(f"file:{os.fspath(db)}?immutable=1", uri=True)) as conn:
            return conn.execute("SELECT count(*) FROM taskito_jobs WHERE status = ?", (status,)).fetchone()[0]
    except sqlite3.DatabaseError:
        return -1
