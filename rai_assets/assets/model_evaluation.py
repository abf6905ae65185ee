"""Asset: the candidate judged on the partition's season (never seen in training) against the
current champion, a naive baseline and the classic Cobb-Douglas production function."""


from typing import Any

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from rai_assets.adapters import metrics
from rai_assets.adapters.ledger import artifacts
from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.assets.checks import CANDIDATE_BEATS, evaluation_check, verdict_check
from rai_assets.assets.common import TENANT_SEASON_ASSET, on_materialization_only, partition_context
from rai_assets.assets.learning_events import learning_events
from rai_assets.assets.model_io import model_predictions, season_frame, trained_on, training_history
from rai_assets.assets.partitions import PartitionStep
from rai_assets.assets.pictures import Picture, publish_pictures
from rai_assets.assets.trained_model import trained_model
from rai_assets.domain.evaluation import (
    compare_models,
    fit_cobb_douglas,
    naive_baseline_predictions,
    regression_metrics,
)
from rai_assets.domain.features import target_vector
from rai_assets.presentation import plots


def materialize_model_evaluation(
    context: PartitionStep,
    ledger: LedgerResource,
    object_store: ObjectStoreResource,
    mlflow_registry: MlflowRegistryResource,
) -> MaterializeResult:
    """Evaluate the partition's candidate on its held-out season (promotion is model_promotion's)."""
    part = partition_context(context, ledger)
    spec = part.spec
    with ledger.connect(part.tenant) as conn:
        candidate = model_store.latest_model_for_partition(conn, part.tenant, part.season)
        champion = model_store.get_champion(conn, part.tenant)
    if candidate is None or candidate.mlflow_version is None:
        raise ValueError(f"no trained candidate for {part.tenant}/{part.season}; materialize trained_model first")
    holdout = season_frame(ledger, part.tenant, part.season, spec)
    if holdout.empty:
        raise ValueError(f"no learning events for {part.tenant}/{part.season} to evaluate on")
    actual = target_vector(holdout, spec)
    history = training_history(ledger, object_store, candidate)

    cand_predicted = model_predictions(mlflow_registry, candidate, holdout, spec)
    cand = regression_metrics(actual, cand_predicted)
    naive = regression_metrics(actual, naive_baseline_predictions(target_vector(history, spec), len(holdout)))
    champ_metrics, champion_note = None, "no champion yet"
    if champion is not None and champion.model_id == candidate.model_id:
        champion_note = "the candidate is the champion"
    elif champion is not None and trained_on(ledger, champion, part.season):
        champion_note = f"champion {champion.mlflow_ref} was trained on {part.season}: not compared"
    elif champion is not None:
        champ_metrics = regression_metrics(actual, model_predictions(mlflow_registry, champion, holdout, spec,
                                                                      ledger=ledger, season=part.season))
        champion_note = f"champion {champion.mlflow_ref}"
    cd_metrics, cd_note = None, None
    try:
        cd = fit_cobb_douglas(history, spec.classic_model.output, spec.classic_model.inputs,
                              spec.classic_model.log_offset)
        cd_yield = cd.predict_output(holdout) / holdout[spec.target_denominator].to_numpy(dtype="float64")
        cd_metrics = regression_metrics(actual, cd_yield)
    except ValueError as exc:
        cd_note = f"Cobb-Douglas not fitted: {exc}"
    comparison = compare_models(cand, naive, champion=champ_metrics, cobb_douglas=cd_metrics,
                                cobb_douglas_note=cd_note)

    body: dict[str, Any] = {
        "tenant": part.tenant, "season": part.season, "model_id": candidate.model_id,
        "mlflow_version": candidate.mlflow_version, "snapshot_root": candidate.snapshot_root,
        "champion_model_id": champion.model_id if champ_metrics is not None and champion else None,
        "champion_note": champion_note, "comparison": comparison.to_dict(),
    }
    evaluation_run_id = None  # the MLflow run logged now (none when this evaluation was logged before)
    with ledger.connect(part.tenant) as conn:
        if artifacts.latest_evaluation(conn, part.tenant, part.season, candidate.model_id) != body:
            evaluation_run_id = mlflow_registry.log_evaluation(
                tenant=part.tenant, season=part.season, run_name=f"evaluate {part.tenant} {part.season}",
                metrics=_flat_metrics(comparison.to_dict()),
                tags=_evaluation_tags(mlflow_registry, candidate, champion if champ_metrics is not None else None,
                                      part.tenant, part.season, part.run_id),
                artifacts={"comparison.md": comparison.markdown_table(part.spec.target_unit, champion_note)},
                model_metrics=_judged_model_metrics(mlflow_registry, candidate, comparison.to_dict()),
            )
        artifacts.record_evaluation(conn, tenant=part.tenant, season=part.season, model_id=candidate.model_id,
                                    champion_model_id=body["champion_model_id"], body=body, run_id=part.run_id)
        model_store.record_validation_mae(conn, candidate.model_id, cand.mae)
    if champion is None:
        promotion = ("bootstrap candidate: promoted by model_promotion if its bias audit passes"
                     if comparison.beats_naive else "not a bootstrap candidate: does not beat the naive baseline")
    elif champion.model_id != candidate.model_id:
        promotion = "the gated shadow → canary path (model_promotion) decides"
    else:
        promotion = "already champion"
    if candidate.kind == "cohort" and candidate.mlflow_model_name:  # per-member evaluation on the cohort model
        mlflow_registry.set_version_tags(candidate.mlflow_model_name, candidate.mlflow_version, {
            f"heldout_mae_kg_ha.{part.tenant}.{part.season}": f"{cand.mae:.1f}",
            f"naive_mae_kg_ha.{part.tenant}.{part.season}": f"{naive.mae:.1f}"})

    metrics.model_mae.labels(tenant=part.tenant, role="candidate").set(cand.mae)
    if champ_metrics is not None:
        metrics.model_mae.labels(tenant=part.tenant, role="champion").set(champ_metrics.mae)
    metrics.export()
    unit = part.spec.target_unit
    pictures: dict[str, Picture] = {
        "predicted_vs_actual": ("Predicted vs actual",
                                lambda: plots.predicted_vs_actual(actual, cand_predicted, unit=unit)),
        "residuals": ("Residuals", lambda: plots.residual_histogram(actual, cand_predicted, unit=unit)),
        "mae": ("MAE: candidate vs champion vs baselines",
                lambda: plots.mae_comparison(comparison.to_dict(), unit=unit)),
    }
    plot_metadata = publish_pictures(context, mlflow_registry, pictures, run_id=evaluation_run_id,
                                     artifact_dir="plots")
    return MaterializeResult(
        metadata={
            "candidate_mae_kg_ha": round(cand.mae, 1),
            "naive_mae_kg_ha": round(naive.mae, 1),
            "champion_mae_kg_ha": round(champ_metrics.mae, 1) if champ_metrics else MetadataValue.null(),
            "cobb_douglas_mae_kg_ha": round(cd_metrics.mae, 1) if cd_metrics else MetadataValue.null(),
            "beats_naive": comparison.beats_naive,
            "beats_champion": MetadataValue.null() if comparison.beats_champion is None
            else comparison.beats_champion,
            "holdout_rows": len(holdout),
            "promotion": promotion,
            "comparison": MetadataValue.md(comparison.markdown_table(part.spec.target_unit, champion_note)),
            "unit": part.spec.target_unit,
            "candidate_model_version": MetadataValue.url(
                mlflow_registry.model_version_url(part.tenant, candidate.mlflow_version)),
            **plot_metadata,
        },
        check_results=[evaluation_check(cand.mae, naive.mae, champ_metrics.mae if champ_metrics else None,
                                        part.spec.target_unit)],
    )


