"""Django Tasks (django.tasks / django_tasks) run by the TaskitoBackend."""

import time

from taskito_django import compat

if compat.SOURCE == "django.tasks":
    from django.tasks import task
else:
    from django_tasks import task


@task()
def multiply(a: int, b: int) -> int:
    return a * b


@task(priority=5, queue_name="emails")
def send_email(to: str) -> dict:
    return {"sent_to": to}


@task()
def broken(message: str) -> None:
    raise KeyError(message)


@task(takes_context=True)
def attempt_number(context) -> int:
    return context.attempt


@task()
async def async_double(x: int) -> int:
    return x * 2


@task()
def slow(seconds: float) -> str:
    time.sleep(seconds)
    return "done"
