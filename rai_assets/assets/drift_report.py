"""Asset: the signed drift report of a season against the champion's training reference."""


from typing import Any

import numpy as np
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from rai_assets.adapters.ledger import artifacts
from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.ledger.profiles import nearest_seasons
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.ledger.tenants import season_order
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.adapters.signer import SignerResource
from rai_assets.assets.checks import DRIFT_NOT_ACTIONABLE, drift_check, verdict_check
from rai_assets.assets.common import TENANT_SEASON_ASSET, markdown_table, on_materialization_only, partition_context
from rai_assets.assets.learning_events import learning_events
from rai_assets.assets.model_evaluation import model_evaluation
from rai_assets.assets.model_io import model_predictions, season_frame, snapshot_frame, trained_on
from rai_assets.assets.partitions import PartitionStep
from rai_assets.assets.pictures import Picture, publish_pictures
from rai_assets.assets.signed_reports import read_back_and_verify, sign_and_store
from rai_assets.domain.drift import assess_drift, drift_table_markdown
from rai_assets.domain.evaluation import regression_metrics
from rai_assets.domain.features import target_vector
from rai_assets.domain.guards import drift_actionable
from rai_assets.domain.profile import season_profile
from rai_assets.presentation import plots

NO_REFERENCE = "no_reference"


def materialize_drift_report(
    context: PartitionStep,
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
        baseline = model_store.drift_baseline(conn, part.tenant)
    reference_model = baseline or champion
    body: dict[str, Any] = {
        "kind": "drift_report", "tenant": part.tenant, "season": part.season, "spec": spec.spec_id,
        "thresholds": {"psi_actionable": spec.drift.psi_actionable, "psi_warning": spec.drift.psi_warning,
                       "alpha": spec.drift.alpha, "min_sample": spec.drift.min_sample,
                       "mae_degradation_ratio": spec.drift.mae_degradation_ratio,
                       "season_ratio_actionable": spec.drift.season_ratio_actionable,
                       "season_level": list(spec.drift.season_level)},
    }
    table, max_psi, analogs = "", None, []
    pictures: dict[str, Picture] = {}
    current = season_frame(ledger, part.tenant, part.season, spec)
    if not current.empty:
        with ledger.connect(part.tenant) as conn:
            analogs = nearest_seasons(conn, part.tenant, season_profile(current, spec.numeric_features),
                                      exclude=part.season)
    body["analog_seasons"] = [{"season": a.season_id, "distance": round(a.distance, 6), "n_events": a.n_events}
                              for a in analogs]
    if champion is None or champion.mlflow_version is None:
        verdict, reasons = NO_REFERENCE, ["the tenant has no champion: there is no reference to compare with"]
    elif reference_model is None or trained_on(ledger, reference_model, part.season):
        verdict = NO_REFERENCE
        reasons = [f"the reference model was trained on {part.season}; a season is only compared with a "
                   "reference it was not part of (DRIFT-4)"]
    else:
        reference = snapshot_frame(ledger, object_store, part.tenant, reference_model.season_id,
                                   reference_model.snapshot_root)
        actual = target_vector(current, spec)
        predicted = model_predictions(mlflow_registry, champion, current, spec, ledger=ledger, season=part.season)
        mae_current = regression_metrics(actual, predicted).mae
        with ledger.connect(part.tenant) as conn:
            calendar = season_order(conn, part.tenant)
        assessment = assess_drift(
            reference, current, numeric=spec.numeric_features, categorical=list(spec.categorical_features),
            thresholds=spec.drift, mae_current=mae_current if champion.validation_mae is not None else None,
            mae_validation=champion.validation_mae,
            abs_errors_current=np.abs(predicted - actual), season_order=calendar,
        )
        verdict, reasons, max_psi = assessment.verdict, list(assessment.reasons), assessment.max_psi
        table = drift_table_markdown(assessment)
        body["reference"] = {"model_id": reference_model.model_id, "mlflow_version": reference_model.mlflow_version,
                             "snapshot_root": reference_model.snapshot_root,
                             "trained_for_season": reference_model.season_id,
                             "source": "baseline reset" if baseline is not None else "champion",
                             "champion_model_id": champion.model_id}
        body["assessment"] = assessment.to_dict()
        pictures = _drift_pictures(body["assessment"], reference, current, spec.drift.psi_warning,
                                   spec.drift.psi_actionable, spec.drift.season_ratio_actionable)
    body["verdict"], body["reasons"] = verdict, reasons
    doc, key = sign_and_store(object_store, signer, tenant=part.tenant, season=part.season, kind="drift-reports",
                              body=body)
    verified, detail = read_back_and_verify(object_store, signer, key, doc.body_sha256)
    actionable = drift_actionable(body, spec.drift)  # the retraining guard's own rule (RET-1)
    with ledger.connect(part.tenant) as conn:
        artifacts.record_drift_report(
            conn, tenant=part.tenant, season=part.season,
            reference_model_id=reference_model.model_id if reference_model is not None and verdict != NO_REFERENCE
            else None,
            doc=doc, object_key=key, verdict=verdict, max_psi=max_psi, run_id=part.run_id,
        )
        artifacts.record_integrity_check(conn, tenant=part.tenant, kind="drift_report", sha256=doc.body_sha256,
                                         object_key=key, verified=verified, detail=detail)
    plot_metadata = publish_pictures(
        context, mlflow_registry, pictures, artifact_dir=f"drift/{part.season}",
        run_id=reference_model.mlflow_run_id if pictures and reference_model is not None else None)
    from rai_assets.adapters.lifecycle_mirror import log_signed_report  # the signed JSON next to its pictures
    log_signed_report(mlflow_registry, reference_model, f"drift/{part.season}/drift_report.json", doc)
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
            "analog_seasons": MetadataValue.md(markdown_table(
                ["season", "profile distance (L2)", "events"],
                [[a.season_id, f"{a.distance:.3f}", a.n_events] for a in analogs]) if analogs else "none yet"),
            "signature_verified": verified,
            "sha256": doc.body_sha256,
            "signature": doc.signature,
            "object": MetadataValue.path(object_store.uri(key)),
            **plot_metadata,
        },
        check_results=[drift_check(actionable.allowed, actionable.reason, verdict)],
    )


