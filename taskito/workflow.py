"""Workflows: ``chain``, ``group`` and ``chord`` (with ``chunks`` and ``starmap``) that run in the database.

A workflow is sent as a list of stages run one after the other: a stage is one job (a chain step,
a chord's callback) or several at once (a group, a chord's header). Every job is written when the
workflow is sent, in one transaction; the worker that completes the last member of a stage releases
the next stage in the transaction of that completion (see ``Storage.create_workflow``). Nothing
waits in the caller: the workflow goes on when the caller exits, and survives any worker being
killed (a killed step is retried like any job; its completion is counted once).

A step made with ``task.s()`` gets the previous stage's result as its first argument (a group's:
the list of its members' results, in order); ``task.si()`` gets none. A step that ends dead fails the
workflow: the steps not started yet are cancelled, and the ``on_error`` signature runs once with the
dead job's id and error first.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from . import validation
from .exceptions import InvalidValueError, JobNotFoundError, TaskCancelledError, TaskFailedError
from .options import JobOptions
from .storage import WF_CHAINED, WF_MAPPED, NewJob, NewWorkflow, Status, WorkflowJob, WorkflowRecord, new_job_id
from .task import Signature, TaskWrapper

if TYPE_CHECKING:
    from .eager import EagerResult
    from .queue import Queue
    from .result import JobHandle, JobResult
    from .storage import JobRecord

# Per-call options a workflow step cannot take, and why.
_REFUSED = {
    "depends_on": "a step already waits for the steps before it",
    "unique_key": "a step is never the same job as another",
    "expires": "an expired step would leave its workflow unfinished; cancel the workflow instead",
}


class WorkflowHandle(Protocol):
    """What sending a workflow returns: a stored workflow's ``WorkflowResult``, or in eager mode the
    ``EagerWorkflowResult`` of one that already ran. Type your code against this so that it holds in both."""

    @property
    def id(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def jobs(self) -> Sequence[JobHandle]: ...

    def refresh(self) -> WorkflowHandle: ...

    def cancel(self) -> bool: ...

    def result(self, timeout: float | None = ...) -> Any: ...

    async def aresult(self, timeout: float | None = ...) -> Any: ...


@dataclass(frozen=True)
class _Stage:
    members: list[Signature]
    is_group: bool


class Canvas:
    """What ``chain``, ``group`` and ``chord`` share: sending (``delay``, ``apply_async``, and ``adelay``,
    ``aapply_async`` from async code) returns a ``WorkflowResult``."""

    kind = ""

    def __init__(self, on_error: Signature | None = None) -> None:
        if on_error is not None and not isinstance(on_error, Signature):
            raise InvalidValueError(f"on_error takes a signature (task.s(...) or task.si(...)), got "
                                    f"{validation.shown(on_error)}")
        self.on_error = on_error

    def stages(self) -> list[_Stage]:
        raise NotImplementedError

    def __or__(self, other: Canvas | Signature) -> Chain:
        return Chain(self, other)

    def delay(self) -> WorkflowHandle:
        return self.apply_async()

    def apply_async(self, on_error: Signature | None = None, **options: Any) -> WorkflowHandle:
        """Send the workflow. ``options`` (job options: ``queue``, ``priority``...) apply to every step
        that does not set its own (``Signature.set``); ``on_error`` replaces the one given at building."""
        plan = _plan(self, on_error if on_error is not None else self.on_error, options)
        if plan.queue.eager:
            return _run_eagerly(plan)
        plan.queue.storage.create_workflow(plan.workflow)
        return WorkflowResult(plan.queue, plan.workflow.id)

    async def adelay(self) -> WorkflowHandle:
        """``delay()`` from async code: the writing runs off the event loop."""
        return await self.aapply_async()

    async def aapply_async(self, on_error: Signature | None = None,
                           **options: Any) -> WorkflowHandle:
        """``apply_async()`` from async code (checks and errors are the same, raised here)."""
        from .aio import run_blocking

        plan = _plan(self, on_error if on_error is not None else self.on_error, options)
        if plan.queue.eager:
            return _run_eagerly(plan)
        await run_blocking(plan.queue, plan.queue.storage.create_workflow, plan.workflow)
        return WorkflowResult(plan.queue, plan.workflow.id)


def _items(kind: str, items: Sequence[Any]) -> list[Any]:
    """``group(a, b)`` or ``group([a, b])`` (any iterable, a generator too)."""
    if len(items) == 1 and not isinstance(items[0], (Signature, Canvas)) and isinstance(items[0], Iterable):
        items = list(items[0])
    for item in items:
        if not isinstance(item, (Signature, Canvas)):
            raise InvalidValueError(f"{kind} takes signatures (task.s(...), task.si(...)) or workflows, got "
                                    f"{validation.shown(item)}")
    if not items:
        raise InvalidValueError(f"{kind} needs at least one signature")
    return list(items)


def _stages_of(item: Signature | Canvas) -> list[_Stage]:
    if isinstance(item, Signature):
        return [_Stage([item], False)]
    if item.on_error is not None:
        raise InvalidValueError(f"on_error of a {item.kind} inside another workflow would never run: give it to "
                                "the outermost one (chain(..., on_error=...) or apply_async(on_error=...))")
    return item.stages()


class Chain(Canvas):
    """Steps one after the other, each given the previous one's result (unless made with ``si``)."""

    kind = "chain"

    def __init__(self, *steps: Any, on_error: Signature | None = None) -> None:
        super().__init__(on_error)
        self.steps = _items("chain", steps)

    def stages(self) -> list[_Stage]:
        return [stage for step in self.steps for stage in _stages_of(step)]


