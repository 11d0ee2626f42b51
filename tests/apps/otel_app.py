"""A worker app traced with OpenTelemetry: ``taskito worker --app otel_app:queue``.

Its spans go to the SDK's in-memory exporter; when the worker stops they are written to
EFFECTS_DIR/spans.json for the test to read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from taskito import Queue
from taskito.contrib.otel import OpenTelemetryMiddleware

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

queue = Queue()
queue.add_middleware(OpenTelemetryMiddleware())


@queue.on_event("worker.stopped")
def dump_spans(event: dict[str, Any]) -> None:
    spans = [{"name": span.name, "trace_id": span.context.trace_id, "span_id": span.context.span_id,
              "parent_id": span.parent.span_id if span.parent else None, "kind": span.kind.name,
              "status": span.status.status_code.name, "attributes": dict(span.attributes or {})}
             for span in exporter.get_finished_spans()]
    (Path(os.environ.get("EFFECTS_DIR", ".")) / "spans.json").write_text(json.dumps(spans))


@queue.task()
def traced(x: int) -> int:
    with trace.get_tracer("otel_app").start_as_current_span("inside the task"):
        return x * 2


@queue.task(max_retries=0)
def breaks() -> None:
    raise RuntimeError("traced failure")
