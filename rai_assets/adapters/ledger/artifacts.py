"""Ledger access: dataset snapshots, evaluations, signed bias audits and drift reports, forecasts."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb

from rai_assets.adapters.ledger.resource import Conn
from rai_assets.domain.canonical import canonical_json, sha256_hex
from rai_assets.domain.profile import vector_literal
from rai_assets.domain.signing_envelope import SignedDocument


def record_snapshot(conn: Conn, *, tenant: str, season: str, merkle_root: str, object_key: str, row_count: int,
                    source_seasons: Sequence[str], validation_passed: bool, validation_summary: dict[str, Any],
                    profile: Sequence[float], run_id: str) -> bool:
    """Record a dataset snapshot with its profile vector (SNAP-4); write-once: a repeat of the same
    root is a no-op (SNAP-2). Returns True when new."""
    cur = conn.execute(
        "INSERT INTO dataset_snapshots (tenant_id, season_id, merkle_root, object_key, row_count, source_seasons,"
        " validation_passed, validation_summary, profile, dagster_run_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::vector, %s)"
        " ON CONFLICT (tenant_id, season_id, merkle_root) DO NOTHING",
        (tenant, season, merkle_root, object_key, row_count, list(source_seasons), validation_passed,
         Jsonb(validation_summary), vector_literal(profile), run_id),
    )
    return cur.rowcount == 1


def latest_snapshot(conn: Conn, tenant: str, season: str) -> dict[str, Any] | None:
    """The most recent snapshot row of (tenant, season), or None."""
    return conn.execute(
        "SELECT merkle_root, object_key, row_count, source_seasons, validation_passed FROM dataset_snapshots"
        " WHERE tenant_id = %s AND season_id = %s ORDER BY created_at DESC LIMIT 1",
        (tenant, season),
    ).fetchone()


def get_snapshot(conn: Conn, tenant: str, season: str, merkle_root: str) -> dict[str, Any] | None:
    """One snapshot row by its root."""
    return conn.execute(
        "SELECT merkle_root, object_key, row_count, source_seasons, validation_passed FROM dataset_snapshots"
        " WHERE tenant_id = %s AND season_id = %s AND merkle_root = %s",
        (tenant, season, merkle_root),
    ).fetchone()


def record_evaluation(conn: Conn, *, tenant: str, season: str, model_id: int, champion_model_id: int | None,
                      body: dict[str, Any], run_id: str) -> str:
    """Record a model evaluation; returns the SHA-256 of its canonical JSON."""
    digest = sha256_hex(canonical_json(body))
    conn.execute(
        "INSERT INTO model_evaluations (tenant_id, season_id, model_id, champion_model_id, body, body_sha256,"
        " dagster_run_id) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (tenant, season, model_id, champion_model_id, Jsonb(body), digest, run_id),
    )
    return digest


def latest_evaluation(conn: Conn, tenant: str, season: str, model_id: int) -> dict[str, Any] | None:
    """The most recent evaluation body of ``model_id`` on (tenant, season)."""
    row = conn.execute(
        "SELECT body FROM model_evaluations WHERE tenant_id = %s AND season_id = %s AND model_id = %s"
        " ORDER BY created_at DESC LIMIT 1",
        (tenant, season, model_id),
    ).fetchone()
    return row["body"] if row else None


def record_bias_audit(conn: Conn, *, tenant: str, season: str, model_id: int, doc: SignedDocument,
                      object_key: str, passed: bool, run_id: str) -> None:
    """Record a signed bias audit (idempotent on its digest)."""
    conn.execute(
        "INSERT INTO bias_audits (tenant_id, season_id, model_id, body_sha256, signature, signer_public_key,"
        " object_key, passed, body, dagster_run_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (tenant, season, model_id, doc.body_sha256, doc.signature, doc.signer_public_key, object_key, passed,
         Jsonb(doc.body), run_id),
    )


def record_drift_report(conn: Conn, *, tenant: str, season: str, reference_model_id: int | None,
                        doc: SignedDocument, object_key: str, verdict: str, max_psi: float | None,
                        run_id: str) -> None:
    """Record a signed drift report (idempotent on its digest)."""
    conn.execute(
        "INSERT INTO drift_reports (tenant_id, season_id, reference_model_id, body_sha256, signature,"
        " signer_public_key, object_key, verdict, max_psi, body, dagster_run_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (tenant, season, reference_model_id, doc.body_sha256, doc.signature, doc.signer_public_key, object_key,
         verdict, max_psi, Jsonb(doc.body), run_id),
    )


def latest_signed(conn: Conn, table: str, tenant: str, season: str) -> dict[str, Any] | None:
    """Latest row of ``bias_audits`` or ``drift_reports`` for (tenant, season)."""
    if table not in ("bias_audits", "drift_reports"):
        raise ValueError(f"not a signed-report table: {table}")
    return conn.execute(
        f"SELECT * FROM {table} WHERE tenant_id = %s AND season_id = %s ORDER BY created_at DESC LIMIT 1",
        (tenant, season),
    ).fetchone()


def replace_forecasts(conn: Conn, *, tenant: str, season: str, model_id: int, role: str,
                      predictions: dict[str, float], run_id: str, unit: str) -> int:
    """Store per-field forecasts of ``model_id`` for (tenant, season); returns rows written.

    ``predictions`` maps field id to the forecast in ``unit``, the target unit of the model's spec
    (``kg/ha`` for rice-yield-v1); the unit is stored with every row.

    Raises:
        ValueError: ``unit`` is empty.
    """
    if not unit:
        raise ValueError(f"forecasts of model {model_id} for {tenant}/{season}: the unit is empty (the model "
                         "spec's target.unit must name it)")
    conn.execute(
        "DELETE FROM yield_forecasts WHERE tenant_id = %s AND season_id = %s AND model_id = %s AND role = %s",
        (tenant, season, model_id, role),
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO yield_forecasts (tenant_id, season_id, field_id, model_id, role, predicted_yield_kg_ha,"
            " unit, dagster_run_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(tenant, season, f, model_id, role, float(v), unit, run_id) for f, v in predictions.items()],
        )
    return len(predictions)


def forecasting_model(conn: Conn, tenant: str, season: str) -> int | None:
    """The ledger id of the model whose champion forecasts of (tenant, season) are stored, or None."""
    row = conn.execute(
        "SELECT model_id FROM yield_forecasts WHERE tenant_id = %s AND season_id = %s AND role = 'champion'"
        " ORDER BY created_at LIMIT 1",
        (tenant, season),
    ).fetchone()
    return int(row["model_id"]) if row else None


def forecast_count(conn: Conn, tenant: str, season: str, model_id: int) -> int:
    """How many champion forecasts of (tenant, season) ``model_id`` has stored."""
    row = conn.execute(
        "SELECT count(*) AS n FROM yield_forecasts WHERE tenant_id = %s AND season_id = %s AND model_id = %s"
        " AND role = 'champion'", (tenant, season, model_id)).fetchone()
    return int(row["n"]) if row else 0


SOURCES = {"tenant": "champion", "cohort": "cohort", "naive": "fallback"}


def served_forecasts(conn: Conn, tenant: str, season: str | None = None) -> list[dict[str, Any]]:
    """The forecast each field was served, per season: the canary's where the field was in a canary
    slice, else the latest champion forecast (REG-10 fallbacks included).

    Rows: ``tenant, season, field_id, predicted_yield_kg_ha, model, model_version, source, unit`` with
    ``predicted_yield_kg_ha`` the forecast in ``unit`` (the target unit of the model's spec; the key keeps
    its rice-era name for backward compatibility) and ``source`` one of ``champion`` (the tenant's own
    model), ``cohort`` (a cohort model), ``fallback`` (the naive baseline after the floor tripped) or
    ``canary``; in season (calendar) then field order.
    Readable by the agronomist role (GOV-4).
    """
    rows = conn.execute(
        "SELECT f.season_id, f.field_id, f.role, f.predicted_yield_kg_ha, f.unit, m.mlflow_model_name,"
        " m.mlflow_version, m.kind, c.ordinal FROM yield_forecasts f JOIN model_versions m ON m.model_id = f.model_id"
        " JOIN season_calendar c ON c.tenant_id = f.tenant_id AND c.season_id = f.season_id"
        " WHERE f.tenant_id = %s AND (%s::text IS NULL OR f.season_id = %s) AND f.role IN ('champion', 'canary')"
        " ORDER BY f.created_at, f.model_id",
        (tenant, season, season),
    ).fetchall()
    chosen: dict[tuple[Decimal, str, str], dict[str, Any]] = {}
    for r in rows:  # later rows win within a role; a canary row wins over champion rows
        key = (Decimal(r["ordinal"]), str(r["season_id"]), str(r["field_id"]))
        current = chosen.get(key)
        if current is not None and current["source"] == "canary" and r["role"] != "canary":
            continue
        chosen[key] = {
            "tenant": tenant, "season": r["season_id"], "field_id": r["field_id"],
            "predicted_yield_kg_ha": float(r["predicted_yield_kg_ha"]), "model": r["mlflow_model_name"],
            "model_version": r["mlflow_version"],
            "source": "canary" if r["role"] == "canary" else SOURCES.get(str(r["kind"]), "champion"),
            "unit": r["unit"],
        }
    return [chosen[k] for k in sorted(chosen)]


def record_integrity_check(conn: Conn, *, tenant: str, kind: str, sha256: str, object_key: str, verified: bool,
                           detail: str) -> None:
    """Record that a stored artifact was read back and its digest and signature checked (REG-5 gate)."""
    conn.execute(
        "INSERT INTO integrity_checks (tenant_id, artifact_kind, artifact_sha256, object_key, verified, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (tenant, kind, sha256, object_key, verified, detail),
    )


def record_training_run(conn: Conn, *, tenant: str, model_id: int, run_id: str, device: str, gpu_count: int,
                        started_at: Any, finished_at: Any, succeeded: bool) -> None:
    """Record one training run (its duration and device feed the GPU-hour quota, RET-6)."""
    conn.execute(
        "INSERT INTO training_runs (tenant_id, model_id, dagster_run_id, device, gpu_count, started_at, finished_at,"
        " status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (tenant, model_id, run_id, device, gpu_count, started_at, finished_at,
         "succeeded" if succeeded else "failed"),
    )
