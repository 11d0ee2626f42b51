"""Per-task rate limits (token buckets), enforced per worker process like Celery's."""

from __future__ import annotations

import threading
import time


class TokenBucket:
    def __init__(self, per_second: float) -> None:
        self.per_second = per_second
        # Capacity one: jobs are spaced 1/rate apart, never a burst above the limit.
        self.capacity = 1.0
        self.tokens = 1.0
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> float:
        """Seconds until a token is free (0: one is), taking nothing."""
        with self.lock:
            now = time.monotonic()
            tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_second)
            return 0.0 if tokens >= 1 else (1 - tokens) / self.per_second

    def try_acquire(self) -> float:
        """Take a token and return 0, or return the seconds until one is free (taking nothing).

        Never blocks: a job waiting for its token stays queued in the pool, so the wait does not
        count towards its timeout and other tasks' jobs start meanwhile.
        """
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_second)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.per_second
