"""Asset: the candidate model of a partition — XGBoost, logged and registered in MLflow."""


import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset
from opentelemetry import trace

from rai_assets.adapters import metrics
from rai_assets.adapters.expectations import validate_frame
from rai_assets.adapters.ledger import artifacts, cohorts
from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.ledger.tenants import seasons_before
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.assets.common import TENANT_SEASON_ASSET, PartitionContext, on_materialization_only, partition_context
from rai_assets.assets.dataset_snapshot import dataset_snapshot
from rai_assets.assets.model_io import snapshot_frame
from rai_assets.assets.partitions import PartitionStep
from rai_assets.deployment import TRAINING_OP_TAGS
from rai_assets.domain.canonical import canonical_json, sha256_hex
from rai_assets.domain.cohort import cohort_features, plan_cohort_model, pooled_frame
from rai_assets.domain.evaluation import RegressionMetrics, regression_metrics
from rai_assets.domain.features import feature_matrix, target_vector
from rai_assets.domain.lifecycle import ModelState
from rai_assets.domain.model_spec import ModelSpec
from rai_assets.domain.snapshot import build_snapshot
from rai_assets.domain.training import code_version, detect_device, predict, train_regressor

tracer = trace.get_tracer("rai_assets")


def materialize_trained_model(
    context: PartitionStep,
    ledger: LedgerResource,
    object_store: ObjectStoreResource,
    mlflow_registry: MlflowRegistryResource,
) -> MaterializeResult:
    """Train (or reuse, for unchanged inputs, spec and code) the partition's candidate.

    A tenant in a cohort gets the cohort's pooled model of the season (REG-9); others their own.
    """
    part = partition_context(context, ledger)
    with ledger.connect(part.tenant) as conn:
        snap = artifacts.latest_snapshot(conn, part.tenant, part.season)
        membership = cohorts.active_membership(conn, part.tenant)
    if snap is None or not snap["validation_passed"]:
        raise ValueError(f"no validated snapshot for {part.tenant}/{part.season}; materialize dataset_snapshot first")
    if membership is not None:
        return _train_cohort_model(context, part, ledger, mlflow_registry, membership.cohort_id, snap["merkle_root"])
    root = snap["merkle_root"]
    version = code_version()
    with ledger.connect(part.tenant) as conn:
        existing = model_store.find_model(conn, part.tenant, part.season, root, version, part.spec.sha256)
    if existing is not None and existing.mlflow_version is not None:
        context.log.info(f"model {existing.model_id} (MLflow v{existing.mlflow_version}) already trained from "
                         f"snapshot {root[:12]}… with code {version}: reusing it")
        return _result(mlflow_registry, existing, root, reused=True)

    def fit(device: str, trace_id: str, model_id: int) -> tuple[str, int, float, dict[str, float]]:
        frame = snapshot_frame(ledger, object_store, part.tenant, part.season, root)
        features, target = feature_matrix(frame, part.spec), target_vector(frame, part.spec)
        regressor, seconds, train_fit = _timed_fit(features, target, part.spec, device)
        run_id, mlflow_version = mlflow_registry.log_trained_model(
            tenant=part.tenant, season=part.season, model=regressor, example=features.head(5),
            params={**part.spec.xgboost_params, "seed": part.spec.seed, "device": device,
                    "spec": part.spec.spec_id, "rows": len(frame)},
            metrics={"train_mae": train_fit.mae, "train_rmse": train_fit.rmse, "training_seconds": seconds},
            tags={"tenant": part.tenant, "season": part.season, "snapshot_root": root,
                  "code_version": version, "spec_sha256": part.spec.sha256, "dagster_run_id": part.run_id,
                  "trace_id": trace_id, "ledger_model_id": str(model_id)},
        )
        return run_id, mlflow_version, seconds, {"train_mae_kg_ha": train_fit.mae}

    model, extra = _lifecycle(part, ledger, existing, fit, root=root, version=version,
                              registered=mlflow_registry.model_name(part.tenant))
    return _result(mlflow_registry, model, root, reused=False, extra=extra)


