"""``/metrics`` in the Prometheus text exposition format (0.0.4), without prometheus-client.

Everything is read from the database on each scrape, so the numbers cover the
rows still retained (``result_ttl`` and purges remove old ones). That is why the
per-task numbers are gauges, not counters: they can go down when rows are purged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..queue import Queue

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METRICS_WINDOW = 3600  # seconds of task metrics the attempt and wait families cover (a scrape reads 60 minutes)
STAT_NAMES = ("pending", "running", "completed", "failed", "dead", "cancelled")  # as Queue.stats() names them

# Seconds; Prometheus' defaults stretched to cover long-running tasks.
RUNTIME_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                                      60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{_escape(str(value))}"' for name, value in labels.items()) + "}"


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


class _Family:
    def __init__(self, lines: list[str], name: str, kind: str, help_text: str) -> None:
        self.lines = lines
        self.name = name
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    def sample(self, value: float, suffix: str = "", **labels: str) -> None:
        self.lines.append(f"{self.name}{suffix}{_labels(**labels)} {_number(value)}")


def render_metrics(queue: Queue, buckets: Iterable[float] = RUNTIME_BUCKETS) -> str:
    """The whole exposition as text (one scrape)."""
    bounds = sorted(float(bound) for bound in buckets)
    lines: list[str] = []

    per_queue = queue.stats_all_queues()
    paused = set(queue.paused_queues())
    for name in paused | set(queue.default_queues()):  # known queues with no jobs show as zeros
        per_queue.setdefault(name, dict.fromkeys(STAT_NAMES, 0))
    jobs = _Family(lines, "taskito_jobs", "gauge", "Jobs in the database by queue and status.")
    for name in sorted(per_queue):
        for status, count in per_queue[name].items():
            jobs.sample(count, queue=name, status=status)

    paused_family = _Family(lines, "taskito_queue_paused", "gauge", "1 if workers do not claim this queue's jobs.")
    for name in sorted(per_queue):
        paused_family.sample(1 if name in paused else 0, queue=name)

    workers = _Family(lines, "taskito_workers", "gauge", "Live workers (recent heartbeat).")
    workers.sample(len(queue.workers()))

    tasks = queue.task_metrics(bounds)
    names = sorted(tasks)
    completions = _Family(lines, "taskito_task_completions", "gauge",
                          "Completed jobs per task (retained rows).")
    for name in names:
        completions.sample(tasks[name]["counts"]["completed"], task=name)
    failures = _Family(lines, "taskito_task_failures", "gauge",
                       "Failed attempts per task, retried or not (retained rows).")
    for name in names:
        failures.sample(tasks[name]["failures"], task=name)
    dead = _Family(lines, "taskito_task_dead_letters", "gauge", "Dead jobs per task (retained rows).")
    for name in names:
        dead.sample(tasks[name]["counts"]["dead"], task=name)

    runtime = _Family(lines, "taskito_task_runtime_seconds", "histogram",
                      "Run time of completed jobs' last attempt (finished_at - started_at), retained rows.")
    for name in names:
        histogram = tasks[name]["runtime"]
        for bound, count in zip(bounds, histogram["buckets"], strict=True):
            runtime.sample(count, "_bucket", task=name, le=_number(bound))
        runtime.sample(histogram["count"], "_bucket", task=name, le="+Inf")
        runtime.sample(float(histogram["sum"]), "_sum", task=name)
        runtime.sample(histogram["count"], "_count", task=name)

    oldest = _Family(lines, "taskito_queue_oldest_due_age_seconds", "gauge",
                     "Seconds the longest-waiting due job of the queue has waited (0: none waits).")
    figures = queue.queue_stats(since=METRICS_WINDOW)
    for name in sorted(set(figures) | set(per_queue)):
        oldest.sample(float(figures.get(name, {}).get("oldest_due_age") or 0.0), queue=name)

    minutes = queue.task_minutes_histograms(since=METRICS_WINDOW)
    attempts = _Family(lines, "taskito_task_attempts", "gauge",
                       "Attempts per task and outcome (complete, failed: retried, dead; cancelled jobs) in the "
                       "last hour (task metrics, which survive purges).")
    for name in sorted(minutes):
        for outcome, count in minutes[name].counts.items():
            attempts.sample(count, task=name, outcome=outcome)
    wait = _Family(lines, "taskito_task_wait_seconds", "histogram",
                   "Seconds from a job's due time to the start of each attempt, in the last hour.")
    for name in sorted(minutes):
        histogram = minutes[name].wait
        for bound, count in zip(RUNTIME_BUCKETS, histogram.cumulative(RUNTIME_BUCKETS), strict=True):
            wait.sample(count, "_bucket", task=name, le=_number(bound))
        wait.sample(histogram.count, "_bucket", task=name, le="+Inf")
        wait.sample(float(histogram.sum), "_sum", task=name)
        wait.sample(histogram.count, "_count", task=name)

    return "\n".join(lines) + "\n"
