"""Prometheus metrics of the platform (OBS-1), in one registry.

Processes that are not scraped (Dagster run workers, sensor ticks) export the registry as a text
file for the node-exporter textfile collector (``RAI_METRICS_FILE``, default
``<state_dir>/metrics/rai_assets.prom``).
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, write_to_textfile

REGISTRY = CollectorRegistry()

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
                           "baseline on the latest labelled season (REG-10)", ["tenant"], registry=REGISTRY)
naive_floor_fallbacks = Counter("rai_naive_floor_fallbacks_total", "Fallbacks of a tenant's champion because it was "
                                "significantly worse than the naive baseline (REG-10)", ["tenant"], registry=REGISTRY)


def export(state_dir: str | None = None) -> Path:
    """Write the registry to the textfile-collector file; returns its path."""
    path = Path(os.environ.get("RAI_METRICS_FILE") or
                Path(state_dir or os.environ.get("RAI_STATE_DIR", ".rai")) / "metrics" / "rai_assets.prom")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), REGISTRY)
    return path
