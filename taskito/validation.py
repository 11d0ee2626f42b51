"""Checks of the options users pass: a clear ValueError naming the bad value, before anything is written.

Both engines must see the same, well-typed values: a priority of "high" once stalled every
SQLite claim, a NaN delay parked a PostgreSQL job forever.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

PRIORITY_RANGE = (-(2**31), 2**31 - 1)  # PostgreSQL integer


def seconds(name: str, value: Any) -> float | None:
    """A finite, non-negative number of seconds (or None)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of seconds, zero or more, got {value!r}")
    return float(value)


def timeout(name: str, value: Any) -> float | None:
    """A hard timeout: finite seconds greater than zero (or None: the task's, else the queue's default).

    Zero is refused rather than read as "no timeout": a job must never be able to hold a worker
    slot for ever by accident.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number of seconds greater than 0, got {value!r}; there is "
                         "no 'no timeout': leave it unset for the default, or give a long one (e.g. 86400)")
    return float(value)


def count(name: str, value: Any) -> int | None:
    """A whole number, zero or more (or None)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a whole number, zero or more, got {value!r}")
    return int(value)


def priority(name: str, value: Any) -> int | None:
    """A whole number that fits PostgreSQL's integer (or None); higher runs first."""
    if value is None:
        return None
    low, high = PRIORITY_RANGE
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high} (higher runs first), got {value!r}")
    return int(value)


def text(name: str, value: Any) -> str | None:
    """A non-empty string (or None): queue names, unique keys."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value
