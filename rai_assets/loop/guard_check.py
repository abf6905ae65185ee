"""Deciding whether a drift report may trigger a retraining run: all guards, recorded (RET-1..6).

Each decision goes to the ledger (``guard_decisions``) and each refusal to a metric, so a refusal
is visible in the sensor's skip reason, the ledger and Prometheus.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from datetime import datetime
from typing import Any

from rai_assets.adapters import metrics
from rai_assets.adapters.ledger import loop
from rai_assets.adapters.ledger.resource import Conn, LedgerResource
from rai_assets.domain.guards import (
    GuardDecision,
    circuit_breaker,
    cooldown,
    drift_actionable,
    evaluate_guards,
    gpu_hours,
    month_bounds,
    mutex,
    quota,
)
from rai_assets.domain.model_spec import ModelSpec


def check_retraining(ledger: LedgerResource, *, tenant: str, season: str, report_sha256: str,
                     report_body: dict[str, Any], spec: ModelSpec, now: datetime,
                     active_retraining_runs: Sequence[str],
                     conn: Conn | None = None) -> tuple[GuardDecision, list[GuardDecision]]:
    """Apply the drift, mutex, cooldown, circuit-breaker and quota guards; record them.

    ``conn``: an open ledger transaction to use (switched to ``tenant``) instead of a new connection, so a
    sensor can batch a tick's reports in one transaction.

    Returns:
        (overall decision — the first refusal or "all guards passed", every guard's decision).
    """
    month_start, month_end = month_bounds(now)
    if conn is not None:
        LedgerResource.switch_tenant(conn, tenant)
    with ledger.connect(tenant) if conn is None else nullcontext(conn) as conn:
        rollback_at = loop.last_rollback(conn, tenant)
        outcomes = loop.retraining_outcomes(conn, tenant)
        reset_at = loop.last_breaker_reset(conn, tenant)
        hours = gpu_hours(loop.gpu_runs(conn, tenant, month_start), month_start, month_end)
        decisions = [
            drift_actionable(report_body, spec.drift),
            mutex(list(active_retraining_runs)),
            cooldown(rollback_at, now, spec.retraining.cooldown_days),
            circuit_breaker(outcomes, reset_at=reset_at, threshold=spec.retraining.failure_threshold),
            quota(hours, hours * spec.retraining.gpu_hour_cost, gpu_hours_limit=spec.retraining.gpu_hours_per_month,
                  budget_limit=spec.retraining.monthly_budget),
        ]
        loop.record_guard_decisions(conn, tenant=tenant, season=season, drift_report_sha256=report_sha256,
                                    decisions=decisions)
    for d in decisions:
        if not d.allowed:
            metrics.retrain_refusals.labels(tenant=tenant, guard=d.guard).inc()
        if d.guard == "cooldown":
            metrics.retrain_cooldown_active.labels(tenant=tenant).set(0 if d.allowed else 1)
        elif d.guard == "circuit_breaker":
            metrics.circuit_breaker_open.labels(tenant=tenant).set(0 if d.allowed else 1)
        elif d.guard == "drift" and d.allowed:
            metrics.actionable_drift.labels(tenant=tenant).set(now.timestamp())
    limit = spec.retraining.gpu_hours_per_month
    if limit > 0:
        metrics.quota_used_ratio.labels(tenant=tenant).set(hours / limit)
    return evaluate_guards(decisions), decisions
