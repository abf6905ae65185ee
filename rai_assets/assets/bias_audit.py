"""Asset: the signed bias audit of the partition's candidate across the spec's farmer subgroups.

One village-season holds 19-37 fields, so most subgroup cells are below any useful size. The audit
therefore pools *out-of-sample* residuals over an evaluation window of ``spec.bias.window_seasons``
seasons: the partition's season is predicted by the candidate itself (its held-out season), and each
earlier season ``k`` of the window by a rolling-origin backtest of the candidate's recipe — the spec's
XGBoost refitted on the data before ``k`` and predicting ``k`` (time-series cross-validation, Hyndman &
Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed., §5.10). Every pooled residual is thus
a genuine forecast error of the same recipe, never an in-sample fit. Where the recipe's own earlier
refit for season ``k`` is registered (a lineage, see
:func:`~rai_assets.adapters.ledger.models.challenger_lineage`), its stored forecast model is used instead of a
new per-tenant refit, so a cohort model is audited on the cohort recipe's own out-of-sample errors.

:func:`audit_and_record` is also the *pre-serve* audit of a refit (``through_season=False``): the window
then ends before the season, so the audit uses none of that season's labels
(:mod:`~rai_assets.assets.serving_model`).
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from rai_assets.adapters.ledger import artifacts
from rai_assets.adapters.ledger import events as event_store
from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.ledger.tenants import seasons_before
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.adapters.signer import SignerResource
from rai_assets.assets.checks import BIAS_PASSED, bias_check, verdict_check
from rai_assets.assets.common import TENANT_SEASON_ASSET, on_materialization_only, partition_context
from rai_assets.assets.model_evaluation import model_evaluation
from rai_assets.assets.model_io import model_predictions, season_frame
from rai_assets.assets.partitions import PartitionStep
from rai_assets.assets.pictures import publish_pictures
from rai_assets.assets.signed_reports import read_back_and_verify, sign_and_store
from rai_assets.domain.bias import BiasAudit, audit_bias, size_class
from rai_assets.domain.features import events_frame, feature_matrix, target_vector
from rai_assets.domain.model_spec import ModelSpec
from rai_assets.domain.signing_envelope import SignedDocument
from rai_assets.domain.training import predict, train_regressor
from rai_assets.presentation import plots


def subgroup_frame(frame: pd.DataFrame, spec: ModelSpec) -> tuple[pd.DataFrame, dict[str, str]]:
    """Subgroup label columns of ``frame`` per the spec (numeric columns cut into classes)."""
    groups = pd.DataFrame(index=frame.index)
    for sg in spec.subgroups:
        if sg.edges is not None and sg.labels is not None:
            groups[sg.name] = size_class(frame[sg.column].to_numpy(dtype="float64"), sg.edges, sg.labels)
        else:
            groups[sg.name] = frame[sg.column].astype(str)
    return groups, {sg.name: sg.name for sg in spec.subgroups}


def backtest_training_frame(ledger: LedgerResource, tenant: str, season: str, spec: ModelSpec) -> pd.DataFrame:
    """The frame the candidate's recipe is refitted on to backtest ``season``: the tenant's seasons before it.

    The one place that decides it (for a cohort tenant, return the cohort's pooled seasons before
    ``season`` instead; the domain audit needs no change).
    """
    with ledger.connect(tenant) as conn:
        payloads = event_store.load_events(conn, tenant, seasons_before(conn, tenant, season))
    return events_frame(payloads, spec)


@dataclass(frozen=True)
class OutOfSample:
    """Pooled out-of-sample rows of the evaluation window."""

    frame: pd.DataFrame
    actual: np.ndarray
    predicted: np.ndarray
    window: list[dict[str, object]]


def out_of_sample_window(ledger: LedgerResource, mlflow_registry: MlflowRegistryResource,
                         candidate: model_store.ModelVersion, tenant: str, season: str, spec: ModelSpec,
                         through_season: bool = True) -> OutOfSample:
    """Out-of-sample actuals and predictions of the window's seasons (oldest first), with provenance.

    ``through_season=False``: the window is the ``spec.bias.window_seasons`` seasons *before* ``season``
    (nothing of ``season`` is read), for the pre-serve audit of a refit.
    """
    with ledger.connect(tenant) as conn:
        earlier = seasons_before(conn, tenant, season)
    size = spec.bias.window_seasons - (1 if through_season else 0)
    window_seasons = [*earlier[max(0, len(earlier) - size):], *([season] if through_season else [])]
    with ledger.connect(candidate.tenant_id) as conn:
        fits = model_store.lineage_fits(conn, candidate)
    frames, actuals, predictions, window = [], [], [], []
    for k in window_seasons:
        held = season_frame(ledger, tenant, k, spec)
        if held.empty:
            window.append({"season": k, "n": 0, "source": "no events"})
            continue
        if k == season:
            predicted = model_predictions(mlflow_registry, candidate, held, spec)
            window.append({"season": k, "n": len(held), "source": "candidate held-out season",
                           "model_id": candidate.model_id})
        elif k in fits:
            predicted = model_predictions(mlflow_registry, fits[k], held, spec, ledger=ledger, season=k)
            window.append({"season": k, "n": len(held), "source": "the recipe's own refit for the season",
                           "model_id": fits[k].model_id, "mlflow": fits[k].mlflow_ref})
        else:
            train = backtest_training_frame(ledger, tenant, k, spec)
            if len(train) < 2:
                window.append({"season": k, "n": 0, "source": "skipped: no earlier data to refit on"})
                continue
            model = train_regressor(feature_matrix(train, spec), target_vector(train, spec), spec)
            predicted = predict(model, feature_matrix(held, spec))
            window.append({"season": k, "n": len(held), "source": "rolling-origin backtest",
                           "trained_on_rows": len(train)})
        frames.append(held.reset_index(drop=True))
        actuals.append(target_vector(held, spec))
        predictions.append(predicted)
    return OutOfSample(pd.concat(frames, ignore_index=True), np.concatenate(actuals), np.concatenate(predictions),
                       window)


@dataclass(frozen=True)
class RecordedAudit:
    """A signed bias audit as stored (object key) and recorded in the ledger."""

    audit: BiasAudit
    doc: SignedDocument
    object_key: str
    verified: bool
    detail: str


def audit_and_record(ledger: LedgerResource, object_store: ObjectStoreResource, mlflow_registry: MlflowRegistryResource,
                     signer: SignerResource, candidate: model_store.ModelVersion, tenant: str, season: str,
                     spec: ModelSpec, run_id: str, through_season: bool = True) -> RecordedAudit:
    """Audit ``candidate``'s out-of-sample errors per subgroup; sign, store write-once, verify, record (REG-5).

    ``through_season=False`` is the pre-serve audit: the window ends before ``season`` (its body says
    ``"scope": "pre-serve"``). Raises what the stores raise (the audit itself never passes on no evidence).
    """
    oos = out_of_sample_window(ledger, mlflow_registry, candidate, tenant, season, spec, through_season)
    groups, columns = subgroup_frame(oos.frame, spec)
    for key_column in ("season_id", "tenant_id"):
        if key_column in oos.frame.columns:
            groups[key_column] = oos.frame[key_column].astype(str).to_numpy()
    audit = audit_bias(oos.actual, oos.predicted, groups, columns, spec.bias, unit=spec.target_unit)
    body = {
        "kind": "bias_audit", "tenant": tenant, "season": season, "model_id": candidate.model_id,
        "mlflow_version": candidate.mlflow_version, "snapshot_root": candidate.snapshot_root,
        "scope": "held-out season and backtests" if through_season else "pre-serve: seasons before the season only",
        "spec": spec.spec_id, "spec_sha256": spec.sha256, "window": oos.window, "audit": audit.to_dict(),
    }
    doc, key = sign_and_store(object_store, signer, tenant=tenant, season=season, kind="bias-audits", body=body)
    verified, detail = read_back_and_verify(object_store, signer, key, doc.body_sha256)
    with ledger.connect(tenant) as conn:
        artifacts.record_bias_audit(conn, tenant=tenant, season=season, model_id=candidate.model_id,
                                    doc=doc, object_key=key, passed=audit.passed, run_id=run_id)
        artifacts.record_integrity_check(conn, tenant=tenant, kind="bias_audit", sha256=doc.body_sha256,
                                         object_key=key, verified=verified, detail=detail)
    return RecordedAudit(audit, doc, key, verified, detail)


def materialize_bias_audit(
    context: PartitionStep,
    ledger: LedgerResource,
    object_store: ObjectStoreResource,
    mlflow_registry: MlflowRegistryResource,
    signer: SignerResource,
) -> MaterializeResult:
    """Audit the candidate's errors per subgroup; sign, store and record the audit."""
    part = partition_context(context, ledger)
    with ledger.connect(part.tenant) as conn:
        candidate = model_store.latest_model_for_partition(conn, part.tenant, part.season)
    if candidate is None:
        raise ValueError(f"no candidate for {part.tenant}/{part.season}; materialize trained_model first")
    recorded = audit_and_record(ledger, object_store, mlflow_registry, signer, candidate, part.tenant, part.season,
                                part.spec, part.run_id)
    audit, doc, key, verified = recorded.audit, recorded.doc, recorded.object_key, recorded.verified
    plot_metadata = publish_pictures(context, mlflow_registry, {"subgroup_mae": (  # on the candidate's training run
        "MAE per subgroup", lambda: plots.subgroup_mae(audit.to_dict()["subgroups"], unit=part.spec.target_unit))},
        run_id=candidate.mlflow_run_id, artifact_dir=f"bias/{part.season}")
    from rai_assets.adapters.lifecycle_mirror import log_signed_report  # the signed JSON next to its picture
    log_signed_report(mlflow_registry, candidate, f"bias/{part.season}/bias_audit.json", doc)
    return MaterializeResult(
        metadata={
            "verdict": audit.verdict,
            "groups_assessable": f"{audit.n_groups_assessable} of {audit.n_groups}",
            "reasons": MetadataValue.md("\n".join(f"- {r}" for r in audit.reasons) or "none"),
            "per_group": MetadataValue.md(audit.markdown_table()),
            "sha256": doc.body_sha256,
            "signature": doc.signature,
            "object": MetadataValue.path(object_store.uri(key)),
            "model": candidate.mlflow_ref,
            "signature_verified": verified,
            **plot_metadata,
        },
        check_results=[bias_check(audit.verdict, verified, list(audit.reasons))],
    )


@asset(
    **TENANT_SEASON_ASSET,
    kinds={"fairlearn"},
    deps=[model_evaluation],
    check_specs=[verdict_check(BIAS_PASSED, "bias_audit", "The candidate's bias audit passed and its signature "
                                "verified (REG-5); WARN when inconclusive, ERROR when failed")],
    description="fairlearn MetricFrame over the spec's subgroups (tenure, variety, BIMAS, farm-size class) on "
    "out-of-sample residuals pooled over the evaluation window (the candidate's held-out season + rolling-origin "
    "backtests of earlier seasons): per-group n, MAE, signed residual with bootstrap intervals; pass / fail (only "
    "on evidence) / inconclusive. Canonical JSON, SHA-256, Ed25519-signed; stored write-once and recorded in the "
    "ledger (REG-5 gate: only 'pass' opens it).",
)
def bias_audit(
    context: AssetExecutionContext,
    ledger: LedgerResource,
    object_store: ObjectStoreResource,
    mlflow_registry: MlflowRegistryResource,
    signer: SignerResource,
) -> MaterializeResult:
    """The asset: :func:`materialize_bias_audit` for the run's partition."""
    return on_materialization_only(
        context, materialize_bias_audit(context, ledger, object_store, mlflow_registry, signer))
