"""Encode task arguments and results for storage.

JSON is the default because a queue database must never be a way to run code;
pickle exists for trusted deployments that ask for it by name.
"""

from __future__ import annotations

import json
import pickle
from typing import Any, Protocol

from .exceptions import ConfigurationError, SerializationError


class Serializer(Protocol):
    name: str

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


# Python's JSON decoder recurses once per level, within the recursion limit left at the call site:
# a document that encodes in a shallow enqueue could fail to decode deep in a worker's or a web
# view's stack. A fixed limit, far below Python's 1000, makes "encodes" imply "decodes".
MAX_JSON_DEPTH = 200
_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in b'"[]{}')
_AS_PARENTHESES = bytes.maketrans(b"[]{}", b"()()")


def nests_deeper_than(data: bytes, limit: int) -> bool:
    """Whether lists and objects nest more than ``limit`` levels in a JSON text (brackets in strings do not count).

    C-speed byte operations only: the usual payload has few brackets, and a big one must not cost
    a Python loop over its characters.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    # Drop escaped backslashes and quotes, then all but quotes and brackets: quotes now pair up.
    shape = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    # Two adjacent quotes enclose no bracket (an empty string, or the end of one string and the start
    # of the next): dropping them keeps every bracket in or out of a string as it was.
    shape = shape.replace(b'""', b"")
    if b'"' in shape:  # some string holds brackets: keep what lies outside strings
        shape = b"".join(shape.split(b'"')[::2])
    shape = shape.translate(_AS_PARENTHESES)
    for _ in range(limit):  # each pass removes the innermost pairs: one level
        if not shape:
            return False
        shape = shape.replace(b"()", b"")
    return bool(shape)


class JSONSerializer:
    name = "json"

    def __init__(self) -> None:
        self._encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)

    def dumps(self, value: Any) -> bytes:
        try:
            data = self._encoder.encode(value).encode()  # a lone surrogate fails here: UnicodeEncodeError
        except (TypeError, ValueError) as exc:
            raise SerializationError(str(exc)) from exc
        except RecursionError:
            raise SerializationError(self._too_deep()) from None
        if nests_deeper_than(data, MAX_JSON_DEPTH):
            raise SerializationError(self._too_deep())
        return data

    @staticmethod
    def _too_deep() -> str:
        return (f"lists and dicts nest more than {MAX_JSON_DEPTH} levels deep; taskito's JSON refuses that, since "
                "decoding it could exhaust Python's recursion limit: flatten the value")

    def loads(self, data: bytes) -> Any:
        try:
            return json.loads(data)
        except (TypeError, ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise SerializationError(f"cannot decode JSON payload: {exc}") from None


class PickleSerializer:
    name = "pickle"

    def dumps(self, value: Any) -> bytes:
        try:
            return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # pickle raises many unrelated types
            raise SerializationError(str(exc)) from exc

    def loads(self, data: bytes) -> Any:
        try:
            return pickle.loads(data)  # noqa: S301 - opt-in by name only
        except Exception as exc:
            raise SerializationError(f"cannot decode pickle payload: {exc}") from exc


_SERIALIZERS = {"json": JSONSerializer, "pickle": PickleSerializer}


def get_serializer(name: str | Serializer) -> Serializer:
    """Return a serializer by name ("json" or "pickle"), or pass one through."""
    if not isinstance(name, str):
        return name
    try:
        return _SERIALIZERS[name]()
    except KeyError:
        raise ConfigurationError(
            f"unknown serializer {name!r}: use 'json' (default) or 'pickle'"
        ) from None


def describe_unserializable(serializer: Serializer, task_name: str, args: tuple, kwargs: dict,
                            reason: str = "") -> str:
    """Name the first argument the serializer cannot hold, for a useful error message.

    ``reason`` is the whole payload's error, said when no single argument fails (limits of the whole).
    """
    for index, value in enumerate(args):
        try:
            serializer.dumps(value)
        except SerializationError as exc:
            return (
                f"argument {index} ({type(value).__name__}) of task {task_name!r} "
                f"cannot be serialized as {serializer.name}: {exc}"
            )
    for key, value in kwargs.items():
        try:
            serializer.dumps(value)
        except SerializationError as exc:
            return (
                f"keyword argument {key!r} ({type(value).__name__}) of task {task_name!r} "
                f"cannot be serialized as {serializer.name}: {exc}"
            )
    return f"the arguments of task {task_name!r} cannot be serialized as {serializer.name}: {reason}"
