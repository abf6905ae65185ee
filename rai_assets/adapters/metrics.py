"""Prometheus metrics of the platform (OBS-1, OBS-5), in one registry.

Transport depends on the process:

* **Runs and steps** are short-lived (on Kubernetes each step is its own pod). :func:`export` pushes
  the registry to the Pushgateway named by ``RAI_PUSHGATEWAY_URL`` under the grouping key
  ``{job="rai_assets_run", run_id=<Dagster run id>, step=<step key>}``: one run never overwrites
  another run's (or another step's) series. The group is deleted after the run ends by
  ``metrics_gc_sensor`` (:func:`delete_run_groups`). The run id is only a grouping key, never a
  label of a metric; the recording rules aggregate it away.
* **Long-lived processes** (the code server evaluating sensors) expose ``/metrics`` on
  ``RAI_METRICS_PORT`` (:func:`serve`); :func:`export` is then a no-op.
* With neither set, :func:`export` writes a node-exporter textfile (``RAI_METRICS_FILE``, default
  ``<state_dir>/metrics/rai_assets.prom``) as before.

Labels are bounded: ``tenant``, ``season`` and small enums (``stage``, ``status``, ``guard``,
``decision``, ``check``, ``role``, ``sensor``). Never a run id or a field id.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    delete_from_gateway,
    disable_created_metrics,
    push_to_gateway,
    start_http_server,
    write_to_textfile,
)

disable_created_metrics()  # no *_created series: half the counter series, nothing the rules use
REGISTRY = CollectorRegistry()
PUSH_JOB = "rai_assets_run"
PUSHGATEWAY_ENV = "RAI_PUSHGATEWAY_URL"
METRICS_PORT_ENV = "RAI_METRICS_PORT"

# --- the original names (OBS-1) ---------------------------------------------------------------
drift_psi_value = Gauge("rai_drift_psi_value", "Largest PSI of the latest drift report", ["tenant", "season"],
                        registry=REGISTRY)
training_duration_seconds = Histogram("rai_training_duration_seconds", "Model training duration", ["tenant"],
                                      registry=REGISTRY, buckets=(1, 5, 15, 60, 300, 900, 3600, 14400, 86400))
pipeline_status = Counter("rai_pipeline_status", "Pipeline outcomes", ["stage", "status"], registry=REGISTRY)
retrain_cooldown_active = Gauge("rai_retrain_cooldown_active", "1 while the tenant is in its post-rollback cooldown",
                                ["tenant"], registry=REGISTRY)
retrain_refusals = Counter("rai_retrain_refusals_total", "Retraining requests refused by a guard",
                           ["tenant", "guard"], registry=REGISTRY)
dead_letters = Gauge("rai_dead_letters", "Dead letters of a tenant-season", ["tenant", "season"], registry=REGISTRY)
model_mae = Gauge("rai_model_mae_kg_ha", "Held-out MAE of the latest evaluation", ["tenant", "role"],
                  registry=REGISTRY)

served_below_naive = Gauge("rai_served_below_naive", "1 while the served model is significantly worse than the naive "
                           "baseline on the latest labelled season (REG-10): the floor found no governed fallback",
                           ["tenant"], registry=REGISTRY)
naive_floor_fallbacks = Counter("rai_naive_floor_fallbacks_total", "Fallbacks of a tenant's champion because it was "
                                "significantly worse than the naive baseline (REG-10)", ["tenant"], registry=REGISTRY)

# --- added with issue 11 ----------------------------------------------------------------------
dead_letters_new = Counter("rai_dead_letters_new_total", "Dead letters written by this run (new ones only)",
                           ["tenant"], registry=REGISTRY)
ingested_events = Counter("rai_ingested_events_total", "Learning events written to the ledger (new ones only)",
                          ["tenant"], registry=REGISTRY)
ingestion_last_success = Gauge("rai_ingestion_last_success_timestamp_seconds",
                               "Unix time of the tenant's last successful ingestion", ["tenant"], registry=REGISTRY)
season_cadence_seconds = Gauge("rai_season_cadence_seconds",
                               "Longest expected gap between two uploads of the tenant (its season cadence)",
                               ["tenant"], registry=REGISTRY)
integrity_failures = Counter("rai_integrity_failures_total",
                             "Integrity checks that failed: signature, digest, conflict, audit_chain",
                             ["tenant", "check"], registry=REGISTRY)
promotion_decisions = Counter("rai_promotion_decisions_total",
                              "Staged-promotion decisions (metrics.PROMOTION_DECISIONS)",
                              ["tenant", "decision"], registry=REGISTRY)
forecast_mae = Gauge("rai_forecast_mae_kg_ha", "MAE of the served model and of the naive baseline on the tenant's "
                     "latest labelled season (the naive floor's figures)",
                     ["tenant", "model"], registry=REGISTRY)
actionable_drift = Gauge("rai_drift_actionable_timestamp_seconds",
                         "Unix time the tenant's latest actionable drift was seen (0: none pending)",
                         ["tenant"], registry=REGISTRY)
candidate_trained = Gauge("rai_candidate_trained_timestamp_seconds",
                          "Unix time the tenant's latest candidate model was trained", ["tenant"], registry=REGISTRY)
quota_used_ratio = Gauge("rai_retrain_quota_used_ratio", "Share of the monthly GPU-hour quota used (0..1+)",
                         ["tenant"], registry=REGISTRY)
circuit_breaker_open = Gauge("rai_retrain_circuit_breaker_open", "1 while the tenant's retraining breaker is open",
                             ["tenant"], registry=REGISTRY)
drift_detection_latency = Histogram("rai_drift_detection_latency_seconds",
                                    "Landed file seen by the landing sensor → signed drift report (DRIFT-5)",
                                    registry=REGISTRY, buckets=(60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400))
sensor_ticks = Counter("rai_sensor_ticks_total", "Sensor evaluations by outcome (ok, error)", ["sensor", "outcome"],
                       registry=REGISTRY)
sensor_last_success = Gauge("rai_sensor_last_success_timestamp_seconds", "Unix time of the sensor's last good tick",
                            ["sensor"], registry=REGISTRY)

# Per-season gauges keep the tenant's latest seasons only, so a long-lived process stays bounded.
SEASONS_KEPT = 6
# Upper bound of series per tenant: 22 counter series (5 guards, 4 checks, 10 decisions, 3 others),
# 12 histogram series (10 buckets, sum, count), 12 gauges, 2 per-season gauges × SEASONS_KEPT.
MAX_SERIES_PER_TENANT = 22 + 12 + 12 + 2 * SEASONS_KEPT
_seasons_seen: dict[tuple[str, str], list[str]] = {}


def set_season_gauge(gauge: Gauge, tenant: str, season: str, value: float) -> None:
    """Set ``gauge{tenant, season}`` and drop the tenant's seasons older than the last :data:`SEASONS_KEPT`."""
    gauge.labels(tenant=tenant, season=season).set(value)
    seen = _seasons_seen.setdefault((gauge._name, tenant), [])
    if season in seen:
        seen.remove(season)
    seen.append(season)
    for old in sorted(seen)[:-SEASONS_KEPT]:
        seen.remove(old)
        with contextlib.suppress(KeyError):
            gauge.remove(tenant, old)


