"""The app the benchmark's worker processes run; settings come from TASKITO_* variables."""

import os
import time

from taskito import Queue

queue = Queue()


@queue.task()
def noop() -> None:
    return None


@queue.task()
def tick() -> None:
    """A no-op that appends one byte to $BENCH_MARKER: the harness counts finished jobs by the file's
    size, which costs nothing however large the table is."""
    fd = os.open(os.environ["BENCH_MARKER"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, b"x")
    finally:
        os.close(fd)


@queue.task()
def step(value: int) -> int:
    """A chain step of the workflow benchmark."""
    return value + 1


@queue.task()
def count(values: list[object]) -> int:
    """A chord's callback in the workflow benchmark: how many members it heard from."""
    return len(values)


@queue.task()
def io_wait() -> None:
    """An I/O-bound job (10 ms waiting, as for a network call): threads should run these side by side."""
    time.sleep(0.01)
