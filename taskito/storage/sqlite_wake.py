"""Wake a waiting thread when a SQLite database's folder is written to (Linux inotify).

Every commit in WAL mode writes the ``-wal`` file, so an idle worker, or a caller waiting for a result,
can sleep in ``select()`` until something is written instead of polling ``PRAGMA data_version`` in short
steps: it sees a commit as soon as it is made, and costs nothing meanwhile. Where inotify is missing (not
Linux, or the process is out of inotify instances) ``open_wake`` returns None and the caller polls.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import select
from pathlib import Path
from typing import Any

logger = logging.getLogger("taskito.storage.sqlite")

_IN_MODIFY = 0x00000002
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC


class FolderWake:
    """An inotify descriptor that becomes readable when a file of one folder is modified."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def wait(self, timeout: float) -> bool:
        """Sleep until a file of the folder is written (True) or ``timeout`` passes (False)."""
        readable, _, _ = select.select([self._fd], [], [], max(timeout, 0.0))
        if not readable:
            return False
        try:
            while os.read(self._fd, 65536):  # the events themselves do not matter: take them all
                pass
        except BlockingIOError:
            pass
        return True

    def close(self) -> None:
        os.close(self._fd)


@functools.cache
def _inotify() -> tuple[Any, Any] | None:
    """libc's inotify_init1 and inotify_add_watch, looked up once (a result waiter opens a wake per wait)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.inotify_init1, libc.inotify_add_watch
    except (OSError, AttributeError, TypeError):  # no C library to load, or no inotify in it
        return None


def open_wake(database: Path) -> FolderWake | None:
    """A wake for writes to ``database``'s folder (its ``-wal`` file among them), or None where unavailable."""
    calls = _inotify()
    if calls is None:
        return None
    init, add_watch = calls
    fd = init(_IN_NONBLOCK | _IN_CLOEXEC)
    if fd < 0:
        logger.debug("no inotify for %s (%s): waiters poll", database, os.strerror(ctypes.get_errno()))
        return None
    if add_watch(fd, os.fsencode(database.parent), _IN_MODIFY) < 0:
        logger.debug("cannot watch %s (%s): waiters poll", database.parent, os.strerror(ctypes.get_errno()))
        os.close(fd)
        return None
    return FolderWake(fd)
