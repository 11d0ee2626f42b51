"""What the test apps' tasks leave behind for the tests to count: lines in $EFFECTS_DIR/effects.log, and
marker files beside it. The apps run in worker processes, so a file is the one record every process shares."""

import os
from pathlib import Path

EFFECTS = Path(os.environ.get("EFFECTS_DIR", "."))


def effect(line: str) -> None:
    # O_APPEND writes of one short line are atomic, even across processes.
    fd = os.open(EFFECTS / "effects.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)