@asset(
    **TENANT_SEASON_ASSET,
    kinds={"scipy"},
    deps=[learning_events, model_evaluation],
    check_specs=[verdict_check(DRIFT_NOT_ACTIONABLE, "drift_report", "The report is not actionable under the "
                                "tenant's thresholds (the retraining guard's rule, RET-1)")],
    description="The season's events vs. the champion's training snapshot (DRIFT-4: non-overlapping). Season-level "
    "covariates (prices, wages) first, as season-to-season ratios with history; per field PSI and KL, exact KS / "
    "permutation chi-square below the tenant's minimum sample (asymptotic above), Benjamini-Hochberg correction; "
    "champion MAE vs its validation MAE, actionable on its own; 'insufficient sample' only where no test can "
    "decide (DRIFT-1, 2, 6). Signed canonical JSON, stored write-once and recorded (DRIFT-3).",
)
def drift_report(
    context: AssetExecutionContext,
    ledger: LedgerResource,
    object_store: ObjectStoreResource,
    mlflow_registry: MlflowRegistryResource,
    signer: SignerResource,
) -> MaterializeResult:
    """The asset: :func:`materialize_drift_report` for the run's partition."""
    return on_materialization_only(
        context, materialize_drift_report(context, ledger, object_store, mlflow_registry, signer))


def _drift_pictures(assessment: dict[str, Any], reference: Any, current: Any, psi_warning: float,
                    psi_actionable: float, season_ratio_actionable: float) -> dict[str, Picture]:
    """The drift report's pictures (rendered later, by :func:`publish_pictures`): PSI per feature, the
    reference-vs-current distributions of the largest-PSI features, season-level covariates over seasons."""
    features = assessment.get("features", [])
    top = [f["feature"] for f in sorted(features, key=lambda f: -(f.get("psi") or 0.0))]
    pictures: dict[str, Picture] = {
        "psi": ("PSI per feature", lambda: plots.psi_bars(features, psi_warning=psi_warning,
                                                          psi_actionable=psi_actionable)),
        "distributions": ("Reference vs current, largest PSI",
                          lambda: plots.distribution_panels(reference, current, top)),
    }
    if assessment.get("season_level"):
        pictures["season_level"] = ("Season-level covariates", lambda: plots.season_covariate_ratios(
            assessment["season_level"], season_ratio_actionable=season_ratio_actionable))
    return pictures