def series_of_tenant(tenant: str) -> int:
    """How many series of :data:`REGISTRY` carry ``tenant="<tenant>"`` (the cardinality note's measure)."""
    return sum(1 for family in REGISTRY.collect() for sample in family.samples
               if sample.labels.get("tenant") == tenant)


PROMOTION_DECISIONS = ("bootstrap", "shadow", "refused", "insufficient_sample", "continue", "promote", "abort",
                       "rollback", "naive_floor")


def record_promotion(tenant: str, stage: str, decision: str) -> None:
    """Count a promotion decision, its label reduced to :data:`PROMOTION_DECISIONS` (bounded; else ``other``).

    A canary ``rollback`` (candidate significantly worse) is an aborted canary; the ``rollback`` stage is a
    champion rolled back to its predecessor.
    """
    head = decision.split(":")[0].strip() if decision else ""
    word = "refused" if "refused" in head.split(" ") else head.split(" ")[0]  # "bootstrap refused: why"
    if stage == "canary" and word == "rollback":
        word = "abort"
    metrics_decision = word if word in PROMOTION_DECISIONS else "other"
    promotion_decisions.labels(tenant=tenant, decision=metrics_decision).inc()


def record_forecast_mae(tenant: str, *, served_mae: float | None, naive_mae: float) -> None:
    """Held-out MAE of the served model (None: nothing served yet) and of the naive baseline."""
    forecast_mae.labels(tenant=tenant, model="naive").set(naive_mae)
    if served_mae is not None:
        forecast_mae.labels(tenant=tenant, model="served").set(served_mae)


