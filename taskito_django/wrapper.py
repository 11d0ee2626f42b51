"""Tasks of a Django project: the core TaskWrapper plus enqueueing when the transaction commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from taskito.task import TaskWrapper


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
                              using: str | None = None, **options: Any) -> None:
        """``apply_async(...)`` (the same options) when the transaction on database ``using`` commits.

        Returns None: there is no job until the commit. Arguments that the queue cannot
        serialize, and bad options, fail here at once rather than at commit time.
        """
        job = self.queue.prepare_job(self.name, args, kwargs, **options)

        def send() -> None:
            self.queue.enqueue_prepared(job)

        transaction.on_commit(send, using=using)
