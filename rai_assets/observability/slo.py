"""The loop's SLOs, each with its PromQL and where it is shown (README "SLOs"; dashboard ``rai-slo``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Slo:
    """One service-level objective."""

    name: str
    objective: str
    promql: str
    unit: str
    legend: str
    alert: str


SLOS: tuple[Slo, ...] = (
    Slo("Drift detection latency", "p95 < 4 h (DRIFT-5): landed file → drift report",
        "histogram_quantile(0.95, sum by (le) (rate(rai_drift_detection_latency_seconds_bucket[1d])))", "s", "p95",
        "RaiLoopStale"),
    Slo("Drift → trained candidate", "< 24 h (RET-9)", "rai:drift_unacted_seconds", "s", "{{tenant}}",
        "RaiDriftNotActedOn"),
    Slo("Retraining success rate", "≥ 95 % over 7 d", "rai:retraining_success_ratio:7d", "percentunit", "success",
        "RaiRetrainingFailed"),
    Slo("Ingestion freshness", "every tenant ingested within its season cadence",
        "(time() - rai:ingestion_last_success:max) / on (tenant) rai:season_cadence_seconds:max", "percentunit",
        "{{tenant}} share of cadence", "RaiIngestionStale"),
)