class Group(Canvas):
    """Signatures run at once; the result is the list of theirs, in order."""

    kind = "group"

    def __init__(self, *members: Any, on_error: Signature | None = None) -> None:
        super().__init__(on_error)
        self.members = _items("group", members)
        for member in self.members:
            if not isinstance(member, Signature):
                raise InvalidValueError(f"a group's members are signatures (task.s(...)), got {member!r}: a chain or "
                                        "group inside a group is not supported; put the group inside a chain instead")

    def stages(self) -> list[_Stage]:
        return [_Stage(self.members, True)]


class Chord(Canvas):
    """A group, then a callback given the list of the group's results, once every member completed."""

    kind = "chord"

    def __init__(self, header: Any, body: Signature | Canvas, on_error: Signature | None = None) -> None:
        super().__init__(on_error)
        self.header = header if isinstance(header, Group) else Group(header)
        if not isinstance(body, (Signature, Canvas)):
            raise InvalidValueError(f"a chord's callback is a signature (task.s(...)), got {validation.shown(body)}")
        self.body = body

    def stages(self) -> list[_Stage]:
        return _stages_of(self.header) + _stages_of(self.body)


def chain(*steps: Any, on_error: Signature | None = None) -> Chain:
    """``chain(a.s(1), b.s(), c.s())``: steps may be signatures, groups, chords or chains."""
    return Chain(*steps, on_error=on_error)


def group(*members: Any, on_error: Signature | None = None) -> Group:
    """``group(a.s(1), a.s(2))`` or ``group(a.s(i) for i in range(100))``."""
    return Group(*members, on_error=on_error)


def chord(header: Any, body: Signature | Canvas, on_error: Signature | None = None) -> Chord:
    """``chord(group(...), callback.s())``: the callback runs once, when the last member completes."""
    return Chord(header, body, on_error=on_error)


def _task(task: Any) -> TaskWrapper:
    wrapper = getattr(task, "wrapper", task)  # a Flask extension's task stands for its app's
    if not isinstance(wrapper, TaskWrapper):
        raise InvalidValueError(f"expected a task (what @queue.task returns), got {validation.shown(task)}")
    return wrapper


def _argument_lists(what: str, items: Iterable[Any]) -> list[list[Any]]:
    calls = []
    for item in items:
        if isinstance(item, (str, bytes)) or not isinstance(item, Iterable):
            raise InvalidValueError(f"{what} takes a list of argument tuples, got the item {validation.shown(item)}")
        calls.append(list(item))
    return calls


def starmap(task: Any, args_list: Iterable[Sequence[Any]]) -> Chain:
    """One job that calls ``task(*args)`` for each ``args`` and returns the list of results."""
    calls = _argument_lists("starmap", args_list)
    return Chain(Signature(_task(task), (calls,), None, immutable=True, mapped=True))


def chunks(task: Any, items: Iterable[Sequence[Any]], n: int) -> Group:
    """A group of jobs of ``n`` calls each (``task(*item)`` for each item): the result is the list of
    each job's list of results."""
    size = validation.count("n", n)
    if size < 1:
        raise InvalidValueError(f"chunks needs n of at least 1, got {n!r}")
    calls = _argument_lists("chunks", items)
    wrapper = _task(task)
    return Group([Signature(wrapper, (calls[i:i + size],), None, immutable=True, mapped=True)
                  for i in range(0, len(calls), size)])


