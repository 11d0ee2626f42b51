"""The quickstart's tasks: what a real app's ``tasks.py`` looks like."""

from __future__ import annotations

from taskito import Queue, current_job

# The database lives in ./.taskito/taskito.db unless TASKITO_DB_PATH says otherwise.
queue = Queue()


@queue.task()
def add(a: int, b: int) -> int:
    return a + b


@queue.task(max_retries=3, retry_backoff=0.2)
def flaky_fetch(url: str) -> str:
    """Fails on its first attempt (a network blip), succeeds on the retry."""
    if current_job.retry_count == 0:
        raise ConnectionError(f"could not reach {url}")
    return f"fetched {url} on attempt {current_job.retry_count + 1}"


@queue.task(max_retries=2, retry_backoff=0.1)
def charge_card(card: str) -> None:
    """Always fails: after its retries it becomes a dead letter you can inspect and replay."""
    raise ValueError(f"card {card} was declined")


@queue.task()
def total(numbers: list[int]) -> int:
    """A chord's callback: it gets the list of its group's results."""
    return sum(numbers)


@queue.task()
def send_reminder(user: str) -> str:
    return f"reminded {user}"


@queue.periodic(cron="*/2 * * * * *")
def heartbeat() -> str:
    """Runs every two seconds (6-field cron, seconds first), once per tick however many workers run."""
    return "alive"
