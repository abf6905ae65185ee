"""Metric transport and trace plumbing without servers. REQ: OBS-1, OBS-2, OBS-5."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from types import SimpleNamespace

from prometheus_client import Gauge

from rai_assets.adapters import metrics, tracing


def test_without_a_gateway_export_writes_the_textfile(tmp_path, monkeypatch):
    monkeypatch.delenv(metrics.PUSHGATEWAY_ENV, raising=False)
    monkeypatch.setenv("RAI_METRICS_FILE", str(tmp_path / "rai.prom"))
    if metrics.serving():  # another test in this process serves /metrics: then nothing is written
        assert metrics.export() is None
        return
    assert metrics.export() == tmp_path / "rai.prom"
    assert "rai_dead_letters" in (tmp_path / "rai.prom").read_text()


def test_outside_a_run_a_configured_gateway_is_not_pushed_to(monkeypatch):
    """A sensor (long-lived, scraped) never pushes: there is no run to group under."""
    monkeypatch.setenv(metrics.PUSHGATEWAY_ENV, "127.0.0.1:1")  # nothing listens: a push would raise
    assert metrics.current_push_target() is None
    assert metrics.export() is None


def test_no_metric_has_a_run_or_field_label():
    for family in metrics.REGISTRY.collect():
        for sample in family.samples:
            assert not {"run_id", "field_id", "field", "run"} & set(sample.labels), family.name
    collectors = [v for v in vars(metrics).values() if hasattr(v, "_labelnames")]
    allowed = {"tenant", "season", "stage", "status", "guard", "role", "check", "decision", "model", "sensor",
               "outcome"}
    for collector in collectors:
        assert set(collector._labelnames) <= allowed, collector._name


def test_season_gauges_keep_the_latest_seasons_only():
    gauge = Gauge("rai_test_season_gauge", "test", ["tenant", "season"], registry=None)
    for i in range(1, 10):
        metrics.set_season_gauge(gauge, "t", f"s{i:02d}", float(i))
    seasons = sorted(s.labels["season"] for s in next(iter(gauge.collect())).samples)
    assert seasons == [f"s{i:02d}" for i in range(10 - metrics.SEASONS_KEPT, 10)]


def test_sensor_tick_starts_a_trace_and_run_tags_carry_it():
    with tracing.sensor_tick("test_sensor") as span:
        tags = tracing.trace_tags()
        tick_trace = tracing.format_trace_id(span.get_span_context().trace_id)
    assert tags[tracing.TRACE_ID_TAG] == tick_trace and tick_trace != "0" * 32
    with tracing.landing_trace("t", "s01", ["k"]) as landing:
        assert landing[tracing.TRACE_ID_TAG] not in ("", tick_trace)  # a landed file starts its own trace
    # a run continues the trace named by its tags; a hand-launched run gets its run id as trace id
    run = SimpleNamespace(run_id="0f" * 16, job_name="j", tags={tracing.TRACEPARENT_TAG: tags[tracing.TRACEPARENT_TAG]})
    with tracing.run_scope(run):
        assert tracing.current_trace_id() == tick_trace
    manual = SimpleNamespace(run_id="12345678-1234-1234-1234-123456789abc", job_name="j", tags={})
    with tracing.run_scope(manual):
        assert tracing.current_trace_id() == "12345678123412341234123456789abc"
    assert tracing.current_trace_id() == ""


def test_json_log_lines_carry_the_trace_id():
    record = logging.LogRecord("rai", logging.INFO, __file__, 1, "hello", None, None)
    record.dagster_meta = {"run_id": "r1", "orig_message": "hello", "step_key": "learning_events",  # type: ignore[attr-defined]
                           "job_tags": {"dagster/partition/tenant": "t1", "dagster/partition/season": "s02",
                                        tracing.TRACEPARENT_TAG: "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"}}
    line = json.loads(tracing.JsonFormatter().format(record))
    assert line["trace_id"] == "ab" * 16 and line["tenant"] == "t1" and line["season"] == "s02"
    assert line["run_id"] == "r1" and line["level"] == "info" and "timestamp" in line


def test_otlp_export_only_with_the_standard_variables():
    """With no OTEL_* variable, spans get ids but no processor; with the endpoint set, an OTLP exporter."""
    probe = ("from rai_assets.adapters import tracing; from opentelemetry import trace; tracing.configure(); "
             "p = trace.get_tracer_provider(); print(len(p._active_span_processor._span_processors))")
    env_none = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OTEL_")}
    quiet = subprocess.run([sys.executable, "-c", probe], env=env_none, capture_output=True, text=True, check=True)
    assert quiet.stdout.strip().splitlines()[-1] == "0"
    env_otlp = {**env_none, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    loud = subprocess.run([sys.executable, "-c", probe], env=env_otlp, capture_output=True, text=True, check=True)
    assert loud.stdout.strip().splitlines()[-1] == "1"


def test_promotion_decisions_are_counted_with_bounded_labels():
    tenant = "promo-labels"
    for stage, decision in [("shadow", "shadow"), ("shadow", "refused: bias audit not passed"),
                            ("canary", "continue"), ("canary", "rollback"), ("rollback", "rollback"),
                            ("canary", "something new"), ("champion", "bootstrap"),
                            ("champion", "bootstrap refused: its bias audit did not pass (REG-5)"),
                            ("rollback", "naive_floor")]:
        metrics.record_promotion(tenant, stage, decision)
    counted = {s.labels["decision"]: s.value for f in metrics.REGISTRY.collect() for s in f.samples
               if s.name == "rai_promotion_decisions_total" and s.labels.get("tenant") == tenant}
    assert counted == {"shadow": 1, "refused": 2, "continue": 1, "abort": 1, "rollback": 1, "other": 1,
                       "bootstrap": 1, "naive_floor": 1}
