"""When a failed attempt is retried: exponential backoff with jitter, capped."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ..options import JobOptions
from ..storage import JobRecord

if TYPE_CHECKING:
    from ..queue import Queue

MAX_BACKOFF = 3600.0


def apply_task_defaults(queue: Queue, record: JobRecord) -> JobRecord:
    """Fill what the enqueuer left to the task (jobs enqueued by name): max_retries and timeout."""
    task = queue.tasks.get(record.task_name)
    if record.max_retries is None:
        record.max_retries = task.options.max_retries if task else queue.default_retry
    if record.timeout is None:
        record.timeout = task.options.timeout if task else queue.default_timeout
    return record


def retry_delay(record: JobRecord, options: JobOptions | None, error: BaseException | None) -> float | None:
    """Seconds until the next attempt, or None when the job should go dead.

    ``error`` is None for failures that are not exceptions (timeouts, lost workers);
    those always retry while attempts remain.
    """
    if record.retry_count >= record.max_retries:
        return None
    if error is not None and options is not None and not options.should_retry(error):
        return None
    base = options.retry_backoff if options is not None else 1.0
    # The exponent is capped: 2.0 ** 1024 overflows, and max_retries may be far above that.
    delay = min(base * 2.0 ** min(record.retry_count, 32), MAX_BACKOFF)
    return delay * random.uniform(0.5, 1.5)