@asset(
    **TENANT_SEASON_ASSET,
    kinds={"mlflow"},
    deps=[trained_model, learning_events],
    check_specs=[verdict_check(CANDIDATE_BEATS, "model_evaluation", "The candidate's held-out MAE beats the naive "
                                "baseline and the champion's (point estimates; model_promotion tests them)")],
    description="MAE / RMSE / R² (target unit of the spec) of the candidate on the partition's season, which it "
    "never saw, next to the champion, the naive baseline (mean yield of earlier seasons) and a Cobb-Douglas OLS; "
    "for a cohort model the member's MAE is also tagged on the cohort's MLflow version.",
)
def model_evaluation(
    context: AssetExecutionContext,
    ledger: LedgerResource,
    object_store: ObjectStoreResource,
    mlflow_registry: MlflowRegistryResource,
) -> MaterializeResult:
    """The asset: :func:`materialize_model_evaluation` for the run's partition."""
    return on_materialization_only(
        context, materialize_model_evaluation(context, ledger, object_store, mlflow_registry))


def _flat_metrics(comparison: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for role in ("candidate", "champion", "naive", "cobb_douglas"):
        metrics = comparison.get(role)
        if isinstance(metrics, dict):
            for name, value in metrics.items():
                if isinstance(value, int | float) and name != "n":
                    out[f"{role}_{name}"] = float(value)
    return out


def _evaluation_tags(registry: MlflowRegistryResource, candidate: model_store.ModelVersion,
                     champion: model_store.ModelVersion | None, tenant: str, season: str,
                     run_id: str) -> dict[str, str]:
    """The evaluate run's tags: what it judged, linked as ``models:/<name>/<version>`` (candidate and, when
    compared, champion) next to the run's tenant, season and Dagster run."""
    def ref(model: model_store.ModelVersion) -> str:
        return f"models:/{model.mlflow_model_name or registry.model_name(tenant)}/{model.mlflow_version}"

    tags = {"tenant": tenant, "season": season, "kind": "evaluation", "dagster_run_id": run_id,
            "candidate_version": str(candidate.mlflow_version), "candidate_model_version": ref(candidate),
            "snapshot_root": candidate.snapshot_root}
    if champion is not None:
        tags |= {"champion_version": str(champion.mlflow_version), "champion_model_version": ref(champion)}
    return tags


def _judged_model_metrics(registry: MlflowRegistryResource, candidate: model_store.ModelVersion,
                          comparison: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The candidate's held-out errors (``heldout_mae`` … in kg/ha; ``heldout_mae.<tenant>`` … on a cohort's
    shared model), keyed by its MLflow 3 logged model id (none when its version predates logged models)."""
    model_id = registry.logged_model_id(candidate.mlflow_model_name or registry.model_name(candidate.tenant_id),
                                        int(candidate.mlflow_version or 0))
    values = comparison.get("candidate")
    if model_id is None or not isinstance(values, dict):
        return {}
    member = f".{candidate.tenant_id}" if candidate.kind == "cohort" else ""  # a cohort's model: one per member
    return {model_id: {f"heldout_{k}{member}": float(v) for k, v in values.items()
                       if isinstance(v, int | float) and k != "n"}}
