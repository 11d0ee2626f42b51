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


class JSONSerializer:
    name = "json"

    def __init__(self) -> None:
        self._encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)

    def dumps(self, value: Any) -> bytes:
        try:
            return self._encoder.encode(value).encode()
        except (TypeError, ValueError) as exc:
            raise SerializationError(str(exc)) from exc

    def loads(self, data: bytes) -> Any:
        try:
            return json.loads(data)
        except (TypeError, ValueError, UnicodeDecodeError) as exc:
            raise SerializationError(f"cannot decode JSON payload: {exc}") from exc


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


def describe_unserializable(serializer: Serializer, task_name: str, args: tuple, kwargs: dict) -> str:
    """Name the first argument the serializer cannot hold, for a useful error message."""
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
    return f"the arguments of task {task_name!r} cannot be serialized as {serializer.name}"