_served: dict[str, object] = {}
_served_lock = threading.Lock()


def serve(port: int | None = None, addr: str = "127.0.0.1") -> int | None:
    """Expose ``/metrics`` of :data:`REGISTRY` on ``port`` (default ``RAI_METRICS_PORT``), once per process.

    Returns the port, or None when no port is configured. Long-lived processes call this (every
    sensor tick does); afterwards :func:`export` outside a run does nothing (Prometheus scrapes).
    """
    if port is None:
        configured = os.environ.get(METRICS_PORT_ENV, "")
        if not configured:
            return None
        port = int(configured)
    with _served_lock:
        if "server" not in _served:
            try:
                _served["server"] = start_http_server(port, addr=os.environ.get("RAI_METRICS_ADDR", addr),
                                                      registry=REGISTRY)
            except OSError as exc:  # another process of this host serves it (e.g. a restarted code server)
                logging.getLogger(__name__).warning("cannot serve /metrics on port %s: %s", port, exc)
                return None
            _served["port"] = port
    return int(_served["port"])  # type: ignore[call-overload]


def serving() -> bool:
    """Whether this process exposes ``/metrics`` (so pushing would duplicate series)."""
    return "server" in _served


@dataclass(frozen=True)
class PushTarget:
    """Where a run's metrics go: the gateway and the grouping key."""

    gateway: str
    grouping_key: dict[str, str]


def current_push_target() -> PushTarget | None:
    """The Pushgateway group of the step running in this thread, or None (no gateway, or not in a step)."""
    gateway = os.environ.get(PUSHGATEWAY_ENV, "")
    if not gateway:
        return None
    from rai_assets.adapters.tracing import current_run

    run = current_run()
    if run is None:
        return None
    return PushTarget(gateway, {"run_id": run.run_id, "step": run.step_key or "run"})


def export(state_dir: str | None = None) -> Path | str | None:
    """Publish the registry with the transport of this process.

    In a run with ``RAI_PUSHGATEWAY_URL`` set: push to the run's group. Otherwise nothing when this
    process is scraped (``/metrics``) or a gateway is configured (a sensor: it is scraped), else the
    textfile. Returns the gateway URL pushed to, the textfile written, or None.
    """
    target = current_push_target()
    if target is not None:
        push_to_gateway(target.gateway, job=PUSH_JOB, registry=REGISTRY, grouping_key=target.grouping_key,
                        timeout=10)
        return target.gateway
    if serving() or os.environ.get(PUSHGATEWAY_ENV):
        return None
    path = Path(os.environ.get("RAI_METRICS_FILE") or
                Path(state_dir or os.environ.get("RAI_STATE_DIR", ".rai")) / "metrics" / "rai_assets.prom")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), REGISTRY)
    return path


def run_groups(gateway: str) -> list[dict[str, str]]:
    """Grouping keys of every ``rai_assets_run`` group on the gateway (its ``/api/v1/metrics``)."""
    import json
    from urllib.request import urlopen

    base = gateway if "://" in gateway else f"http://{gateway}"
    with urlopen(f"{base.rstrip('/')}/api/v1/metrics", timeout=10) as response:
        body = json.load(response)
    groups = []
    for group in body.get("data", []):
        labels = dict(group.get("labels", {}))
        if labels.get("job") == PUSH_JOB:
            groups.append(labels)
    return groups


def delete_run_groups(gateway: str, run_ids: Iterable[str]) -> int:
    """Delete every group (all steps) of the given runs from the gateway; returns how many went."""
    wanted = set(run_ids)
    deleted = 0
    for labels in run_groups(gateway):
        if labels.get("run_id") in wanted:
            key = {k: v for k, v in labels.items() if k != "job"}
            delete_from_gateway(gateway, job=PUSH_JOB, grouping_key=key, timeout=10)
            deleted += 1
    return deleted


def tick_ok(sensor: str) -> None:
    """Count a good tick of ``sensor`` and stamp its time (the loop's own staleness, OBS-5)."""
    sensor_ticks.labels(sensor=sensor, outcome="ok").inc()
    sensor_last_success.labels(sensor=sensor).set(time.time())


def tick_error(sensor: str) -> None:
    """Count a failed tick of ``sensor``."""
    sensor_ticks.labels(sensor=sensor, outcome="error").inc()
