"""Load the SQL that lives in ``storage/sql/<engine>/``.

``queries.sql`` holds named statements (``-- name: claim`` headers, as in
Procrastinate); ``migrations/NNNN_*.sql`` are applied in order, once each.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def queries(engine: str) -> dict[str, str]:
    """Return ``{name: sql}`` for the engine's queries.sql."""
    text = (resources.files(__package__) / "sql" / engine / "queries.sql").read_text()
    parts = _NAME.split(text)
    return {name: body.strip().rstrip(";") for name, body in zip(parts[1::2], parts[2::2], strict=True)}


@cache
def migrations(engine: str) -> tuple[tuple[int, str], ...]:
    """Return ``((version, sql), ...)`` sorted by version."""
    folder = resources.files(__package__) / "sql" / engine / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
    return tuple(sorted(found))
