"""Tasks of a Django project: the core TaskWrapper plus enqueueing when the transaction commits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from django.db import transaction

from taskito.task import TaskWrapper

if TYPE_CHECKING:
    from taskito.result import JobResult


class DjangoTaskWrapper(TaskWrapper):
    """What ``@taskito_django.queue.task()`` returns: ``delay`` and friends, plus ``*_on_commit``.

    A job enqueued with ``delay`` inside ``transaction.atomic()`` can be picked up by a
    worker before the rows it refers to are committed (or after they were rolled back).
    The ``_on_commit`` variants enqueue only once the transaction commits, never when it
    rolls back, and at once outside a transaction (autocommit).
    """

    def delay_on_commit(self, *args: Any, **kwargs: Any) -> None:
        """``delay(*args, **kwargs)`` when the current transaction (default database) commits."""
        self.apply_async_on_commit(args=args, kwargs=kwargs)

    def apply_async_on_commit(self, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None, *,
                              using: str | None = None, priority: int | None = None, delay: float | None = None,
                              queue: str | None = None, max_retries: int | None = None,
                              timeout: float | None = None, unique_key: str | None = None,
                              expires: float | None = None,
                              depends_on: str | JobResult | Iterable[str | JobResult] | None = None) -> None:
        """``apply_async(...)`` when the transaction on database ``using`` commits.

        Returns None: there is no job until the commit. Arguments that the queue cannot
        serialize, and negative options, fail here at once rather than at commit time.
        """
        options = {"priority": priority, "delay": delay, "queue": queue, "max_retries": max_retries,
                   "timeout": timeout, "unique_key": unique_key, "expires": expires, "depends_on": depends_on}
        if self.queue.eager:
            self.queue.encode_payload(self.name, args, kwargs)  # same errors now as without eager

            def send() -> None:
                self.apply_async(args=args, kwargs=kwargs, **options)
        else:
            job = self.queue.prepare_job(self.name, args, kwargs, **options)

            def send() -> None:
                self.queue.write_jobs([job])

        transaction.on_commit(send, using=using)
