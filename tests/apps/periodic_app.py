"""A queue with a periodic task firing every second, for the scheduler tests."""

from __future__ import annotations

from taskito import Queue

queue = Queue()


@queue.periodic(cron="* * * * * *")
def tick() -> str:
    return "tick"