@asset(
    **TENANT_SEASON_ASSET,
    kinds={"xgboost", "mlflow"},
    deps=[dataset_snapshot],
    tags={"rai/gpu": "optional"}, op_tags=TRAINING_OP_TAGS,  # REG-8: GPU step pod on K8s (rai_assets/deployment.py)
    description="Candidate model trained on the partition's snapshot with a fixed seed (REG-2), registered as a "
    "new version of the tenant's MLflow model (REG-1) — or, for a tenant in a cohort, the cohort's model pooled "
    "over its members' snapshots (REG-9); lifecycle DRAFT → TRAINING → VALIDATED | FAILED (REG-3).",
)
def trained_model(
    context: AssetExecutionContext,
    ledger: LedgerResource,
    object_store: ObjectStoreResource,
    mlflow_registry: MlflowRegistryResource,
) -> MaterializeResult:
    """The asset: :func:`materialize_trained_model` for the run's partition."""
    return on_materialization_only(context, materialize_trained_model(context, ledger, object_store, mlflow_registry))


def _timed_fit(features: pd.DataFrame, target: np.ndarray, spec: ModelSpec, device: str
               ) -> tuple[Any, float, RegressionMetrics]:
    """Train the spec's regressor on ``features`` (n × p) and ``target`` (n, kg/ha) on ``device``; returns the
    model, the wall seconds of the fit and its in-sample metrics."""
    started = time.perf_counter()
    regressor = train_regressor(features, target, spec, device=device)
    seconds = time.perf_counter() - started
    return regressor, seconds, regression_metrics(target, predict(regressor, features))


def _lifecycle(part: PartitionContext, ledger: LedgerResource, existing: model_store.ModelVersion | None,
               fit: Callable[[str, str, int], tuple[str, int, float, dict[str, float]]], *, root: str, version: str,
               registered: str, kind: str = "tenant", cohort_id: str | None = None,
               lineage: dict[str, Any] | None = None) -> tuple[model_store.ModelVersion, dict[str, float]]:
    """DRAFT → TRAINING → (``fit``) → VALIDATED | FAILED in the ledger, with the training run recorded.

    ``fit(device, trace_id, model_id)`` returns ``(mlflow run id, MLflow version, seconds, metadata)``.
    """
    device = detect_device()
    with ledger.connect(part.tenant) as conn:
        model = existing or model_store.create_draft(conn, part.tenant, part.season, root, version,
                                                     part.spec.sha256, device, part.run_id, kind=kind,
                                                     cohort_id=cohort_id, lineage=lineage)
        if model.state is ModelState.DRAFT:
            model = model_store.transition(conn, model, ModelState.TRAINING, reason="training started",
                                           run_id=part.run_id)
    started_at = datetime.now(UTC)
    try:
        with tracer.start_as_current_span("train") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            run_id, mlflow_version, seconds, extra = fit(device, trace_id, model.model_id)
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
            mlflow_model_name=registered, mlflow_version=mlflow_version, mlflow_run_id=run_id,
            training_seconds=seconds,
        )
    metrics.training_duration_seconds.labels(tenant=part.tenant).observe(seconds)
    metrics.export()
    return model, {**extra, "training_seconds": seconds}


