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


@task()
def noop(*args, **kwargs) -> None:
    return None


@task()
async def noop_async(*args, **kwargs) -> None:
    return None


class Halt(BaseException):
    """Not an Exception: a task may still raise it."""


@task()
def raise_named(kind: str) -> None:
    errors = {"value": ValueError("failed due to ValueError"), "exit": SystemExit("failed due to SystemExit"),
              "halt": Halt("failed due to Halt"), "interrupt": KeyboardInterrupt("failed due to KeyboardInterrupt")}
    raise errors[kind]


@task()
def unserializable_result():
    return lambda: True


@task(takes_context=True)
def own_id(context) -> str:
    return context.task_result.id


@task(takes_context=True)
def fail_first_attempt(context) -> int:
    if context.attempt == 1:
        raise RuntimeError("first attempt fails")
    return context.attempt
