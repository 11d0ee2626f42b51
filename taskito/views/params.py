"""Reading request parameters: query strings and JSON bodies arrive as plain values and leave checked.

Every check raises ``ViewError(400, ...)`` with a message that names the parameter and the bad value.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .. import validation
from ..exceptions import InvalidValueError
from ..storage import Status
from .errors import ViewError

Params = Mapping[str, Any]
T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_OFFSET = 10**9


def text(params: Params, name: str) -> str | None:
    """A string parameter; empty means absent."""
    value = params.get(name)
    if value is None or value == "":
        return None
    value = str(value)
    if "\x00" in value:  # PostgreSQL text cannot hold it: the caller's mistake
        raise ViewError(400, f"{name} must not contain a NUL character")
    return value


def integer(params: Params, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        shown = validation.shown(raw)
        raise ViewError(400, f"{name} must be a whole number from {low} to {high}, got {shown}") from None
    if not low <= value <= high:
        raise ViewError(400, f"{name} must be from {low} to {high}, got {value}")
    return value


def status(params: Params) -> str | None:
    """The ``status`` filter: one of the six job statuses (or "completed", as stats() names it)."""
    value = text(params, "status")
    try:
        return None if value is None else Status.parse(value)
    except InvalidValueError as exc:
        raise ViewError(400, str(exc)) from None


def ids(params: Params, key: str = "ids") -> list[str]:
    """A JSON body's list of 1 to MAX_LIMIT job ids (strings), each once, in the order given."""
    value = params.get(key)
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_LIMIT or not all(isinstance(v, str) for v in value):
        raise ViewError(400, f"{key} must be a list of 1 to {MAX_LIMIT} job ids (strings) in the JSON body, "
                             f"got {validation.shown(value)}")
    return list(dict.fromkeys(value))


def name(value: str, what: str) -> str:
    """A queue or task name taken from a path."""
    problem = validation.name_problem(value)
    if problem:
        raise ViewError(400, f"{what} {problem}, got {validation.shown(value)}")
    return value


MAX_SINCE = 31 * 86400  # seconds back a metrics view may look (they are kept for TASKITO_METRICS_RETENTION)


def since(params: Params) -> int:
    """The window of a metrics view: ``since`` seconds back, 60 to 31 days (default an hour)."""
    return integer(params, "since", 3600, 60, MAX_SINCE)


def seconds(params: Params, key: str, default: float) -> float:
    raw = params.get(key)
    try:
        value = default if raw in (None, "") else float(raw)
    except (TypeError, ValueError):
        raise ViewError(400, f"{key} must be a number of seconds, got {validation.shown(raw)}") from None
    try:
        return validation.seconds(key, value)
    except ValueError as exc:
        raise ViewError(400, str(exc)) from None


def json_body(raw: bytes) -> dict[str, Any]:
    """A POST body's JSON object (empty body: empty object), whose keys join the query parameters."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ViewError(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ViewError(400, f"request body must be a JSON object, got {type(data).__name__}")
    return data


@dataclass(frozen=True)
class Page:
    """One page of a list, read with one row more than ``limit``: that row says whether a next page
    exists, so no view ever counts a whole table."""

    items: list[Any]
    limit: int
    offset: int
    has_more: bool

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.has_more else None

    def to_json(self, describe: Callable[[Any], dict[str, Any]], key: str = "jobs") -> dict[str, Any]:
        """The one pagination shape: the items under ``key`` (``jobs``), ``limit``, ``offset``, ``has_more``
        and ``next_offset`` (null on the last page)."""
        return {key: [describe(item) for item in self.items], "limit": self.limit, "offset": self.offset,
                "has_more": self.has_more, "next_offset": self.next_offset}


def fetch_page(fetch: Callable[[int, int], Sequence[T]], limit: int, offset: int) -> Page:
    """``fetch(limit, offset)`` called for one row more than a page."""
    found = list(fetch(limit + 1, offset))
    return Page(found[:limit], limit, offset, len(found) > limit)


def page(params: Params, fetch: Callable[[int, int], Sequence[T]]) -> Page:
    """The page that the ``limit`` and ``offset`` parameters ask for."""
    limit = integer(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = integer(params, "offset", 0, 0, MAX_OFFSET)
    return fetch_page(fetch, limit, offset)
