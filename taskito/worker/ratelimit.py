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

    def acquire(self) -> None:
        """Block the calling thread until a token is free."""
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_second)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) / self.per_second
            time.sleep(wait)
