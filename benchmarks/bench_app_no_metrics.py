"""bench_app's queue with the recording of task minutes turned off (SQLite): speed.py drains with and
without it to measure what the per-task metrics cost the drain."""

from bench_app import queue  # noqa: F401 - the worker runs this queue

from taskito.storage.sqlite import SQLiteStorage

SQLiteStorage._record_completions = lambda *args, **kwargs: None  # type: ignore[method-assign]
