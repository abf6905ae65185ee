"""Asset: the signed drift report of a season against the champion's training reference."""


from typing import Any

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from rai_assets.adapters.ledger import artifacts
from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.adapters.signer import SignerResource
from rai_assets.assets.common import ASSET_GROUP, partition_context
from rai_assets.assets.learning_events import learning_events
from rai_assets.assets.model_evaluation import model_evaluation
from rai_assets.assets.model_io import model_predictions, season_frame, snapshot_frame, trained_on
from rai_assets.assets.partitions import tenant_season_partitions
from rai_assets.assets.signed_reports import sign_and_store
from rai_assets.domain.drift import assess_drift, drift_table_markdown
from rai_assets.domain.evaluation import regression_metrics
from rai_assets.domain.features import target_vector

NO_REFERENCE = "no_reference"


@asset(
    partitions_def=tenant_season_partitions,
    group_name=ASSET_GROUP,
    kinds={"scipy"},
    deps=[learning_events, model_evaluation],
    description="The season's events vs. the champion's training snapshot (DRIFT-4: non-overlapping): PSI and KL "
    "per feature, KS / chi-square with Benjamini-Hochberg correction, champion MAE vs its validation MAE; the "
    "significance guard reports 'insufficient sample' below the tenant's minimum (DRIFT-1, DRIFT-2). Signed "
    "canonical JSON, stored write-once and recorded (DRIFT-3).",
)
def drift_report(
    context: AssetExecutionContext,
    ledger: LedgerResource,
    object_store: ObjectStoreResource,
    mlflow_registry: MlflowRegistryResource,
    signer: SignerResource,
) -> MaterializeResult:
    """Assess drift of the partition's season; sign, store and record the report."""
    part = partition_context(context, ledger)
    spec = part.spec
    with ledger.connect(part.tenant) as conn:
        champion = model_store.get_champion(conn, part.tenant)
    body: dict[str, Any] = {
        "kind": "drift_report", "tenant": part.tenant, "season": part.season, "spec": spec.spec_id,
        "thresholds": {"psi_actionable": spec.drift.psi_actionable, "psi_warning": spec.drift.psi_warning,
                       "alpha": spec.drift.alpha, "min_sample": spec.drift.min_sample,
                       "mae_degradation_ratio": spec.drift.mae_degradation_ratio},
    }
    table, max_psi = "", None
    if champion is None or champion.mlflow_version is None:
        verdict, reasons = NO_REFERENCE, ["the tenant has no champion: there is no reference to compare with"]
    elif trained_on(ledger, champion, part.season):
        verdict = NO_REFERENCE
        reasons = [f"the champion (model {champion.model_id}) was trained on {part.season}; a season is only "
                   "compared with a reference it was not part of (DRIFT-4)"]
    else:
        current = season_frame(ledger, part.tenant, part.season, spec)
        reference = snapshot_frame(ledger, object_store, part.tenant, champion.season_id, champion.snapshot_root)
        mae_current = regression_metrics(
            target_vector(current, spec), model_predictions(mlflow_registry, champion, current, spec)).mae
        assessment = assess_drift(
            reference, current, numeric=spec.numeric_features, categorical=list(spec.categorical_features),
            thresholds=spec.drift, mae_current=mae_current, mae_validation=champion.validation_mae,
        )
        verdict, reasons, max_psi = assessment.verdict, list(assessment.reasons), assessment.max_psi
        table = drift_table_markdown(assessment)
        body["reference"] = {"model_id": champion.model_id, "mlflow_version": champion.mlflow_version,
                             "snapshot_root": champion.snapshot_root, "trained_for_season": champion.season_id}
        body["assessment"] = assessment.to_dict()
    body["verdict"], body["reasons"] = verdict, reasons
    doc, key = sign_and_store(object_store, signer, tenant=part.tenant, season=part.season, kind="drift-reports",
                              body=body)
    with ledger.connect(part.tenant) as conn:
        artifacts.record_drift_report(
            conn, tenant=part.tenant, season=part.season,
            reference_model_id=champion.model_id if champion is not None and verdict != NO_REFERENCE else None,
            doc=doc, object_key=key, verdict=verdict, max_psi=max_psi, run_id=part.run_id,
        )
    return MaterializeResult(
        metadata={
            "verdict": verdict,
            "reasons": MetadataValue.md("\n".join(f"- {r}" for r in reasons)),
            "max_psi": max_psi if max_psi is not None else MetadataValue.null(),
            "per_feature": MetadataValue.md(table or "no reference: nothing compared"),
            "reference_snapshot": body.get("reference", {}).get("snapshot_root", "none"),
            "reference_model": MetadataValue.url(mlflow_registry.model_version_url(
                part.tenant, champion.mlflow_version)) if champion is not None and champion.mlflow_version
            and verdict != NO_REFERENCE else MetadataValue.null(),
            "sha256": doc.body_sha256,
            "signature": doc.signature,
            "object": MetadataValue.path(object_store.uri(key)),
        }
    )
