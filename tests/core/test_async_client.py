"""The async client API on both engines: the a-methods answer as the blocking ones do, never block the
event loop, and (PostgreSQL) a thousand waiters share a few connections; eager mode runs coroutines."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest

from taskito import (
    InvalidValueError,
    JobNotFoundError,
    Queue,
    SerializationError,
    TaskFailedError,
    current_job,
)
from taskito.storage import Completion
from taskito.testing import run_jobs
from tests.conftest import PG_URL
from tests.support import database_locked


def define_tasks(queue: Queue) -> dict[str, Any]:
    @queue.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    @queue.task(name="aadd")
    async def aadd(a: int, b: int) -> int:
        await asyncio.sleep(0.01)
        return a + b

    @queue.task(name="boom", max_retries=0)
    async def boom() -> None:
        raise ValueError("boom")

    return {"add": add, "aadd": aadd, "boom": boom}


async def beating(work: Awaitable[Any], interval: float = 0.005) -> tuple[Any, float]:
    """Await ``work`` beside a heartbeat; also return the longest the loop kept the heartbeat waiting."""
    worst = 0.0
    done = False

    async def beat() -> None:
        nonlocal worst
        last = time.monotonic()
        while not done:
            await asyncio.sleep(interval)
            now = time.monotonic()
            worst = max(worst, now - last - interval)
            last = now

    beater = asyncio.ensure_future(beat())
    try:
        value = await work
    finally:
        done = True
        await beater
    return value, worst


def test_the_a_methods_answer_as_the_blocking_ones(engine_queue: Queue) -> None:
    queue = engine_queue
    tasks = define_tasks(queue)
    add, aadd, boom = tasks["add"], tasks["aadd"], tasks["boom"]

    async def before_a_worker_runs() -> dict[str, Any]:
        job = await add.adelay(2, 3)
        later = await add.aapply_async(args=(1, 1), priority=5, delay=60)
        mapped = await aadd.amap([(1, 2), (3, 4)])
        by_name = await queue.aenqueue("aadd", args=(10, 20))
        many = await queue.aenqueue_many("add", [(5, 5), (6, 6)])
        unique = [await add.aapply_async(args=(0, 0), unique_key="once") for _ in range(2)]
        follower = await add.aapply_async(args=(7, 7), depends_on=job)
        failing = await boom.adelay()
        signed = await add.s(20, 22).adelay()
        assert (await queue.aget_job(job.id)) == job and await queue.aget_job("f" * 32) is None
        assert (await job.arefresh()).record.status == "pending"
        assert (await follower.arefresh()).record.depends_on == [job.id]
        assert unique[0].id == unique[1].id
        assert await queue.astats() == queue.stats() and (await queue.astats())["pending"] == 11
        assert await queue.astats_by_queue("default") == queue.stats_by_queue("default")
        assert [j.id for j in await queue.alist_jobs(limit=3)] == [j.id for j in queue.list_jobs(limit=3)]
        assert await queue.acancel_job(later.id) is True
        with pytest.raises(TimeoutError, match="still pending after 0.05s"):
            await job.aresult(timeout=0.05)
        with pytest.raises(InvalidValueError, match="priority"):
            await add.aapply_async(args=(1, 2), priority="high")
        with pytest.raises(SerializationError, match="argument 0"):
            await add.adelay(object(), 1)
        with pytest.raises(JobNotFoundError):
            await queue.aretry_dead(job.id)
        await queue.apause("default")
        assert await queue.apaused_queues() == ["default"]
        await queue.aresume("default")
        assert await queue.aworkers() == []
        assert await queue.ajob_logs(job.id) == [] and await queue.atask_stats() == queue.task_stats()
        assert (await queue.aqueue_stats())["default"]["pending"] == queue.stats()["pending"]
        return {"job": job, "mapped": mapped, "by_name": by_name, "many": many, "follower": follower,
                "failing": failing, "signed": signed}

    made = asyncio.run(before_a_worker_runs())
    assert run_jobs(queue) == 10  # a worker in this process (the async tasks on its event loop); one cancelled

    async def after() -> None:
        assert await made["job"].aresult() == 5
        assert [await job.aresult() for job in made["mapped"]] == [3, 7]
        assert await made["by_name"].aresult() == 30
        assert [await job.aresult() for job in made["many"]] == [10, 12]
        assert await made["follower"].aresult() == 14
        assert await made["signed"].aresult() == 42
        with pytest.raises(TaskFailedError, match="ValueError: boom"):
            await made["failing"].aresult()
        [dead] = await queue.adead_letters()
        assert dead.id == made["failing"].id and len(await queue.ajob_errors(dead.id)) == 1
        replay = await queue.aretry_dead(dead.id)
        assert (await queue.aget_job(replay)).record.status == "pending"

    asyncio.run(after())
    assert queue.astats.__name__ == "astats" and "stats()" in queue.astats.__doc__
    assert inspect.signature(queue.alist_jobs).parameters.keys() == inspect.signature(queue.list_jobs).parameters.keys()


def test_waiting_and_calls_never_block_the_loop_even_while_the_database_makes_them_wait(
        engine_queue: Queue, engine_settings: dict[str, str]) -> None:
    """A heartbeat coroutine keeps beating while a-calls wait for a database locked by someone else."""
    queue = engine_queue
    define_tasks(queue)
    job = queue.enqueue("add", args=(1, 2))
    release = threading.Event()
    locked = threading.Event()

    def hold_the_lock() -> None:
        with database_locked(engine_settings):
            locked.set()
            release.wait(10)

    async def calls() -> list[Any]:
        waiting = asyncio.ensure_future(job.aresult(timeout=0.6))  # nobody runs it: waits, then TimeoutError
        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        await asyncio.get_running_loop().run_in_executor(None, locked.wait, 5)
        loop = asyncio.get_running_loop()
        loop.call_later(0.5, release.set)  # the lock goes after half a second: the calls below wait that long
        started = time.monotonic()
        answers = await asyncio.gather(queue.aenqueue("add", args=(2, 2)), queue.astats(), job.arefresh(),
                                       queue.aget_job(job.id))
        assert time.monotonic() - started >= 0.4  # they did wait for the lock...
        holder.join(5)
        with pytest.raises(TimeoutError):
            await waiting
        return answers

    answers, worst = asyncio.run(beating(calls()))
    enqueued, stats, refreshed, got = answers
    assert enqueued.id != job.id and refreshed is job and got == job and stats["pending"] in (1, 2)
    assert worst < 0.1  # ...and the loop went on meanwhile (a blocking call would have held it 0.5 s)


def test_a_thousand_aresult_waiters_share_a_few_connections_and_threads(pg_schema: str) -> None:
    queue = Queue(backend="postgres", db_url=f"{PG_URL}?application_name=taskito-waiters", schema=pg_schema)
    define_tasks(queue)

    def connections() -> int:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'taskito-waiters'"
                                ).fetchone()[0]

    def finish_all() -> None:  # another worker: claims and completes every job
        records = queue.storage.claim("elsewhere", ["default"], 1000, 30)
        queue.storage.complete([Completion(r.id, r.attempt, b"42") for r in records])

    async def main() -> tuple[int, int, float]:
        jobs = await queue.aenqueue_many("add", [(1, 1)] * 1000)
        threads_before = threading.active_count()
        waiters = [asyncio.ensure_future(job.aresult(timeout=60)) for job in jobs]
        await asyncio.sleep(0)  # each waiter reads its job once, then waits for a notification
        deadline = time.monotonic() + 20
        while not queue.storage.listening() or any(not _waiting(queue, job.id) for job in jobs[-10:]):
            assert time.monotonic() < deadline, "the waiters did not start waiting"
            await asyncio.sleep(0.05)
        held = await asyncio.get_running_loop().run_in_executor(None, connections)
        extra_threads = threading.active_count() - threads_before
        started = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(None, finish_all)
        assert await asyncio.gather(*waiters) == [42] * 1000
        return held, extra_threads, time.monotonic() - started

    try:
        held, extra_threads, took = asyncio.run(main())
    finally:
        queue.close()
    assert held <= 8  # the pool's one, a few async ones, the LISTEN connection: never one per waiter
    assert extra_threads <= 2  # the LISTEN thread (and the executor's one for this test's own calls)
    assert took < 10  # woken by NOTIFY, not by their 2 s safety re-read


def _waiting(queue: Queue, job_id: str) -> bool:
    return job_id in queue.storage._waiters  # registered with the LISTEN connection


# -- eager mode and declarations -----------------------------------------------------------------------
@pytest.fixture
def eager_queue(db_path: str) -> Iterator[Queue]:
    queue = Queue(db_path=db_path, eager=True)
    yield queue
    queue.close()


def test_eager_mode_runs_async_tasks_to_completion(eager_queue: Queue) -> None:
    queue = eager_queue

    @queue.task(retry_on=[ConnectionError], max_retries=2)
    async def where(fail_first: bool = False) -> list[Any]:
        await asyncio.sleep(0)
        if fail_first and current_job.retry_count == 0:
            raise ConnectionError("once")
        return [id(asyncio.get_running_loop()), current_job.retry_count]

    loop_id, retries = where.delay().result()  # no loop running here: one of its own
    assert retries == 0
    assert where.delay(True).result()[1] == 1  # retried as a worker would

    async def from_async_code() -> tuple[int, list[Any], list[Any]]:
        inline = await where.adelay()  # awaited on this very loop
        blocking = where.delay()  # a blocking call from async code: on a helper thread's loop
        return id(asyncio.get_running_loop()), await inline.aresult(), blocking.result()

    caller, inline, blocking = asyncio.run(from_async_code())
    assert inline[0] == caller and blocking[0] != caller


def test_a_task_run_eagerly_inside_another_keeps_that_ones_current_job(eager_queue: Queue) -> None:
    queue = eager_queue

    @queue.task()
    def inner() -> str:
        return current_job.id

    @queue.task()
    def outer() -> list[str]:
        nested = inner.delay().id
        return [nested, current_job.id]  # inner's end once cleared current_job here

    @queue.task()
    async def async_outer() -> list[str]:
        nested = (await inner.adelay()).id
        return [nested, current_job.id]

    for task in (outer, async_outer):
        job = task.delay()
        nested, own = job.result()
        assert own == job.id and nested != job.id


def test_declaring_async_tasks(eager_queue: Queue) -> None:
    queue = eager_queue

    @queue.task()
    async def coroutine() -> int:
        return 1

    @queue.task()
    def plain() -> int:
        return 1

    assert coroutine.is_async and not plain.is_async
    assert asyncio.run(coroutine()) == 1  # still callable directly

    with pytest.raises(InvalidValueError, match="async generator"):
        @queue.task()
        async def stream() -> Any:
            yield 1

    def hides_it(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            return fn(*args)
        return wrapper

    @queue.task(max_retries=0)
    @hides_it
    async def hidden() -> int:
        return 1

    with pytest.raises(TaskFailedError, match="returned a coroutine, which the worker does not await: declare"):
        hidden.delay().result()
