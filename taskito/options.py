"""Job options, declared once: the one schema carried from ``@task`` and ``apply_async`` to the job row.

Each option is a field of ``JobOptions`` whose metadata says where it may be given (on the
task, per call, or both), how it is checked, where its default comes from and which column
of the job row holds it. The decorator, ``apply_async``/``enqueue``, the on-commit variants,
eager mode and both engines' row builders all read this table, so a new option is a new
field here, its column in the SQL, and its tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from . import validation
from .exceptions import InvalidValueError, JobNotFoundError
from .validation import shown

if TYPE_CHECKING:
    from .queue import Queue

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


def _rate_limit(name: str, value: Any) -> float | None:
    return parse_rate_limit(value)


def _max_concurrent(name: str, value: Any) -> int | None:
    return validation.count(name, value, minimum=1)


def _concurrency_key(name: str, value: Any) -> str | Callable[..., Any] | None:
    """A key (one cap per key), or on ``@task`` a function of the job's arguments that returns it."""
    if callable(value):
        return value
    return validation.name(name, value)


def concurrency_key_of(task_name: str, key: Any, args: Any, kwargs: Any) -> str | None:
    """A job's concurrency key: ``key`` itself, or what the task's key function returns for these arguments."""
    if not callable(key):
        return key
    try:
        value = key(*args, **(kwargs or {}))
    except Exception as exc:
        raise InvalidValueError(f"the concurrency_key function of task {task_name!r} raised {exc!r} for args "
                                f"{shown(args)} and kwargs {shown(kwargs)}; make it accept the task's "
                                "arguments") from exc
    if value is None:
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise InvalidValueError(f"the concurrency_key function of task {task_name!r} returned {shown(value)}: "
                                "it must return a string (or None for no key)")
    return validation.name("concurrency_key", str(value))


def _exceptions(name: str, value: Any) -> tuple[type[BaseException], ...] | None:
    return tuple(value) if value else None


def job_ids(name: str, depends_on: Any) -> tuple[str, ...]:
    """Job ids from one id or JobResult, or a list of them."""
    from .eager import EagerResult  # both import this module (through storage): imported when first needed
    from .result import JobResult

    if depends_on is None:
        return ()
    results = (JobResult, EagerResult)
    if isinstance(depends_on, (str, *results)):
        depends_on = [depends_on]
    try:
        items = list(depends_on)
    except TypeError:
        items = [depends_on]
    for item in items:
        if not isinstance(item, (str, *results)) or item == "":
            raise InvalidValueError(
                f"{name} takes job ids or JobResults (one, or a list), got {validation.shown(item)}")
        if isinstance(item, str) and not validation.is_job_id(item):
            raise JobNotFoundError(f"{name} names {validation.shown(item)}, which is not a job id (32 hex digits)")
    return tuple(item if isinstance(item, str) else item.id for item in items)


@dataclass(frozen=True)
class Option:
    """What the schema knows about one option (the metadata of a ``JobOptions`` field)."""

    check: Callable[[str, Any], Any]  # (name, value) -> the value to keep; InvalidValueError names it
    on_task: bool = True  # may be given to @task, as the default of the task's jobs
    per_call: bool = True  # may be given to apply_async / enqueue / map, for one call
    setting: str | None = None  # the Queue attribute that holds its default (e.g. "default_priority")
    default: Any = None  # else this default
    by_name: bool = True  # False: left None for a task this process does not know (its worker decides)
    column: str | None = None  # the job row's column that stores it
    relative: bool = False  # seconds from now, stored as a time (now + value)
    replayed: bool = True  # a dead letter's replay (retry_dead) keeps its value


def _option(check: Callable[[str, Any], Any], *, default: Any = None, **meta: Any) -> Any:
    return field(default=default if isinstance(default, tuple) else None,
                 metadata={"taskito": Option(check, default=default, **meta)})


