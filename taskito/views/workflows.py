"""Workflow views: the list, newest first, and one workflow with its steps in order, each with its status and job id."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import params as p
from .errors import Reply, ViewError

if TYPE_CHECKING:
    from ..queue import Queue

# Jobs of each stage a workflow view lists unless asked otherwise (a chord's group may have thousands).
PER_STAGE = 1000


def workflow_detail(queue: Queue, params: p.Params, workflow_id: str) -> Reply:
    """The workflow (kind, status, the dead step and its error if it failed) and its stages in order,
    each with its jobs' ids and statuses: at most ``per_stage`` of them, ``more`` counting the others."""
    per_stage = p.integer(params, "per_stage", PER_STAGE, 1, 1_000_000)
    found = queue.get_workflow(workflow_id)
    if found is None:
        raise ViewError(404, f"no workflow with id {workflow_id!r} (purged, or never sent)")
    return 200, found.to_dict(per_stage=per_stage)


def workflows(queue: Queue, params: p.Params) -> Reply:
    """Workflows newest first, each with its progress (``Queue.list_workflows``); ``limit``/``offset`` paginate."""
    page = p.page(params, lambda limit, offset: queue.list_workflows(limit=limit, offset=offset))
    return 200, page.to_json(dict, key="workflows")
