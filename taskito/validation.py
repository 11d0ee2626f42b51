"""Checks of the values users pass: an InvalidValueError naming the bad value, before anything is written.

Both engines must see the same, well-typed values, and neither may be the one to complain: a
priority of "high" once stalled every SQLite claim, a NaN delay parked a PostgreSQL job forever,
a NaN lease kept a killed worker's jobs running for ever, and a NUL in a name or an integer wider
than a database column came back as a driver error from one engine and not the other.
"""

from __future__ import annotations

import numbers
import re
from typing import Any, overload

from .exceptions import InvalidValueError

INT_RANGE = (-(2**31), 2**31 - 1)  # PostgreSQL integer: priority, max_retries, counts
# Longer waits are mistakes (a 2**70 s delay), and Python's own waits overflow not far above this.
MAX_SECONDS = 10 * 365 * 86400
# Task, queue and periodic names and unique keys are indexed: PostgreSQL refuses index rows over
# about 2700 bytes, and 255 characters are at most 1020 bytes of UTF-8.
MAX_NAME_LENGTH = 255
MAX_CONCURRENCY = 10_000  # threads or child processes of one worker
_JOB_ID = re.compile(r"[0-9a-f]{32}")


def shown(value: Any, limit: int = 100) -> str:
    """``repr(value)`` short enough for an error message (a 1 MB name is shown by its start and length)."""
    try:
        text = repr(value)
    except ValueError:  # an int too long for str() (sys.get_int_max_str_digits)
        return f"an integer of {value.bit_length()} bits"
    if len(text) <= limit:
        return text
    length = f", {len(value)} characters" if isinstance(value, str) else ""
    return f"{text[:limit]}...{text[-1]} ({type(value).__name__}{length})"


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@overload
def seconds(name: str, value: float, *, positive: bool = False) -> float: ...


@overload
def seconds(name: str, value: float | None, *, positive: bool = False) -> float | None: ...


def seconds(name: str, value: Any, *, positive: bool = False) -> float | None:
    """A finite number of seconds from 0 (or above 0, with ``positive``) to ten years, or None.

    Comparisons, not ``float()``, decide: they hold for NaN and for integers too wide for a float.
    """
    if value is None:
        return None
    if not _is_number(value) or value != value or value in (float("inf"), float("-inf")):
        raise InvalidValueError(f"{name} must be a finite number of seconds, got {shown(value)}")
    if positive and not value > 0:
        raise InvalidValueError(f"{name} must be greater than 0 (seconds), got {shown(value)}")
    if value < 0:
        raise InvalidValueError(f"{name} must be a finite number of seconds, zero or more, got {shown(value)}")
    if value > MAX_SECONDS:
        raise InvalidValueError(f"{name} must be at most {MAX_SECONDS} seconds (ten years), got {shown(value)}")
    return float(value)


def timeout(name: str, value: Any) -> float | None:
    """A hard timeout: finite seconds greater than zero, at most ten years (or None: the task's, else
    the queue's default).

    Zero is refused rather than read as "no timeout": a job must never be able to hold a worker
    slot for ever by accident.
    """
    if value is None:
        return None
    if not _is_number(value) or value != value or not 0 < value <= MAX_SECONDS:
        raise InvalidValueError(f"{name} must be a finite number of seconds greater than 0, got {shown(value)}; "
                                "there is no 'no timeout': leave it unset for the default, or give a long one "
                                f"(e.g. 86400, at most {MAX_SECONDS})")
    return float(value)


@overload
def count(name: str, value: int, *, minimum: int = 0, maximum: int = INT_RANGE[1]) -> int: ...


@overload
def count(name: str, value: int | None, *, minimum: int = 0, maximum: int = INT_RANGE[1]) -> int | None: ...


def count(name: str, value: Any, *, minimum: int = 0, maximum: int = INT_RANGE[1]) -> int | None:
    """A whole number from ``minimum`` to ``maximum`` (by default what a database integer holds), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidValueError(f"{name} must be a whole number, got {shown(value)}")
    number = int(value)  # numbers.Integral declares no comparison operators: compare the int
    if number < minimum:
        least = "zero" if minimum == 0 else minimum
        raise InvalidValueError(f"{name} must be a whole number, {least} or more, got {shown(value)}")
    if number > maximum:
        raise InvalidValueError(f"{name} must be at most {maximum}, got {shown(value)}")
    return number


def concurrency(name: str, value: Any, *, minimum: int = 1) -> int | None:
    """Worker threads or processes: a whole number up to MAX_CONCURRENCY (or None)."""
    return count(name, value, minimum=minimum, maximum=MAX_CONCURRENCY)


def priority(name: str, value: Any) -> int | None:
    """A whole number that fits PostgreSQL's integer (or None); higher runs first."""
    if value is None:
        return None
    low, high = INT_RANGE
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= int(value) <= high:
        raise InvalidValueError(
            f"{name} must be a whole number from {low} to {high} (higher runs first), got {shown(value)}")
    return int(value)


