"""One OpenTelemetry trace id end to end (OBS-2, OBS-3).

* A sensor tick starts a span (:func:`sensor_tick`) and puts its W3C ``traceparent`` in the tags
  of every run it requests (:data:`TRACEPARENT_TAG`).
* Every step continues that trace without code in the assets: :class:`RunTraceIdGenerator` gives a
  span started in a step with no parent (``trained_model``'s ``train`` span, for one) the run's
  trace id, and :func:`current_trace_id` falls back to the run's. A run with no ``traceparent``
  tag (launched by hand) gets a trace id derived from its run id, so all its steps still share one
  id. :func:`run_scope` opens a proper child span of the run's trace where code wants one.
* The ledger sets ``rai.trace_id`` from :func:`current_trace_id` (the audit log's ``trace_id``),
  the MLflow adapter tags runs and model versions with it, and :class:`JsonFormatter` writes it in
  every log line with the tenant, season and run id.

Export is configured by the standard OpenTelemetry variables (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``OTEL_SERVICE_NAME``, ``OTEL_TRACES_EXPORTER=none`` …).
With none set, spans get real ids but no processor: they go nowhere and cost next to nothing.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dagster import Field, InitLoggerContext
from dagster import logger as dagster_logger
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT_TAG = "rai/traceparent"
TRACE_ID_TAG = "rai/trace-id"
_PROPAGATOR = TraceContextTextMapPropagator()
_configured = threading.Lock()
_state: dict[str, bool] = {}


def configure() -> None:
    """Install the SDK tracer provider once per process; add an OTLP exporter only when configured."""
    with _configured:
        if _state.get("done"):
            return
        _state["done"] = True
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get(
            "OTEL_SERVICE_NAME", "rai-assets")}), id_generator=RunTraceIdGenerator())
        wants_otlp = (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or
                      os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        if wants_otlp and os.environ.get("OTEL_TRACES_EXPORTER", "otlp") != "none":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)


class RunTraceIdGenerator(RandomIdGenerator):
    """Random ids, except that a root span started inside a Dagster step gets the run's trace id."""

    def generate_trace_id(self) -> int:
        """The current run's trace id when in a step, else a random one."""
        run = current_run()
        if run is not None and run.trace_id:
            return int(run.trace_id, 16)
        return super().generate_trace_id()


def tracer() -> trace.Tracer:
    """The platform's tracer (the SDK provider installed)."""
    configure()
    return trace.get_tracer("rai_assets")


def format_trace_id(trace_id: int) -> str:
    """32 lower-case hex digits, as OpenTelemetry and W3C write a trace id."""
    return format(trace_id, "032x")


def current_trace_id() -> str:
    """Trace id of the current span, else of the current run, else ``""``."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        return format_trace_id(span_context.trace_id)
    run = current_run()
    return run.trace_id if run is not None else ""


def traceparent() -> str:
    """The W3C ``traceparent`` of the current span (``""`` without one)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent", "")


def trace_tags() -> dict[str, str]:
    """Run tags that carry the current trace into a run (:data:`TRACEPARENT_TAG`, :data:`TRACE_ID_TAG`)."""
    parent = traceparent()
    return {TRACEPARENT_TAG: parent, TRACE_ID_TAG: current_trace_id()} if parent else {}


def context_from_tags(tags: Mapping[str, str], run_id: str = "") -> otel_context.Context:
    """The trace context a run continues: its ``traceparent`` tag, else one derived from its run id."""
    parent = tags.get(TRACEPARENT_TAG, "")
    if parent:
        return _PROPAGATOR.extract({"traceparent": parent})
    hex_id = run_id.replace("-", "")
    if len(hex_id) == 32:
        try:
            trace_id = int(hex_id, 16)
        except ValueError:
            trace_id = 0
        if trace_id:
            span_context = SpanContext(trace_id=trace_id, span_id=int(hex_id[:16], 16) or 1, is_remote=True,
                                       trace_flags=TraceFlags(TraceFlags.SAMPLED))
            return trace.set_span_in_context(NonRecordingSpan(span_context))
    return otel_context.Context()


@dataclass(frozen=True)
class RunInfo:
    """What logs, metrics and ledger rows need to know about the run (and step) in progress."""

    run_id: str
    job_name: str
    step_key: str | None
    tenant: str
    season: str
    trace_id: str


_current_run: contextvars.ContextVar[RunInfo | None] = contextvars.ContextVar("rai_current_run", default=None)


def _run_info(run: Any, step_key: str | None) -> RunInfo:
    tags = dict(run.tags or {})
    ctx = context_from_tags(tags, run.run_id)
    span_context = trace.get_current_span(ctx).get_span_context()
    return RunInfo(
        run_id=run.run_id, job_name=run.job_name, step_key=step_key,
        tenant=tags.get("dagster/partition/tenant") or tags.get("rai/tenant", ""),
        season=tags.get("dagster/partition/season") or tags.get("rai/season", ""),
        trace_id=format_trace_id(span_context.trace_id) if span_context.is_valid else "",
    )


def current_run() -> RunInfo | None:
    """The Dagster run (and step) executing in this thread, or None (a sensor, the CLI)."""
    try:
        from dagster._core.execution.context.compute import current_execution_context

        ctx = current_execution_context.get()
    except Exception:  # pragma: no cover - Dagster internals moved
        ctx = None
    if ctx is not None:
        op_ctx = ctx.op_execution_context
        return _run_info(op_ctx.run, op_ctx.get_step_execution_context().step.key)
    return _current_run.get()


