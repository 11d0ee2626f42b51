"""OpenTelemetryMiddleware: the worker's span continues the enqueuer's trace (in-memory exporters)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from taskito import Queue, TaskFailedError
from taskito.contrib.otel import OpenTelemetryMiddleware
from tests.support import start_worker, wait_until

APPS = Path(__file__).resolve().parent.parent / "apps"


def test_a_worker_span_per_attempt_continues_the_web_request_s_trace(engine_env: dict[str, str],
                                                                     tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    client = Queue()
    client.add_middleware(OpenTelemetryMiddleware(tracer_provider=provider))
    worker = start_worker("otel_app:queue", APPS, env=engine_env)
    try:
        with provider.get_tracer("web").start_as_current_span("GET /orders") as request:
            job = client.enqueue("otel_app.traced", (21,))
            failing = client.enqueue("otel_app.breaks")
        assert job.result(timeout=20) == 42
        with pytest.raises(TaskFailedError):
            failing.result(timeout=20)
    finally:
        worker.stop()
    web = {span.name: span for span in exporter.get_finished_spans()}
    enqueue = web["enqueue otel_app.traced"]
    assert enqueue.parent.span_id == request.get_span_context().span_id
    assert enqueue.attributes["messaging.message.id"] == job.id
    spans_file = tmp_path / "spans.json"
    wait_until(spans_file.exists, message="the worker's spans")
    worked = {span["name"]: span for span in json.loads(spans_file.read_text())}
    run = worked["run otel_app.traced"]
    trace_id = request.get_span_context().trace_id
    assert run["trace_id"] == trace_id and run["parent_id"] == enqueue.context.span_id and run["kind"] == "CONSUMER"
    assert run["attributes"]["taskito.task_name"] == "otel_app.traced" and run["status"] == "UNSET"
    inner = worked["inside the task"]  # the task's own span nests under the attempt's
    assert inner["trace_id"] == trace_id and inner["parent_id"] == run["span_id"]
    broke = worked["run otel_app.breaks"]
    assert broke["status"] == "ERROR" and broke["trace_id"] == trace_id
    assert broke["parent_id"] == web["enqueue otel_app.breaks"].context.span_id
    client.close()
