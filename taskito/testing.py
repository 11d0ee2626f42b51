"""Helpers for your own test suites: run tasks inline, or run what was enqueued, then return."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from .queue import Queue

_FINISHED = ("completed", "dead", "cancelled")


@contextmanager
def eager(queue: Queue) -> Iterator[Queue]:
    """Run tasks inline at enqueue time inside the block (``Queue(eager=True)`` for a while)."""
    previous = queue.eager
    queue.eager = True
    try:
        yield queue
    finally:
        queue.eager = previous


def run_jobs(queue: Queue, queues: Sequence[str] | None = None, concurrency: int = 1) -> int:
    """Run every due job in this process, as a real worker would, and return how many finished.

    Like a worker, it serves ``queues``, or else the queues the registered tasks use plus ``default``.

    Unlike eager mode the jobs go through the database (retries, dependencies, hooks and
    ``current_job`` behave as in production). It returns once nothing is due; a retry
    scheduled for later stays for a later call.
    """
    before = queue.stats()
    queue.run_worker(queues=queues, concurrency=concurrency, burst=True)
    after = queue.stats()
    return sum(after[key] - before[key] for key in _FINISHED)