_scopes: list[tuple[Any, Any, contextvars.Token[RunInfo | None]]] = []


def enter_run(run: Any) -> None:
    """Continue the run's trace in this process: a ``dagster.step`` span, attached until :func:`exit_run`.

    ``run`` is the ``DagsterRun``; with the in-process executor this covers every step, with the
    multi-process or Kubernetes executors each step's process calls it.
    """
    parent = context_from_tags(dict(run.tags or {}), run.run_id)
    info = _run_info(run, None)
    span = tracer().start_span(f"dagster.step {run.job_name}", context=parent, attributes={
        "dagster.run_id": run.run_id, "dagster.job": run.job_name, "rai.tenant": info.tenant,
        "rai.season": info.season})
    token = otel_context.attach(trace.set_span_in_context(span, parent))
    _scopes.append((span, token, _current_run.set(info)))


def exit_run() -> None:
    """End the span of the innermost :func:`enter_run` and detach its context."""
    if not _scopes:
        return
    span, token, run_token = _scopes.pop()
    span.end()
    try:
        otel_context.detach(token)
        _current_run.reset(run_token)
    except ValueError:  # set up and torn down in different contexts: nothing left to restore
        pass


@contextmanager
def run_scope(run: Any) -> Iterator[None]:
    """:func:`enter_run` … :func:`exit_run` as a context manager."""
    enter_run(run)
    try:
        yield
    finally:
        exit_run()


@contextmanager
def step_span(context: Any) -> Iterator[None]:
    """A ``dagster.step`` child span of the run's trace around an asset's body (``context``: its execution
    context). Optional: without it the step's spans, ledger rows and logs already carry the run's trace id.
    """
    with run_scope(context.run):
        yield


@contextmanager
def sensor_tick(name: str) -> Iterator[trace.Span]:
    """One sensor tick: a new trace (span ``sensor.<name>``), counted ok/error in the metrics (OBS-5)."""
    from rai_assets.adapters import metrics

    metrics.serve()  # sensors live in long-lived processes: /metrics when RAI_METRICS_PORT is set
    with tracer().start_as_current_span(f"sensor.{name}", context=otel_context.Context()) as span:
        try:
            yield span
        except Exception:
            metrics.tick_error(name)
            raise
        metrics.tick_ok(name)


@contextmanager
def continue_trace(parent: str) -> Iterator[None]:
    """Run the block inside a child span of the W3C ``traceparent`` ``parent`` (no-op when empty)."""
    if not parent:
        yield
        return
    ctx = _PROPAGATOR.extract({"traceparent": parent})
    with tracer().start_as_current_span("continue", context=ctx):
        yield


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, tenant, season, run id, trace id."""

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record`` as JSON, enriched from the current run and span."""
        run = current_run()
        meta = getattr(record, "dagster_meta", None) or {}
        tags = dict(meta.get("job_tags") or {})
        trace_id = current_trace_id()
        if not trace_id and meta.get("run_id"):
            span_context = trace.get_current_span(context_from_tags(tags, meta["run_id"])).get_span_context()
            trace_id = format_trace_id(span_context.trace_id) if span_context.is_valid else ""
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": meta.get("orig_message") or record.getMessage(),
            "tenant": getattr(record, "tenant", None) or tags.get("dagster/partition/tenant")
            or tags.get("rai/tenant") or (run.tenant if run else ""),
            "season": getattr(record, "season", None) or tags.get("dagster/partition/season")
            or tags.get("rai/season") or (run.season if run else ""),
            "run_id": meta.get("run_id") or (run.run_id if run else ""),
            "trace_id": trace_id,
        }
        if meta.get("step_key") or (run and run.step_key):
            line["step"] = meta.get("step_key") or (run.step_key if run else None)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def json_handler(stream: Any = None) -> logging.Handler:
    """A stream handler with :class:`JsonFormatter`."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    return handler


@contextmanager
def landing_trace(tenant: str, season: str, keys: list[str]) -> Iterator[dict[str, str]]:
    """A new trace for one landed tenant-season (linked to the current span, e.g. the sensor tick).

    Yields the run tags that carry it (:func:`trace_tags`).
    """
    tick = trace.get_current_span().get_span_context()
    links = [trace.Link(tick)] if tick.is_valid else []
    with tracer().start_as_current_span("landing", context=otel_context.Context(), links=links, attributes={
            "rai.tenant": tenant, "rai.season": season, "rai.landed_files": len(keys)}):
        yield trace_tags()


def log_json(log: Any, message: str, **fields: Any) -> None:
    """Log one JSON line through ``log`` (a Dagster or ``logging`` logger) with the trace id (OBS-3)."""
    line = {"timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"), "level": "info",
            "message": message, "trace_id": current_trace_id(), **fields}
    log.info(json.dumps(line, default=str))


@dagster_logger(
    {"log_level": Field(str, is_required=False, default_value="INFO"),
     "name": Field(str, is_required=False, default_value="rai_assets")},
    description="JSON lines on stderr: timestamp, level, tenant, season, run id, trace id (OBS-3).",
)
def json_console_logger(init_context: InitLoggerContext) -> logging.Logger:
    """The code location's console logger: one JSON object per line (:class:`JsonFormatter`)."""
    log = logging.Logger(init_context.logger_config["name"],
                         level=logging.getLevelName(init_context.logger_config["log_level"].upper()))
    log.addHandler(json_handler())
    return log
