"""Imported only when TASKITO_AUTODISCOVER_MODULE = "extra_tasks"."""

from taskito_django import queue


@queue.task()
def extra() -> str:
    return "extra"
