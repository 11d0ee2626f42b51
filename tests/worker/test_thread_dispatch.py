"""How a thread-pool worker hands claimed jobs to its threads: short jobs to few of them, and never a job
left waiting behind a long one while a thread is free. Real `taskito worker` subprocesses, and one pool in process."""

from __future__ import annotations

from pathlib import Path

from taskito import Queue
from taskito.worker.completions import CompletionWriter
from taskito.worker.thread_pool import ThreadPool
from tests.support import start_worker, wait_until
from tests.worker.conftest import APPS

APP = "worker_app:queue"


def at_once(spans: list[list[float]]) -> list[int]:
    """For each of these (start, end) spans, how many of them were running when it started."""
    return [sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans]


def test_sixteen_threads_run_short_jobs_a_few_at_a_time_and_long_ones_all_at_once(app_env: dict[str, str]) -> None:
    """Waking every thread for each claim made 16 threads drain no-op jobs with 40% more CPU per job than
    one thread: they spent it waiting for each other. Jobs that wait 10 ms still run 16 at once."""
    client = Queue(db_path=app_env["TASKITO_DB_PATH"])
    short = client.enqueue_many("worker_app.wait_briefly", [(0,)] * 600)
    worker = start_worker(APP, APPS, "--concurrency", "16", env=app_env)
    try:
        short_spans = [job.result(timeout=60) for job in short]
        long_spans = [job.result(timeout=60) for job in client.enqueue_many("worker_app.wait_briefly", [(0.01,)] * 320)]
    finally:
        worker.stop()
    # The first claim wakes every thread (how long jobs run is not known yet); then no-op jobs need one or two.
    short_at_once = sorted(at_once(short_spans[300:]))
    assert short_at_once[len(short_at_once) // 2] <= 4, short_at_once
    assert max(at_once(long_spans[100:])) == 16
    client.close()


def test_a_long_job_does_not_hold_up_the_jobs_claimed_with_it(app_env: dict[str, str]) -> None:
    """Short jobs so far: a claim wakes one thread. The long job it starts first must not keep the others
    waiting while three threads are free."""
    client = Queue(db_path=app_env["TASKITO_DB_PATH"])
    worker = start_worker(APP, APPS, "--concurrency", "4", env=app_env)
    try:
        assert [job.result(timeout=30) for job in client.enqueue_many("worker_app.add", [(1, 1)] * 40)] == [2] * 40
        client.pause()  # the next jobs reach the worker in one claim
        long = client.enqueue("worker_app.slow", args=(5,), priority=10)
        short = client.enqueue_many("worker_app.add", [(2, 2)] * 3)
        client.resume()
        wait_until(lambda: all(job.status == "complete" for job in short), 2.5,
                   message="the short jobs to finish while the long one runs")
        assert long.status in ("pending", "running")  # not finished: it sleeps 5 s
    finally:
        worker.stop()
    client.close()


def test_a_job_that_has_its_thread_does_not_wake_the_dispatch_watcher(tmp_path: Path) -> None:
    """An idle worker's job, one at a time: the claim wakes one thread, which runs it. The watcher (it wakes
    another thread when jobs wait behind a long one) has nothing to do then; waking it anyway put two more
    thread switches on every round trip. In process, to count the watcher's wake-ups."""
    queue = Queue(db_path=str(tmp_path / "taskito.db"))

    @queue.task()
    def echo(value: int) -> int:
        return value

    writer = CompletionWriter(queue.storage)
    writer.start()
    pool = ThreadPool(queue, writer, concurrency=16, prefetch=0)
    watcher_waits = []
    wait = pool._watched.wait

    def counted_wait(timeout: float | None = None) -> bool:
        watcher_waits.append(timeout)
        return wait(timeout)

    pool._watched.wait = counted_wait  # type: ignore[method-assign]
    pool.start()
    try:
        for value in range(40):
            handle = echo.delay(value)
            pool.submit(queue.storage.claim("w", ["default"], 1, 30))
            assert handle.result(timeout=10) == value
        # Its first wait, and a few while the pool learns how long jobs run (each then wakes one thread per job).
        assert len(watcher_waits) <= 5, len(watcher_waits)
    finally:
        pool.take_unstarted()
        writer.stop(5)
        queue.close()