def _train_cohort_model(context: PartitionStep, part: PartitionContext, ledger: LedgerResource,
                        registry: MlflowRegistryResource, cohort: str, own_root: str) -> MaterializeResult:
    """The cohort's pooled model for the partition's season (REG-9), as this member's model version.

    Members' events are read through the ``rai_cohort`` role, which the database limits to the
    cohort's current members; the lineage lists each member's snapshot root (``own_root`` is this
    member's, the row's ``snapshot_root``). The MLflow version is trained once per lineage and shared
    by every member's ledger row.
    """
    with ledger.connect(part.tenant) as conn:
        earlier = seasons_before(conn, part.tenant, part.season)
    with ledger.connect(role="cohort", cohort=cohort) as cconn:
        by_member = cohorts.member_events(cconn, earlier)
    snapshots = {t: build_snapshot(payloads, earlier, part.spec) for t, payloads in by_member.items()}
    frames = {t: s.frame for t, s in snapshots.items()}
    outcome = validate_frame(pooled_frame(frames), part.spec.expectations_suite)
    if not outcome.success:
        raise ValueError(f"cohort {cohort!r} training window before {part.season} fails the snapshot expectations "
                         f"(SNAP-3): {list(outcome.failed)[:3]}")
    plan = plan_cohort_model(cohort, part.season, frames, {t: s.merkle_root for t, s in snapshots.items()},
                             part.spec)
    version = code_version()
    root = plan.lineage_root
    if snapshots.get(part.tenant) is None or snapshots[part.tenant].merkle_root != own_root:
        raise ValueError(f"the cohort read of {part.tenant}/{part.season} does not match its validated snapshot "
                         f"{own_root[:12]}…; re-materialize dataset_snapshot")
    registered = registry.cohort_model_name(cohort)
    with ledger.connect(part.tenant) as conn:
        existing = model_store.find_model(conn, part.tenant, part.season, own_root, version, part.spec.sha256,
                                          kind="cohort", lineage_root=root)
    if existing is not None and existing.mlflow_version is not None:
        context.log.info(f"cohort model {registered} v{existing.mlflow_version} already serves "
                         f"{part.tenant}/{part.season} from lineage {root[:12]}…: reusing it")
        return _result(registry, existing, root, reused=True)
    key = sha256_hex(canonical_json([root, version, part.spec.sha256]))

    def fit(device: str, trace_id: str, model_id: int) -> tuple[str, int, float, dict[str, float]]:
        found = registry.find_version(registered, "lineage_key", key)
        if found is not None:  # another member's run trained this lineage already
            return found[1], found[0], 0.0, {"shared_with_members": 1.0}
        pooled = pooled_frame(frames)
        features = cohort_features(pooled, part.spec, plan.tenant_levels)
        target = target_vector(pooled, part.spec)
        regressor, seconds, train_fit = _timed_fit(features, target, part.spec, device)
        run_id, mlflow_version = registry.log_trained_model(
            tenant=part.tenant, season=part.season, model=regressor, example=features.head(5),
            registered_model=registered, experiment=f"cohort-{cohort}",
            params={**part.spec.xgboost_params, "seed": part.spec.seed, "device": device, "spec": part.spec.spec_id,
                    "rows": len(pooled), "members": len(plan.members), "tenant_feature": plan.use_tenant_feature},
            metrics={"train_mae": train_fit.mae, "train_rmse": train_fit.rmse, "training_seconds": seconds,
                     **{f"holdout_mae_{k}": v for k, v in (plan.holdout.get("mae_kg_ha") or {}).items()}},
            tags={"cohort": cohort, "season": part.season, "lineage_root": root, "lineage_key": key,
                  "members": ",".join(m.tenant for m in plan.members), "code_version": version,
                  "spec_sha256": part.spec.sha256, "dagster_run_id": part.run_id, "trace_id": trace_id,
                  "tenant_feature": str(plan.use_tenant_feature).lower()},
        )
        return run_id, mlflow_version, seconds, {"train_mae_kg_ha": train_fit.mae}

    model, extra = _lifecycle(part, ledger, existing, fit, root=own_root, version=version, registered=registered,
                              kind="cohort", cohort_id=cohort, lineage=plan.lineage)
    return _result(registry, model, root, reused=False,
                   extra={**extra, "cohort_members": float(len(plan.members)), "pooled_rows": float(
                       sum(m.rows for m in plan.members))})


def _result(registry: MlflowRegistryResource, model: model_store.ModelVersion, root: str, *, reused: bool,
            extra: dict[str, float] | None = None) -> MaterializeResult:
    assert model.mlflow_version is not None
    return MaterializeResult(
        metadata={
            "ledger_model_id": model.model_id,
            "state": model.state.value,
            "kind": model.kind,
            "mlflow_model": f"{model.mlflow_model_name} v{model.mlflow_version}",
            "mlflow_model_version": MetadataValue.url(registry.model_version_url(
                model.tenant_id, model.mlflow_version, model.mlflow_model_name)),
            "snapshot_root": root,
            "device": model.device,
            "reused": reused,
            **(extra or {}),
        }
    )
