"""Ledger access for the closed loop: promotion decisions, retraining outcomes, guard decisions,
rollbacks and breaker resets (RET-1..9)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from rai_assets.adapters import metrics
from rai_assets.adapters.ledger.resource import Conn

ROLLBACK_ACTIONS = ("governance.rollback", "promotion.rollback")


def record_promotion_decision(conn: Conn, *, tenant: str, season: str, candidate_model_id: int,
                              champion_model_id: int | None, stage: str, decision: str,
                              statistic: float | None = None, p_value: float | None = None,
                              likelihood_ratio: float | None = None, sample_size: int = 0,
                              evidence: dict[str, Any], run_id: str = "") -> int:
    """Record one staged-promotion decision with its test statistic and evidence; returns its id."""
    row = conn.execute(
        "INSERT INTO promotion_decisions (tenant_id, season_id, candidate_model_id, champion_model_id, stage,"
        " decision, statistic, p_value, likelihood_ratio, sample_size, evidence, dagster_run_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING decision_id",
        (tenant, season, candidate_model_id, champion_model_id, stage, decision, statistic, p_value,
         likelihood_ratio, sample_size, Jsonb(evidence), run_id),
    ).fetchone()
    assert row is not None
    metrics.record_promotion(tenant, stage, decision)
    return int(row["decision_id"])


def promotion_decisions(conn: Conn, tenant: str, candidate_model_id: int | None = None) -> list[dict[str, Any]]:
    """The tenant's promotion decisions, oldest first (optionally of one candidate)."""
    sql = "SELECT * FROM promotion_decisions WHERE tenant_id = %s"
    params: tuple[Any, ...] = (tenant,)
    if candidate_model_id is not None:
        sql += " AND candidate_model_id = %s"
        params = (tenant, candidate_model_id)
    return list(conn.execute(sql + " ORDER BY decision_id", params).fetchall())


def record_retraining_run(conn: Conn, *, tenant: str, run_id: str, season: str, trigger: str, outcome: str) -> None:
    """Record how a retraining run ended (feeds the circuit breaker, RET-5); idempotent per run."""
    conn.execute(
        "INSERT INTO retraining_runs (tenant_id, dagster_run_id, season_id, trigger, outcome)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (tenant, run_id, season, trigger, outcome),
    )


def retraining_outcomes(conn: Conn, tenant: str) -> list[tuple[datetime, str]]:
    """(finished_at, outcome) of the tenant's retraining runs, oldest first."""
    rows = conn.execute(
        "SELECT finished_at, outcome FROM retraining_runs WHERE tenant_id = %s ORDER BY finished_at", (tenant,)
    ).fetchall()
    return [(r["finished_at"], r["outcome"]) for r in rows]


def last_breaker_reset(conn: Conn, tenant: str) -> datetime | None:
    """When an admin last reset the tenant's circuit breaker."""
    row = conn.execute("SELECT max(reset_at) AS at FROM breaker_resets WHERE tenant_id = %s", (tenant,)).fetchone()
    return row["at"] if row else None


def last_rollback(conn: Conn, tenant: str) -> datetime | None:
    """When the tenant's champion was last rolled back (starts the cooldown, RET-4)."""
    row = conn.execute(
        "SELECT max(at) AS at FROM audit_log WHERE tenant_id = %s AND action = ANY(%s)",
        (tenant, list(ROLLBACK_ACTIONS)),
    ).fetchone()
    return row["at"] if row else None


def gpu_runs(conn: Conn, tenant: str, since: datetime) -> list[tuple[datetime, datetime, int]]:
    """(started, finished, gpu count) of the tenant's training runs finishing after ``since``."""
    rows = conn.execute(
        "SELECT started_at, finished_at, gpu_count FROM training_runs WHERE tenant_id = %s AND finished_at >= %s",
        (tenant, since),
    ).fetchall()
    return [(r["started_at"], r["finished_at"], int(r["gpu_count"])) for r in rows]


def record_guard_decisions(conn: Conn, *, tenant: str, season: str, drift_report_sha256: str | None,
                           decisions: Sequence[Any]) -> None:
    """Record each guard's decision (objects with guard, allowed, reason, detail)."""
    for d in decisions:
        conn.execute(
            "INSERT INTO guard_decisions (tenant_id, season_id, drift_report_sha256, guard, allowed, reason, detail)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (tenant, season, drift_report_sha256, d.guard, d.allowed, d.reason, Jsonb(dict(d.detail))),
        )


def drift_report_body(conn: Conn, tenant: str, sha256: str) -> dict[str, Any] | None:
    """The body of the tenant's drift report with this digest."""
    row = conn.execute(
        "SELECT body FROM drift_reports WHERE tenant_id = %s AND body_sha256 = %s", (tenant, sha256)
    ).fetchone()
    return row["body"] if row else None
