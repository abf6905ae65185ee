"""Asset: the candidate model of a partition — XGBoost, logged and registered in MLflow."""


import time
from datetime import UTC, datetime

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset
from opentelemetry import trace

from rai_assets.adapters import metrics
from rai_assets.adapters.ledger import artifacts
from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.assets.common import ASSET_GROUP, partition_context
from rai_assets.assets.dataset_snapshot import dataset_snapshot
from rai_assets.assets.model_io import snapshot_frame
from rai_assets.assets.partitions import ONE_PARTITION_PER_RUN, tenant_season_partitions
from rai_assets.deployment import TRAINING_OP_TAGS
from rai_assets.domain.evaluation import regression_metrics
from rai_assets.domain.features import feature_matrix, target_vector
from rai_assets.domain.lifecycle import ModelState
from rai_assets.domain.training import code_version, detect_device, predict, train_regressor

tracer = trace.get_tracer("rai_assets")


@asset(
    partitions_def=tenant_season_partitions,
    backfill_policy=ONE_PARTITION_PER_RUN,
    group_name=ASSET_GROUP,
    kinds={"xgboost", "mlflow"},
    deps=[dataset_snapshot],
    tags={"rai/gpu": "optional"}, op_tags=TRAINING_OP_TAGS,  # REG-8: GPU step pod on K8s (rai_assets/deployment.py)
    description="Candidate model trained on the partition's snapshot with a fixed seed (REG-2), registered as a "
    "new version of the tenant's MLflow model (REG-1); lifecycle DRAFT → TRAINING → VALIDATED | FAILED (REG-3).",
)
def trained_model(
    context: AssetExecutionContext,
    ledger: LedgerResource,
    object_store: ObjectStoreResource,
    mlflow_registry: MlflowRegistryResource,
) -> MaterializeResult:
    """Train (or reuse, for unchanged snapshot, spec and code) the partition's candidate."""
    part = partition_context(context, ledger)
    with ledger.connect(part.tenant) as conn:
        snap = artifacts.latest_snapshot(conn, part.tenant, part.season)
    if snap is None or not snap["validation_passed"]:
        raise ValueError(f"no validated snapshot for {part.tenant}/{part.season}; materialize dataset_snapshot first")
    root = snap["merkle_root"]
    version = code_version()
    with ledger.connect(part.tenant) as conn:
        existing = model_store.find_model(conn, part.tenant, part.season, root, version, part.spec.sha256)
    if existing is not None and existing.mlflow_version is not None:
        context.log.info(f"model {existing.model_id} (MLflow v{existing.mlflow_version}) already trained from "
                         f"snapshot {root[:12]}… with code {version}: reusing it")
        return _result(mlflow_registry, existing, root, reused=True)

    device = detect_device()
    with ledger.connect(part.tenant) as conn:
        model = existing or model_store.create_draft(conn, part.tenant, part.season, root, version,
                                                     part.spec.sha256, device, part.run_id)
        if model.state is ModelState.DRAFT:
            model = model_store.transition(conn, model, ModelState.TRAINING, reason="training started",
                                           run_id=part.run_id)
    started_at = datetime.now(UTC)
    try:
        with tracer.start_as_current_span("train") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            frame = snapshot_frame(ledger, object_store, part.tenant, part.season, root)
            features, target = feature_matrix(frame, part.spec), target_vector(frame, part.spec)
            started = time.perf_counter()
            regressor = train_regressor(features, target, part.spec, device=device)
            seconds = time.perf_counter() - started
            fit = regression_metrics(target, predict(regressor, features))
            run_id, mlflow_version = mlflow_registry.log_trained_model(
                tenant=part.tenant,
                season=part.season,
                model=regressor,
                example=features.head(5),
                params={**part.spec.xgboost_params, "seed": part.spec.seed, "device": device,
                        "spec": part.spec.spec_id, "rows": len(frame)},
                metrics={"train_mae": fit.mae, "train_rmse": fit.rmse, "training_seconds": seconds},
                tags={"tenant": part.tenant, "season": part.season, "snapshot_root": root,
                      "code_version": version, "spec_sha256": part.spec.sha256, "dagster_run_id": part.run_id,
                      "trace_id": trace_id, "ledger_model_id": str(model.model_id)},
            )
    except Exception as exc:
        with ledger.connect(part.tenant) as conn:
            model_store.transition(conn, model_store.get_model(conn, model.model_id), ModelState.FAILED,
                                   reason=f"training failed: {exc}"[:500], run_id=part.run_id,
                                   failure_reason=repr(exc)[:2000])
            artifacts.record_training_run(conn, tenant=part.tenant, model_id=model.model_id, run_id=part.run_id,
                                          device=device, gpu_count=int(device == "cuda"), started_at=started_at,
                                          finished_at=datetime.now(UTC), succeeded=False)
        raise
    with ledger.connect(part.tenant) as conn:
        artifacts.record_training_run(conn, tenant=part.tenant, model_id=model.model_id, run_id=part.run_id,
                                      device=device, gpu_count=int(device == "cuda"), started_at=started_at,
                                      finished_at=datetime.now(UTC), succeeded=True)
        model = model_store.transition(
            conn, model, ModelState.VALIDATED, reason="trained and registered", run_id=part.run_id,
            mlflow_model_name=mlflow_registry.model_name(part.tenant), mlflow_version=mlflow_version,
            mlflow_run_id=run_id, training_seconds=seconds,
        )
    metrics.training_duration_seconds.labels(tenant=part.tenant).observe(seconds)
    metrics.export()
    return _result(mlflow_registry, model, root, reused=False, extra={"train_mae_kg_ha": fit.mae,
                                                                      "training_seconds": seconds})


def _result(registry: MlflowRegistryResource, model: model_store.ModelVersion, root: str, *, reused: bool,
            extra: dict[str, float] | None = None) -> MaterializeResult:
    assert model.mlflow_version is not None
    return MaterializeResult(
        metadata={
            "ledger_model_id": model.model_id,
            "state": model.state.value,
            "mlflow_model": f"{model.mlflow_model_name} v{model.mlflow_version}",
            "mlflow_model_version": MetadataValue.url(registry.model_version_url(model.tenant_id,
                                                                                 model.mlflow_version)),
            "snapshot_root": root,
            "device": model.device,
            "reused": reused,
            **(extra or {}),
        }
    )