# -- sending ------------------------------------------------------------------------------------------
@dataclass
class _Plan:
    queue: Queue
    workflow: NewWorkflow
    stages: list[_Stage]
    on_error: Signature | None
    options: dict[str, Any]


def _checked_options(where: str, options: Mapping[str, Any]) -> dict[str, Any]:
    for name in options:
        if name in _REFUSED and options[name] not in (None, ()):
            raise InvalidValueError(f"{where}: a workflow step cannot take {name}= ({_REFUSED[name]})")
    return dict(options)


def _plan(canvas: Canvas, on_error: Signature | None, options: Mapping[str, Any]) -> _Plan:
    """Check and encode every job of a workflow (nothing is written yet: bad input raises here)."""
    if on_error is not None and not isinstance(on_error, Signature):
        raise InvalidValueError(f"on_error takes a signature (task.s(...)), got {validation.shown(on_error)}")
    JobOptions.for_call(options)
    common = _checked_options("apply_async", options)
    stages = canvas.stages()
    signatures = [member for stage in stages for member in stage.members] + ([on_error] if on_error else [])
    queue = signatures[0].task.queue
    for signature in signatures:
        if signature.task.queue is not queue:
            raise InvalidValueError(f"every step of a workflow must be a task of one queue: {signature.task.name!r} "
                                    f"is bound to {signature.task.queue!r}, not {queue!r}")
        if signature.task.name not in queue.tasks:
            raise InvalidValueError(f"unknown task {signature.task.name!r} in a workflow: it is not registered on "
                                    f"{queue!r}")
    workflow_id = new_job_id()
    jobs: list[WorkflowJob] = []
    for index, stage in enumerate(stages):
        for member, (signature, job) in enumerate(zip(stage.members, _jobs(queue, stage.members, common),
                                                      strict=True)):
            mode = (WF_MAPPED if signature.mapped else 0) | (
                WF_CHAINED if index > 0 and not signature.immutable else 0)
            jobs.append(WorkflowJob(job, index, member, mode))
    if on_error is not None:
        [job] = _jobs(queue, [on_error], common)
        jobs.append(WorkflowJob(job, -1, 0, 0 if on_error.immutable else WF_CHAINED))
    workflow = NewWorkflow(id=workflow_id, kind=canvas.kind, jobs=jobs,
                           stages=[(len(stage.members), stage.is_group) for stage in stages])
    return _Plan(queue, workflow, stages, on_error, common)


def _jobs(queue: Queue, signatures: list[Signature], common: Mapping[str, Any]) -> list[NewJob]:
    """The jobs of these signatures, encoded; a run of calls of one task with the same options is
    checked and resolved once (a group of ten thousand costs about what a ``map`` of as many does)."""
    jobs: list[NewJob] = []
    for _, run in itertools.groupby(signatures, key=lambda sig: (sig.task.name, repr(sorted(sig.options.items())))):
        calls = list(run)
        first = calls[0]
        options = {**common, **_checked_options(f"step {first.task.name!r}", first.options)}
        jobs.extend(queue._new_jobs(first.task.name, ((sig.args, sig.kwargs) for sig in calls), options))
    for job in jobs:
        job.expires = None  # a task's own expires: a step waiting its turn must not expire (see _REFUSED)
    return jobs


# -- running (the worker's side) -------------------------------------------------------------------------
def step_arguments(queue: Queue, record: JobRecord, args: list[Any]) -> list[Any]:
    """The arguments a workflow job runs with: its own, after the previous stage's result (a chained
    step) or after the dead step's id and error (the error callback)."""
    if not record.wf_mode & WF_CHAINED or record.workflow_id is None or record.wf_stage is None:
        return args
    workflow = queue.storage.get_workflow(record.workflow_id, with_jobs=False)
    if workflow is None:
        raise LookupError(f"workflow {record.workflow_id} of this job no longer exists (purged)")
    if record.wf_stage < 0:
        return [workflow.failed_job_id, workflow.error, *args]
    return [stage_value(queue, workflow, record.wf_stage - 1), *args]


def stage_value(queue: Queue, workflow: WorkflowRecord, stage: int) -> Any:
    """A stage's result: its one job's, or a group's list of its members' (in order)."""
    values = [None if result is None else queue.serializer.loads(result)
              for result in queue.storage.stage_results(workflow.id, stage)]
    is_group = next(group for number, _, _, group in workflow.stages if number == stage)
    return values if is_group else (values[0] if values else None)


