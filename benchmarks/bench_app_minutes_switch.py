"""bench_app's queue, whose recording of task minutes (SQLite) is off while the file $BENCH_MINUTES_OFF
exists: metrics_cost.py switches it during one drain to measure what the per-task metrics cost."""

import os

from bench_app import queue  # noqa: F401 - the worker runs this queue

from taskito.storage.sqlite import SQLiteStorage

_record = SQLiteStorage._record_completions
_switch = os.environ["BENCH_MINUTES_OFF"]


def _record_unless_switched_off(self, *args, **kwargs):  # type: ignore[no-untyped-def]
    if not os.path.exists(_switch):
        _record(self, *args, **kwargs)


SQLiteStorage._record_completions = _record_unless_switched_off  # type: ignore[method-assign]
