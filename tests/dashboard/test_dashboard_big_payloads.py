"""Jobs carrying megabytes: the dashboard's job list reads a few kilobytes of each, on both engines.

The database cuts the payload (list_jobs reads partial rows); handles from list_jobs still give the
whole job when asked.
"""

from __future__ import annotations

import tracemalloc

from taskito import Queue
from taskito.dashboard import create_app
from taskito.storage import Completion
from taskito.storage.base import PAYLOAD_HEAD
from tests.dashboard.conftest import DashClient

MB = 1_000_000
JOBS = 3


def enqueue_big(queue: Queue, size: int = 10 * MB) -> tuple[list[str], str]:
    """JOBS jobs with ``size`` bytes of arguments each, the oldest completed with a result that large."""
    big = "x" * size
    ids = [queue.enqueue("tasks.echo", args=(big, n)).id for n in range(JOBS - 1)]
    ids.append(queue.enqueue("tasks.echo", kwargs={"blob": big, "n": 1}).id)
    [record] = queue.storage.claim("w", ["default"], 1, 60)
    queue.storage.complete([Completion(record.id, record.attempt, queue.serializer.dumps(big))])
    return ids, big


def test_a_job_list_poll_never_reads_whole_payloads(engine_queue: Queue) -> None:
    ids, big = enqueue_big(engine_queue)
    client = DashClient(create_app(engine_queue))
    client.get("/api/jobs")  # warm up: connections, imports
    tracemalloc.start()
    try:
        for _ in range(4):  # four polls of the page
            response = client.get("/api/jobs")
            assert response.status_code == 200
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * MB, f"a poll of {JOBS} jobs of 10 MB allocated {peak / MB:.1f} MB"  # was 18 MB a job
    jobs = {job["id"]: job for job in response.json["jobs"]}
    assert set(jobs) == set(ids) and len(response.get_data()) < 10_000
    assert jobs[ids[0]]["status"] == "complete" and "result" not in jobs[ids[0]]
    for job_id in ids[:-1]:
        preview = jobs[job_id]["preview"]
        assert preview.startswith('"xxxxxxxx') and preview.endswith("…") and len(preview) == 200
    assert jobs[ids[-1]]["preview"].startswith('blob="xxxxxxxx') and jobs[ids[-1]]["preview"].endswith("…")

    detail = client.get(f"/api/jobs/{ids[0]}").json  # the job's own view has everything
    assert detail["args"] == [big, 0] and detail["result"] == big


def test_previews_of_cut_payloads_read_like_whole_ones(engine_queue: Queue) -> None:
    """Complete values before the cut are shown as for a small job; the value the cut falls in, as its start."""
    small = engine_queue.enqueue("tasks.echo", args=(1, "é", [2, 3]), kwargs={"k": None})
    cut = engine_queue.enqueue("tasks.echo", args=(1, "é", [2, 3]), kwargs={"k": None, "blob": "y" * (2 * MB)})
    only_kwargs = engine_queue.enqueue("tasks.echo", kwargs={"blob": "z" * (2 * MB)})
    previews = {job["id"]: job["preview"] for job in DashClient(create_app(engine_queue)).get("/api/jobs").json["jobs"]}
    assert previews[small.id] == '1, "\\u00e9", [2, 3], k=null'
    assert previews[cut.id].startswith('1, "\\u00e9", [2, 3], k=null, blob="yyyy') and previews[cut.id].endswith("…")
    assert previews[only_kwargs.id].startswith('blob="zzzz') and len(previews[only_kwargs.id]) == 200


def test_a_huge_error_message_is_cut_in_lists_too(engine_queue: Queue) -> None:
    job = engine_queue.enqueue("tasks.echo", args=(1,), max_retries=0)
    [record] = engine_queue.storage.claim("w", ["default"], 1, 60)
    message = "ValueError: " + "e" * (5 * MB)
    assert engine_queue.storage.fail(job.id, record.attempt, message, "Traceback", None)
    client = DashClient(create_app(engine_queue))
    for path in ("/api/jobs", "/api/dead-letters"):
        [listed] = client.get(path).json["jobs"]
        assert listed["error"] == message[:PAYLOAD_HEAD] + "…"
    assert client.get(f"/api/jobs/{job.id}").json["error"] == message
    assert engine_queue.list_jobs()[0].error == message  # a handle's error is the whole one


def test_list_jobs_handles_read_the_whole_job_when_asked(engine_queue: Queue) -> None:
    ids, big = enqueue_big(engine_queue, 2 * MB)
    listed = {job.id: job for job in engine_queue.list_jobs()}
    row = engine_queue.storage.list_jobs(limit=1)[0]
    assert row.partial and len(row.payload) == PAYLOAD_HEAD and row.payload_size > 2 * MB and row.result is None

    done = listed[ids[0]]
    assert done.task_name == "tasks.echo"
    assert done.summary()["preview"].endswith("…")
    assert not done.record.partial and done.record.result is not None  # the whole row, read on first use
    assert done.to_dict()["args"] == [big, 0] and done.to_dict()["result"] == big
    assert done.result(timeout=0) == big
    assert listed[ids[-1]].to_dict()["kwargs"] == {"blob": big, "n": 1}
    assert [job.to_dict()["status"] for job in engine_queue.dead_letters()] == []