def mapped(task: TaskWrapper) -> TaskWrapper:
    """The task of a ``chunks``/``starmap`` job: called with a list of argument lists, it calls the task
    once per list and returns the list of results."""
    fn = task.fn
    runner = copy.copy(task)
    if task.is_async:
        async def each_async(calls: list[list[Any]]) -> list[Any]:
            return [await fn(*call) for call in calls]
        runner.fn = each_async
    else:
        def each(calls: list[list[Any]]) -> list[Any]:
            return [fn(*call) for call in calls]
        runner.fn = each
    return runner


# -- results -------------------------------------------------------------------------------------------
class WorkflowResult:
    """A handle on a sent workflow, read from the database when asked (``queue.get_workflow(id)``
    finds it again from any process)."""

    def __init__(self, queue: Queue, workflow_id: str, record: WorkflowRecord | None = None) -> None:
        self.queue = queue
        self.id = workflow_id
        self._record = record

    def __repr__(self) -> str:
        return f"<WorkflowResult {self.id}>"

    def refresh(self) -> WorkflowResult:
        record = self.queue.storage.get_workflow(self.id)
        if record is None:
            raise JobNotFoundError(f"workflow {self.id} does not exist (purged, or never sent)")
        self._record = record
        return self

    @property
    def record(self) -> WorkflowRecord:
        if self._record is None:
            self.refresh()
        assert self._record is not None
        return self._record

    @property
    def status(self) -> str:
        """pending (no step started yet), running, complete, failed or cancelled."""
        return _status(self.refresh().record)

    @property
    def jobs(self) -> list[JobResult]:
        """Its jobs in order (stage by stage, each group's members in order), the error callback last
        once it was released."""
        from .result import JobResult

        return [JobResult(self.queue, job[0]) for job in _ordered_jobs(self.refresh().record)]

    def cancel(self) -> bool:
        """Cancel the steps not started yet (running ones finish); False if the workflow had ended."""
        return self.queue.storage.cancel_workflow(self.id)

    def result(self, timeout: float | None = 30) -> Any:
        """Wait for the end: a chain's last result, a group's list, a chord's callback's result.

        Raises TimeoutError while unfinished after ``timeout`` seconds, TaskFailedError if a step died
        (naming it), TaskCancelledError if the workflow was cancelled.
        """
        seconds = validation.seconds("timeout", timeout)
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            record = self.refresh().record
            if record.status != "running":
                return self._value(record)
            remaining = 1.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"workflow {self.id} is still {_status(record)} after {timeout}s")
            waited = _unfinished_last(record)
            if waited is None:  # its last stage ended but the workflow not yet: committed in a moment
                time.sleep(min(remaining, 0.005))
            else:  # woken when that job ends (a notification on PostgreSQL); a failure elsewhere within 0.25s
                self.queue.storage.wait_for_result(waited, min(remaining, 0.25))

    async def aresult(self, timeout: float | None = 30) -> Any:
        """``result()`` from async code, same value and errors: it waits as ``job.aresult()`` does
        (no thread held while waiting, a shared LISTEN connection on PostgreSQL)."""
        from .aio import run_blocking, wait_for_job

        seconds = validation.seconds("timeout", timeout)
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            record = (await run_blocking(self.queue, self.refresh)).record
            if record.status != "running":
                return await run_blocking(self.queue, self._value, record)
            remaining = 1.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"workflow {self.id} is still {_status(record)} after {timeout}s")
            waited = _unfinished_last(record)
            if waited is None:
                await asyncio.sleep(min(remaining, 0.005))
            else:
                await wait_for_job(self.queue, waited, min(remaining, 0.25))

    async def arefresh(self) -> WorkflowResult:
        from .aio import run_blocking

        return await run_blocking(self.queue, self.refresh)

    def _value(self, record: WorkflowRecord) -> Any:
        if record.status == Status.COMPLETE:
            return stage_value(self.queue, record, len(record.stages) - 1)
        if record.status == "failed":
            raise TaskFailedError(f"workflow {self.id} failed: step {record.failed_job_id} died: {record.error}",
                                  error=record.error, job_id=record.failed_job_id)
        raise TaskCancelledError(f"workflow {self.id} was cancelled: {record.error}")

    def to_dict(self, per_stage: int | None = None) -> dict[str, Any]:
        """A JSON-ready view: the workflow and its steps in order, each with its status and job id
        (with ``per_stage``, at most that many of each stage's jobs: see ``workflow_to_dict``)."""
        return workflow_to_dict(self.refresh().record, per_stage)


