"""What a manager needs before a governance action: a tenant's model versions, their states and verdicts."""

from __future__ import annotations

from dataclasses import dataclass

from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.domain.ids import tenant_id as valid_tenant_id
from rai_assets.domain.model_spec import load_model_spec
from rai_assets.resource_files import resources_dir


@dataclass(frozen=True)
class ModelRow:
    """One model version of a tenant as the ledger records it.

    Attributes:
        mlflow_ref: ``"<registered model>/<version>"`` ("—" before registration).
        version: the MLflow version number that governance commands take (``--version``), or None.
        state: the ledger's lifecycle state (source of truth; MLflow's aliases follow it).
        kind: ``tenant``, ``cohort`` or ``naive``.
        season: the season the model was trained for (it saw only earlier seasons).
        heldout_mae: MAE on that season, in ``unit``; None before evaluation.
        bias_verdict: the latest bias audit's verdict of this model (``pass`` / ``fail`` /
            ``inconclusive``), ``none`` when never audited, ``exempt`` for a naive baseline.
        unit: the target unit of the tenant's model spec (``ModelSpec.target_unit``, e.g. kg/ha).
    """

    mlflow_ref: str
    version: int | None
    state: str
    kind: str
    season: str
    heldout_mae: float | None
    bias_verdict: str
    unit: str


def list_models(ledger: LedgerResource, tenant: str) -> list[ModelRow]:
    """Every model version of ``tenant``, oldest first, read as the manager role (GOV-4).

    Raises:
        InvalidIdentifierError: ``tenant`` is not a valid tenant id.
        LookupError: the tenant is not registered.
        ModelSpecError: the tenant's model spec file is missing or invalid.
    """
    tenant = valid_tenant_id(tenant)
    with ledger.connect(tenant, role="manager") as conn:
        registered = conn.execute("SELECT model_spec FROM tenants WHERE tenant_id = %s", (tenant,)).fetchone()
        if registered is None:
            raise LookupError(f"tenant {tenant!r} is not registered (rai-assets tenant register)")
        rows = conn.execute(
            "SELECT m.model_id, m.mlflow_model_name, m.mlflow_version, m.state, m.kind, m.season_id,"
            " m.validation_mae, (SELECT coalesce(b.body->'audit'->>'verdict',"
            "  CASE WHEN b.passed THEN 'pass' ELSE 'fail' END) FROM bias_audits b WHERE b.model_id = m.model_id"
            "  ORDER BY b.created_at DESC LIMIT 1) AS verdict"
            " FROM model_versions m WHERE m.tenant_id = %s ORDER BY m.model_id",
            (tenant,),
        ).fetchall()
    unit = load_model_spec(resources_dir() / "model_specs", registered["model_spec"]).target_unit
    return [ModelRow(
        mlflow_ref=f"{r['mlflow_model_name']}/{r['mlflow_version']}" if r["mlflow_version"] is not None else "—",
        version=r["mlflow_version"], state=r["state"], kind=r["kind"], season=r["season_id"],
        heldout_mae=float(r["validation_mae"]) if r["validation_mae"] is not None else None,
        bias_verdict="exempt" if r["kind"] == "naive" else (r["verdict"] or "none"), unit=unit,
    ) for r in rows]
