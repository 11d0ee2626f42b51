"""OpenTelemetry tracing: a span per enqueue and per attempt, in one trace from the web request to the worker.

    from taskito.contrib.otel import OpenTelemetryMiddleware
    queue.add_middleware(OpenTelemetryMiddleware())

The enqueue span (kind PRODUCER) is a child of whatever span is current where the job is enqueued
(the web request's); its context travels in the job's headers (W3C ``traceparent``, or whatever
propagator is configured), and each attempt's span (kind CONSUMER) continues that trace in the
worker, current while the task runs, so the task's own spans nest under it. Spans go to the tracer
provider configured in each process (``opentelemetry-sdk``), or to nowhere when none is.
Needs ``pip install taskito[otel]``.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from ..execution import describe
from ..middleware import JobInfo, Middleware

_STATE = "taskito.otel"


def _attributes(job: JobInfo) -> dict[str, Any]:
    return {"messaging.system": "taskito", "messaging.destination.name": job.queue,
            "messaging.message.id": job.id, "taskito.task_name": job.task_name,
            "taskito.retry_count": job.retry_count}


class OpenTelemetryMiddleware(Middleware):
    """Trace enqueues and attempts; ``tracer_provider``: the global one unless given."""

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        self.tracer = trace.get_tracer("taskito", tracer_provider=tracer_provider)

    def on_enqueue(self, job: JobInfo) -> None:
        with self.tracer.start_as_current_span(f"enqueue {job.task_name}", kind=SpanKind.PRODUCER,
                                               attributes=_attributes(job)):
            propagate.inject(job.headers)

    def before(self, job: JobInfo) -> None:
        span = self.tracer.start_span(f"run {job.task_name}", context=propagate.extract(job.headers),
                                      kind=SpanKind.CONSUMER, attributes=_attributes(job))
        job.state[_STATE] = (span, context.attach(trace.set_span_in_context(span)))

    def after(self, job: JobInfo, result: Any, error: BaseException | None) -> None:
        span, token = job.state.pop(_STATE, (None, None))
        if span is None:
            return
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, describe(error)))
        context.detach(token)
        span.end()