def percent(name: str, value: Any) -> float:
    """A number from 0 to 100 (NaN is neither)."""
    if not _is_number(value) or not 0 <= value <= 100:
        raise InvalidValueError(f"{name} must be a number between 0 and 100, got {shown(value)}")
    return float(value)


def name_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a task, queue or periodic name or a unique key (None: it can).

    Both engines must store and index it alike: PostgreSQL text refuses NUL, neither driver can
    encode a lone surrogate (e.g. from undecodable bytes in a file name), and index rows are limited.
    """
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters (it has {len(value)})"
    if "\x00" in value:
        return "must not contain NUL characters ('\\x00')"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode text: it has a lone surrogate (e.g. from bytes that are not UTF-8)"
    return None


@overload
def name(what: str, value: str) -> str: ...


@overload
def name(what: str, value: str | None) -> str | None: ...


def name(what: str, value: Any) -> str | None:
    """A task, queue or periodic name or a unique key (or None); InvalidValueError says what is wrong."""
    if value is None:
        return None
    problem = name_problem(value)
    if problem:
        raise InvalidValueError(f"{what} {problem}, got {shown(value)}")
    return value


def is_job_id(value: Any) -> bool:
    """Whether a string can be a job id (32 lowercase hex characters): lookups of other strings find nothing.

    Anything but a string is a mistake in the calling code (a JobResult for its ``.id``): InvalidValueError.
    """
    if not isinstance(value, str):
        raise InvalidValueError(f"a job id is a string (a JobResult's .id), got {type(value).__name__} {shown(value)}")
    return _JOB_ID.fullmatch(value) is not None


JOB_ID_PREFIX_MAX = 32
_JOB_ID_PREFIX = re.compile(rf"[0-9a-f]{{1,{JOB_ID_PREFIX_MAX}}}")


def job_id_prefix(value: Any, what: str = "id_prefix") -> str:
    """The start of a job id, as a search for it is written: 1 to 32 hex digits (any case, stored lowercase)."""
    if not isinstance(value, str) or not _JOB_ID_PREFIX.fullmatch(value.strip().lower()):
        raise InvalidValueError(f"{what} must be the start of a job id, 1 to {JOB_ID_PREFIX_MAX} hex digits "
                                f"(0-9, a-f), got {shown(value)}")
    return value.strip().lower()


SEARCH_TEXT_MAX = 200


def search_text(value: Any, what: str = "text") -> str:
    """Text to find in jobs' arguments or errors: 1 to SEARCH_TEXT_MAX characters, no NUL."""
    if not isinstance(value, str) or not value or len(value) > SEARCH_TEXT_MAX or "\x00" in value:
        raise InvalidValueError(f"{what} must be 1 to {SEARCH_TEXT_MAX} characters without NUL, got {shown(value)}")
    return value


SCHEMA_MAX = 58  # PostgreSQL's 63-byte identifiers, minus the "_work"/"_done" of taskito's channel names
_SCHEMA_RE = re.compile(r"[a-z_][a-z0-9_]*")


def schema(value: Any) -> str:
    """A PostgreSQL schema name: only a plain lowercase identifier, since it is spliced into LISTEN and search_path."""
    if not isinstance(value, str) or not _SCHEMA_RE.fullmatch(value) or len(value) > SCHEMA_MAX:
        raise InvalidValueError(
            f"schema {shown(value)} is not a plain identifier: use lowercase letters, digits and "
            f"underscores, not starting with a digit, at most {SCHEMA_MAX} characters (e.g. 'taskito')"
        )
    if value == "information_schema" or value.startswith("pg_"):
        raise InvalidValueError(
            f"schema {value!r} is one of PostgreSQL's own: choose a name of taskito's (e.g. 'taskito')")
    return value