@dataclass(kw_only=True)
class JobOptions:
    """Every option a job can carry; None means unset (the task's, else the queue's default applies)."""

    queue: str | None = _option(validation.name, default="default", column="queue")
    priority: int | None = _option(validation.priority, setting="default_priority", default=0, column="priority")
    max_retries: int | None = _option(validation.count, setting="default_retry", by_name=False,
                                      column="max_retries")
    timeout: float | None = _option(validation.timeout, setting="default_timeout", by_name=False, column="timeout")
    expires: float | None = _option(validation.seconds, column="expires_at", relative=True, replayed=False)
    delay: float | None = _option(validation.seconds, on_task=False, default=0.0, column="scheduled_at",
                                  relative=True, replayed=False)
    unique_key: str | None = _option(validation.name, on_task=False, column="unique_key", replayed=False)
    depends_on: tuple[str, ...] = _option(job_ids, on_task=False, default=())
    retry_backoff: float | None = _option(validation.seconds, per_call=False, default=1.0)
    soft_timeout: float | None = _option(validation.seconds, per_call=False)
    retry_on: tuple[type[BaseException], ...] | None = _option(_exceptions, per_call=False)
    dont_retry_on: tuple[type[BaseException], ...] | None = _option(_exceptions, per_call=False, default=())
    # Jobs per second over the whole cluster: each claim takes time slots from the task's row in the database.
    rate_limit: float | None = _option(_rate_limit, per_call=False)
    # At most this many jobs of the task (of one concurrency_key, when given) held at once over every worker.
    max_concurrent: int | None = _option(_max_concurrent, per_call=False, column="max_concurrent")
    concurrency_key: str | Callable[..., Any] | None = _option(_concurrency_key, column="concurrency_key")

    @classmethod
    def for_task(cls, options: Mapping[str, Any]) -> JobOptions:
        """The options given to ``@task``, checked; unknown or per-call-only names raise TypeError."""
        return cls(**_checked(options, "on_task", "task()"))

    @staticmethod
    def for_call(options: Mapping[str, Any]) -> dict[str, Any]:
        """The options given to one enqueue, checked; only those set (not None) are returned."""
        return _checked(options, "per_call", "apply_async()")

    def resolved(self, queue: Queue | None, known: bool = True) -> JobOptions:
        """These options with every unset one filled: from the queue's settings, else the schema's default.

        ``known=False`` (a task enqueued by name that this process does not declare) leaves the
        options that the worker's own task decides unset.
        """
        values = {}
        for name, option in SCHEMA.items():
            value = getattr(self, name)
            if value is None and (known or option.by_name):
                value = getattr(queue, option.setting) if option.setting and queue is not None else option.default
            values[name] = value
        return JobOptions(**values)

    def values(self) -> dict[str, Any]:
        """Every option by name (what ``NewJob(**...)`` takes)."""
        return {name: getattr(self, name) for name in SCHEMA}

    def should_retry(self, error: BaseException) -> bool:
        if isinstance(error, self.dont_retry_on or ()):
            return False
        return self.retry_on is None or isinstance(error, self.retry_on)


SCHEMA: dict[str, Option] = {item.name: item.metadata["taskito"] for item in fields(JobOptions)}


def compile_row(params: str, extra: Mapping[str, str]) -> Callable[..., dict[str, Any]]:
    """A function ``(options, now, <params>)`` that returns a job row: the options' columns (the schema's
    default for an unset one), then ``extra``'s (column: expression over the parameters, ``options``,
    ``now`` and the columns before it, each bound by its name).

    Written out once as one dict display: it runs for every job enqueued, and that is several times
    faster than a loop over the schema (single enqueue and ``map`` are hot paths)."""
    items = []
    for name, option in SCHEMA.items():
        if option.column is None:
            continue
        value = f"options.{name}"
        if option.default is not None:
            value = f"({value} if {value} is not None else {option.default!r})"
        if option.relative:
            value = f"(None if {value} is None else now + {value})" if option.default is None else f"now + {value}"
        items.append(f"{option.column!r}: ({option.column} := {value})")
    items += [f"{column!r}: {value}" for column, value in extra.items()]
    namespace: dict[str, Any] = {}
    source = f"def row(options, now, {params}):\n    return {{{', '.join(items)}}}"
    exec(source, namespace)  # noqa: S102 - our own text
    return namespace["row"]


def _checked(options: Mapping[str, Any], where: str, caller: str) -> dict[str, Any]:
    checked = {}
    for name, value in options.items():
        option = SCHEMA.get(name)
        if option is None or not getattr(option, where):
            allowed = ", ".join(sorted(key for key, item in SCHEMA.items() if getattr(item, where)))
            raise TypeError(f"{caller} got an unexpected keyword argument {name!r}; its options are: {allowed}")
        if value is not None:
            checked[name] = option.check(name, value)
    return checked


def replayed(record: Any) -> dict[str, Any]:
    """The options a replay of a dead job (``retry_dead``) keeps, read back from its row."""
    return {name: getattr(record, option.column) for name, option in SCHEMA.items()
            if option.column and option.replayed}
