"""/metrics in the Prometheus text format, and the storage queries behind it (on both engines)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time

import pytest

from taskito import Queue
from taskito.dashboard import create_app
from taskito.dashboard.metrics import RUNTIME_BUCKETS, render_metrics
from taskito.storage import Completion
from tests.dashboard.conftest import DashClient, Populated, populate

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? '
                    r'(-?[0-9.e+-]+|\+Inf|-Inf|NaN)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')


def parse(text: str) -> tuple[dict[str, str], list[tuple[str, dict[str, str], float]]]:
    """Check the exposition format line by line; return ({family: type}, samples)."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    helped: set[str] = set()
    samples = []
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert name not in helped, f"HELP twice for {name}"
            helped.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in {"gauge", "counter", "histogram"} and name not in types
            types[name] = kind
        else:
            match = SAMPLE.match(line)
            assert match, f"not a valid sample line: {line!r}"
            name = match.group(1)
            family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
            assert family in types, f"sample {name} before its TYPE line"
            labels = {k: v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
                      for k, v in LABEL.findall(match.group(2) or "")}
            samples.append((name, labels, float(match.group(3))))
    return types, samples


def value(samples, name: str, **labels: str) -> float:
    found = [v for n, lab, v in samples if n == name and all(lab.get(k) == w for k, w in labels.items())]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def finish(queue: Queue, task: str, seconds: float) -> None:
    """A completed job whose attempt ran ``seconds`` (timestamps set as a worker would have)."""
    job = queue.enqueue(task)
    [record] = queue.storage.claim("w", ["default"], 1, 60)
    assert record.id == job.id
    now = time.time()  # a completion carries its attempt's start and finish, as the worker's do
    queue.storage.complete([Completion(record.id, record.attempt, b"null", started_at=now - seconds, finished_at=now)])


def test_metrics_endpoint_speaks_the_prometheus_text_format(client: DashClient, queue: Queue,
                                                            populated: Populated) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    types, samples = parse(response.get_data(as_text=True))
    assert types == {"taskito_jobs": "gauge", "taskito_queue_paused": "gauge", "taskito_workers": "gauge",
                     "taskito_task_completions": "gauge", "taskito_task_failures": "gauge",
                     "taskito_task_dead_letters": "gauge", "taskito_task_runtime_seconds": "histogram",
                     "taskito_queue_oldest_due_age_seconds": "gauge", "taskito_task_attempts": "gauge",
                     "taskito_task_wait_seconds": "histogram"}
    for name, counts in queue.stats_all_queues().items():
        for status, count in counts.items():
            assert value(samples, "taskito_jobs", queue=name, status=status) == count
    assert value(samples, "taskito_task_completions", task="tasks.add") == 2
    assert value(samples, "taskito_task_failures", task="tasks.flaky") == 1
    assert value(samples, "taskito_task_failures", task="tasks.explode") == 2
    assert value(samples, "taskito_task_dead_letters", task="tasks.explode") == 2
    assert value(samples, "taskito_workers") == 0
    assert value(samples, "taskito_queue_paused", queue="mail") == 0


def test_runtime_histogram_is_cumulative_and_ends_in_inf(queue: Queue) -> None:
    for seconds in (0.002, 0.03, 0.03, 4.0, 7200.0):
        finish(queue, "tasks.work", seconds)
    _, samples = parse(render_metrics(queue))
    buckets = {lab["le"]: v for n, lab, v in samples
               if n == "taskito_task_runtime_seconds_bucket" and lab["task"] == "tasks.work"}
    assert list(buckets) == [repr(b) for b in RUNTIME_BUCKETS] + ["+Inf"]
    assert buckets["0.005"] == 1 and buckets["0.025"] == 1 and buckets["0.05"] == 3
    assert buckets["2.5"] == 3 and buckets["5.0"] == 4 and buckets["3600.0"] == 4 and buckets["+Inf"] == 5
    counts = list(buckets.values())
    assert counts == sorted(counts)
    assert value(samples, "taskito_task_runtime_seconds_count", task="tasks.work") == 5
    assert value(samples, "taskito_task_runtime_seconds_sum", task="tasks.work") == pytest.approx(7204.062, abs=0.01)


def test_label_values_are_escaped(queue: Queue) -> None:
    nasty = 'we"ird\\task\nname'
    queue.enqueue(nasty)
    queue.pause('q"1')
    text = render_metrics(queue)
    _, samples = parse(text)
    assert value(samples, "taskito_jobs", queue="default", status="pending") == 1
    assert value(samples, "taskito_task_completions", task=nasty) == 0
    assert value(samples, "taskito_queue_paused", queue='q"1') == 1


def test_metrics_count_live_workers_and_need_the_token(queue: Queue) -> None:
    queue.storage.register_worker("w-1", {"hostname": "h", "pid": 1, "queues": ["default"], "concurrency": 2})
    from werkzeug.test import Client

    http = Client(create_app(queue, token="t0ken"))
    assert http.get("/metrics").status_code == 401
    response = http.get("/metrics", headers={"Authorization": "Bearer t0ken"})
    _, samples = parse(response.get_data(as_text=True))
    assert value(samples, "taskito_workers") == 1


# -- the storage queries, on SQLite and PostgreSQL -------------------------------------------------------
def test_task_metrics_on_every_engine(engine_queue: Queue) -> None:
    populate(engine_queue)
    metrics = engine_queue.storage.task_metrics([0.5, 60.0])
    assert set(metrics) == {"tasks.add", "tasks.send_mail", "tasks.flaky", "tasks.explode", "tasks.echo"}
    add = metrics["tasks.add"]
    assert add["counts"] == {"pending": 1, "running": 0, "completed": 2, "failed": 0, "dead": 0, "cancelled": 1}
    assert add["failures"] == 0
    assert add["runtime"]["count"] == 2 and add["runtime"]["buckets"] == [2, 2]  # started and finished at once
    assert metrics["tasks.explode"]["failures"] == 2 and metrics["tasks.explode"]["counts"]["dead"] == 2
    assert metrics["tasks.flaky"]["failures"] == 1 and metrics["tasks.flaky"]["runtime"]["count"] == 0


def test_throughput_on_every_engine(engine_queue: Queue) -> None:
    start = time.time() - 1
    populate(engine_queue)
    buckets = engine_queue.storage.throughput(start - 35, 10)
    assert set(buckets) <= {3, 4}  # everything happened in the last couple of seconds
    assert sum(b["completed"] for b in buckets.values()) == 2
    assert sum(b["dead"] for b in buckets.values()) == 2
    assert sum(b["failed"] for b in buckets.values()) == 3
    assert engine_queue.storage.throughput(time.time() + 5, 10) == {}
    with pytest.raises(ValueError, match="step must be positive"):
        engine_queue.storage.throughput(start, 0)


def test_promtool_accepts_the_metrics_on_every_engine(engine_queue: Queue) -> None:
    """Prometheus' own checker (format and lint) over a queue with completed, failed, dead, delayed and
    unknown-task jobs; `.ci/run` installs it (Debian's prometheus package)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus): the format is checked by parse() only")
    populate(engine_queue)
    engine_queue.enqueue("tasks.add", args=(1, 2), delay=3600)
    engine_queue.enqueue("no.such.task")
    text = render_metrics(engine_queue)
    assert "taskito_task_runtime_seconds_bucket" in text
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