def _status(record: WorkflowRecord) -> str:
    if record.status != "running":
        return record.status
    started = any(job[2] != Status.PENDING or job[5] is not None for job in record.jobs if job[3] >= 0)
    return "running" if started else "pending"


def _ordered_jobs(record: WorkflowRecord) -> list[tuple[Any, ...]]:
    """Steps in order, then the error callback if it was released (a staged one is not a job yet)."""
    steps = [job for job in record.jobs if job[3] >= 0]
    return steps + [job for job in record.jobs if job[3] < 0 and job[2] != "staged"]


def _unfinished_last(record: WorkflowRecord) -> str | None:
    last = len(record.stages) - 1
    return next((job[0] for job in record.jobs
                 if job[3] == last and job[2] not in (Status.COMPLETE, Status.DEAD, Status.CANCELLED)), None)


def workflow_to_dict(record: WorkflowRecord, per_stage: int | None = None) -> dict[str, Any]:
    """The workflow for humans and JSON APIs: ``stages`` in order, each with its jobs (id, task, status);
    with ``per_stage``, at most that many jobs of each stage, ``more`` saying how many are left out."""
    by_stage: dict[int, list[dict[str, Any]]] = {}
    error_callback = None
    for job_id, task_name, status, stage, member, started_at, finished_at in record.jobs:
        entry = {"id": job_id, "task_name": task_name, "status": status, "member": member,
                 "started_at": started_at, "finished_at": finished_at}
        if stage < 0:
            error_callback = entry if status != "staged" else None
        else:
            by_stage.setdefault(stage, []).append(entry)
    return {
        "id": record.id, "kind": record.kind, "status": _status(record), "created_at": record.created_at,
        "finished_at": record.finished_at, "failed_job_id": record.failed_job_id, "error": record.error,
        "stages": [{"stage": stage, "group": is_group, "size": size, "remaining": remaining,
                    "jobs": by_stage.get(stage, [])[:per_stage],
                    "more": max(len(by_stage.get(stage, [])) - per_stage, 0) if per_stage is not None else 0}
                   for stage, size, remaining, is_group in record.stages],
        "on_error": error_callback,
    }


# -- eager mode ---------------------------------------------------------------------------------------------
class EagerWorkflowResult:
    """The WorkflowResult of a workflow that already ran inline (eager mode); nothing is stored."""

    def __init__(self, workflow_id: str, status: str, jobs: list[EagerResult], value: Any = None,
                 failed: EagerResult | None = None) -> None:
        self.id = workflow_id
        self.status = status
        self.jobs = jobs
        self._value = value
        self._failed = failed

    def refresh(self) -> EagerWorkflowResult:
        return self

    def cancel(self) -> bool:
        return False

    def result(self, timeout: float | None = 30) -> Any:
        validation.seconds("timeout", timeout)
        if self._failed is not None:
            raise TaskFailedError(f"workflow {self.id} failed: step {self._failed.id} died: {self._failed.error}",
                                  error=self._failed.error, job_id=self._failed.id)
        return self._value

    async def aresult(self, timeout: float | None = 30) -> Any:
        return self.result(timeout)


def _run_eagerly(plan: _Plan) -> EagerWorkflowResult:
    """Run the stages inline, in order, as workers would: results passed on, the error callback on a death."""
    from .eager import run_eagerly

    queue = plan.queue
    ran: list[EagerResult] = []
    previous: Any = None
    for index, stage in enumerate(plan.stages):
        values = []
        for signature in stage.members:
            options = {**plan.options, **signature.options}
            chained = index > 0 and not signature.immutable
            calls = signature.args[0] if signature.mapped else [signature.args]
            results = []
            for call in calls:
                args = (previous, *call) if chained else tuple(call)
                outcome = run_eagerly(queue, queue.prepare_job(signature.task.name, args, signature.kwargs, **options))
                ran.append(outcome)
                if outcome.status != Status.COMPLETE:
                    if plan.on_error is not None:
                        error_args = (plan.on_error.args if plan.on_error.immutable
                                      else (outcome.id, outcome.error, *plan.on_error.args))
                        ran.append(run_eagerly(queue, queue.prepare_job(plan.on_error.task.name, error_args,
                                                                        plan.on_error.kwargs, **options)))
                    return EagerWorkflowResult(plan.workflow.id, "failed", ran, failed=outcome)
                results.append(outcome.result())
            values.append(results if signature.mapped else results[0])
        previous = values if stage.is_group else values[0]
    return EagerWorkflowResult(plan.workflow.id, Status.COMPLETE, ran, value=previous)
