"""Autodiscovered by taskito_django (TASKITO_AUTODISCOVER_MODULE = "tasks")."""

import asyncio

from django.db import connection

from djapp import jobs  # noqa: F401  (the app's Django tasks: imported at startup, so workers know them)
from djapp.apps import record
from djapp.models import Order
from taskito import current_job
from taskito_django import queue

DISCOVERED = True


@queue.task()
def add(a: int, b: int) -> int:
    return a + b


@queue.task(max_retries=0)
def explode(message: str) -> None:
    raise ValueError(message)


@queue.task(queue="reports")
def report(name: str) -> str:
    return f"report {name}"


@queue.task()
def mark_paid(order_id: int) -> str:
    Order.objects.filter(pk=order_id).update(status="paid")
    record(f"paid {order_id} {current_job.id}")
    return Order.objects.get(pk=order_id).status


@queue.task()
def use_database() -> int:
    return Order.objects.count()


@queue.task()
def connection_was_closed() -> bool:
    """True when the worker closed this thread's connection after the previous task."""
    return connection.connection is None


@queue.task()
async def async_add(a: int, b: int) -> int:
    """A coroutine task: the Django worker runs it on its event loop."""
    await asyncio.sleep(0.01)
    return a + b
