"""The app the benchmark's worker processes run; settings come from TASKITO_* variables."""

from taskito import Queue

queue = Queue()


@queue.task()
def noop() -> None:
    return None
