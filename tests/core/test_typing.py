"""Users' own type checker sees taskito's types, and a job handle is typed the same in both modes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import taskito
from taskito import JobHandle, JobResult, Queue
from taskito.eager import EagerResult
from taskito.testing import eager, run_jobs

ROOT = Path(taskito.__file__).resolve().parent.parent

USER_CODE = """\
from taskito import JobHandle, Queue, WorkflowHandle, chain, chord

queue = Queue(db_path="jobs.db")


@queue.task()
def add(a: int, b: int) -> int:
    return a + b


def total(jobs: list[JobHandle]) -> int:
    return sum(int(job.refresh().result(timeout=5)) for job in jobs)


job: JobHandle = add.delay(2, 3)
print(total([job, *add.map([(1, 2)]), queue.enqueue("add", args=(1, 2))]))
status: int = job.status


async def from_async_code() -> list[JobHandle]:
    return [await add.adelay(2, 3), *await add.amap([(1, 2)]), await queue.aenqueue("add", args=(1, 2))]


def send(workflow: WorkflowHandle) -> tuple[int, list[str]]:
    return int(workflow.result(timeout=5)), [job.status for job in workflow.jobs]


print(send(chain(add.s(1, 2), add.s(3)).delay()), send(chord([add.s(1, 2)], add.si(0, 0)).apply_async(priority=1)))
"""


def test_users_mypy_reads_taskitos_types(tmp_path: Path) -> None:
    """taskito ships py.typed: mypy --strict on user code accepts the right use and flags the wrong one."""
    (tmp_path / "user_code.py").write_text(USER_CODE)
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--python-version", "3.10", "--cache-dir", str(tmp_path / "cache"),
         "user_code.py"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
    )
    errors = [line for line in checked.stdout.splitlines() if ": error:" in line]
    assert errors == ['user_code.py:17: error: Incompatible types in assignment (expression has type "str", '
                      'variable has type "int")  [assignment]'], checked.stdout + checked.stderr


def test_stored_and_eager_jobs_both_answer_what_job_handle_promises(queue: Queue) -> None:
    @queue.task()
    def add(a: int, b: int) -> int:
        return a + b

    promised = {name for name in dir(JobHandle) if not name.startswith("_")}
    assert promised >= {"id", "status", "result", "refresh", "to_dict", "errors"}
    stored = add.delay(2, 3)
    run_jobs(queue)
    with eager(queue):
        inline = add.delay(2, 3)
    for job, kind in ((stored, JobResult), (inline, EagerResult)):
        assert isinstance(job, kind)
        assert promised <= set(dir(job)), promised - set(dir(job))
        assert job.refresh().result(timeout=5) == 5
        assert job.status == "complete" and job.to_dict()["id"] == job.id and job.errors == []
