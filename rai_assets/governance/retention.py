"""Applying the retention plan (REG-7): delete collected versions' artifacts from MLflow, mark them
in the ledger (rows are never deleted) and audit every deletion. A dry run only lists."""

from __future__ import annotations

from datetime import UTC, datetime

from rai_assets.adapters.ledger import audit
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.domain.lifecycle import ModelState
from rai_assets.domain.retention import RetentionDecision, VersionInfo, plan_retention

ACTOR = "retention-schedule"


def tenant_versions(ledger: LedgerResource, tenant: str) -> list[VersionInfo]:
    """All model versions of ``tenant`` with what retention needs (read as the admin role)."""
    with ledger.connect(tenant, role="admin") as conn:
        rows = conn.execute(
            "SELECT m.model_id, m.mlflow_version, m.state, m.created_at, m.artifacts_deleted_at IS NOT NULL AS gone,"
            " EXISTS (SELECT 1 FROM audit_log a WHERE a.tenant_id = m.tenant_id AND a.model_id = m.model_id"
            "         AND a.after->>'state' = 'CHAMPION') AS ever_champion"
            " FROM model_versions m WHERE m.tenant_id = %s",
            (tenant,),
        ).fetchall()
    return [VersionInfo(r["model_id"], r["mlflow_version"], ModelState(r["state"]), r["created_at"],
                        r["ever_champion"], r["gone"]) for r in rows]


def apply_retention(ledger: LedgerResource, registry: MlflowRegistryResource, tenant: str, *, dry_run: bool,
                    now: datetime | None = None) -> list[RetentionDecision]:
    """Plan and (unless ``dry_run``) carry out retention for one tenant; returns the decisions."""
    plan = plan_retention(tenant_versions(ledger, tenant), now or datetime.now(UTC))
    if dry_run:
        return plan
    for decision in plan:
        with ledger.connect(tenant, role="admin", actor=ACTOR) as conn:
            run_id = conn.execute("SELECT mlflow_run_id FROM model_versions WHERE model_id = %s",
                                  (decision.model_id,)).fetchone()
            if decision.mlflow_version is not None:
                registry.delete_model_version(tenant, decision.mlflow_version, run_id["mlflow_run_id"] if run_id
                                              else None)
            conn.execute("UPDATE model_versions SET artifacts_deleted_at = now() WHERE model_id = %s",
                         (decision.model_id,))
            audit.append(conn, tenant=tenant, action="retention.delete", actor=ACTOR, reason=decision.reason,
                         model_id=decision.model_id, before={"state": decision.state.value,
                                                             "mlflow_version": decision.mlflow_version},
                         after={"artifacts": "deleted"})
    return plan
