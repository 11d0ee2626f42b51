"""Tasks: the decorated function, its options, and signatures (a call waiting to be sent)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .exceptions import InvalidValueError
from .validation import shown

if TYPE_CHECKING:
    from .queue import Queue
    from .result import JobResult

_RATE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_rate_limit(rate: str | None) -> float | None:
    """Turn "10/s", "100/m" or "1000/h" into jobs per second."""
    if rate is None:
        return None
    try:
        count, unit = str(rate).split("/")
        per_second = float(count) / _RATE_UNITS[unit.strip().lower()[:1]]
    except (ValueError, KeyError, IndexError):
        raise InvalidValueError(
            f"invalid rate_limit {shown(rate)}: use '<count>/s', '<count>/m' or '<count>/h'") from None
    if not 0 < per_second < math.inf:  # NaN fails this too
        raise InvalidValueError(f"invalid rate_limit {shown(rate)}: the count must be a finite number above 0")
    return per_second


@dataclass(frozen=True)
class TaskOptions:
    name: str
    queue: str
    priority: int
    max_retries: int
    retry_backoff: float
    timeout: float | None
    soft_timeout: float | None
    expires: float | None
    retry_on: tuple[type[BaseException], ...] | None
    dont_retry_on: tuple[type[BaseException], ...]
    rate_limit: float | None  # jobs per second, per worker

    def should_retry(self, error: BaseException) -> bool:
        if isinstance(error, self.dont_retry_on):
            return False
        return self.retry_on is None or isinstance(error, self.retry_on)


class TaskWrapper:
    """What ``@queue.task`` returns: still callable directly, plus ``delay`` and friends."""

    def __init__(self, queue: Queue, fn: Callable[..., Any], options: TaskOptions) -> None:
        self.queue = queue
        self.fn = fn
        self.options = options
        self.name = options.name
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<task {self.name}>"

    def delay(self, *args: Any, **kwargs: Any) -> JobResult:
        """Enqueue with the task's default options."""
        return self.apply_async(args=args, kwargs=kwargs)

    def apply_async(self, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None, *,
                    priority: int | None = None, delay: float | None = None, queue: str | None = None,
                    max_retries: int | None = None, timeout: float | None = None,
                    unique_key: str | None = None, expires: float | None = None,
                    depends_on: str | JobResult | Iterable[str | JobResult] | None = None) -> JobResult:
        """Enqueue with per-call overrides; ``delay`` and ``expires`` are seconds from now."""
        return self.queue.enqueue(
            self.name, args=args, kwargs=kwargs, priority=priority, delay=delay, queue=queue,
            max_retries=max_retries, timeout=timeout, unique_key=unique_key, expires=expires,
            depends_on=depends_on,
        )

    def map(self, args_list: Iterable[Sequence[Any]], **options: Any) -> list[JobResult]:
        """Enqueue one job per argument tuple, all or none (see ``Queue.enqueue_many``: read as written)."""
        return self.queue.enqueue_many(self.name, (tuple(args) for args in args_list), **options)

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A call to send later: ``add.s(2, 3).delay()``."""
        return Signature(self, args, kwargs)


@dataclass(frozen=True)
class Signature:
    task: TaskWrapper
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] | None = None

    def delay(self) -> JobResult:
        return self.task.apply_async(args=self.args, kwargs=self.kwargs)

    def apply_async(self, **options: Any) -> JobResult:
        return self.task.apply_async(args=self.args, kwargs=self.kwargs, **options)
