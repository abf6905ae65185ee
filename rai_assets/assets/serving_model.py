"""Asset: which model serves the partition's season — the champion, or a refit of the champion's own recipe.

A *recipe* is one registered model, kind, cohort, code version and model spec; its model versions are
refits on a growing window of seasons (:func:`~rai_assets.adapters.ledger.models.challenger_lineage`).
A recipe reaches CHAMPION only through the gated path of :mod:`~rai_assets.assets.model_promotion`
(bootstrap against the naive baseline, or SHADOW → CANARY → CHAMPION on significant paired evidence,
RET-7). Once it is champion, serving the champion's *older fit* while a refit of the same recipe on
more seasons exists throws away the seasons it did not see: on the RiceFarms panel the cohort recipe
refitted every season forecasts s04–s06 14 % better than the naive baseline, and its first fit (s01
only) 9 % (README "Forecasts that get better").

So, before the season's forecasts are made (this asset runs after ``trained_model`` and before
``yield_forecasts``, and reads none of the season's labels), the season's candidate serves the season
when all of these hold:

1. it is a VALIDATED refit of the champion's recipe, trained on more seasons than the champion;
2. **non-inferiority** on the recipe's own history (:func:`~rai_assets.domain.promotion_test.refit_noninferiority`):
   on earlier seasons, refits of this recipe were not worse than the older fits they would replace by
   more than ``spec.promotion.refit_margin`` × their MAE (paired sign-flip test at ``spec.promotion.alpha``,
   every shadow-scored field of the cohort's members pooled, RET-10) — no evidence, no refit;
3. **REG-5**: its pre-serve bias audit passed — out-of-sample residuals of the recipe over the seasons
   *before* this one (:func:`~rai_assets.assets.bias_audit.audit_and_record` with ``through_season=False``),
   signed, stored and verified, so the database's SHADOW gate opens.

It then moves VALIDATED → SHADOW → CANARY → CHAMPION in one transaction, each step's audit-log reason
carrying the test, its n and its p-value. After the season's labels land, ``model_promotion`` scores
the replaced fit on the season (more refit evidence), rolls the refit back when it is significantly
worse (RET-8), and applies the naive floor (REG-10) as to any champion.
"""

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from rai_assets.adapters.ledger import artifacts, cohorts, loop
from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.ledger.tenants import seasons_before
from rai_assets.adapters.lifecycle_mirror import mirror_lifecycle
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.adapters.signer import SignerResource
from rai_assets.assets.bias_audit import audit_and_record
from rai_assets.assets.common import (
    STEP_RETRY,
    TENANT_SEASON_ASSET,
    PartitionContext,
    on_materialization_only,
    partition_context,
)
from rai_assets.assets.partitions import PartitionStep
from rai_assets.assets.trained_model import trained_model
from rai_assets.domain.lifecycle import ModelState
from rai_assets.domain.promotion_test import RefitDecision, refit_noninferiority

REFIT_STAGE = "refit"


@dataclass(frozen=True)
class RefitOutcome:
    """What the step decided: ``serving`` is the MLflow ref of the model that serves the season next."""

    decision: str
    serving: str
    reason: str
    test: RefitDecision | None = None


def refit_evidence_arrays(ledger: LedgerResource, candidate: model_store.ModelVersion, lineage: list[str],
                          seasons: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The recipe's refit-vs-older-fit evidence on ``seasons``: (``|e_old|``, ``|e_old| - |e_new|``), target unit.

    A cohort model's evidence pools over the cohort's current members (read through the cohort role,
    REG-9); a tenant model's is the tenant's own.
    """
    if candidate.kind == "cohort" and candidate.cohort_id is not None:
        with ledger.connect(role="cohort", cohort=candidate.cohort_id) as conn:
            rows = cohorts.refit_evidence(conn, lineage, seasons)
    else:
        with ledger.connect(candidate.tenant_id) as conn:
            rows = cohorts.refit_evidence(conn, lineage, seasons)
    older = [e for r in rows for e in r["champion_abs_errors"]]
    diffs = [d for r in rows for d in r["differences"]]
    return np.asarray(older, dtype="float64"), np.asarray(diffs, dtype="float64")


def decide_refit(part: PartitionContext, ledger: LedgerResource, object_store: ObjectStoreResource,
                 mlflow_registry: MlflowRegistryResource, signer: SignerResource) -> RefitOutcome:
    """Serve the season's refit of the champion's recipe when the module's three conditions hold.

    Never reads the season's labels. Idempotent: once the season was served, nothing changes.
    """
    tenant, season = part.tenant, part.season
    with ledger.connect(tenant) as conn:
        served = artifacts.forecasting_model(conn, tenant, season)
        candidate = model_store.latest_model_for_partition(conn, tenant, season)
        champion = model_store.get_champion(conn, tenant)
        earlier = seasons_before(conn, tenant, season)
        lineage = model_store.challenger_lineage(conn, candidate) if candidate is not None else []
    serving = champion.mlflow_ref if champion else "nobody"
    if served is not None:
        return RefitOutcome("already served", serving, f"{season} was already served: served forecasts are final")
    if champion is None:
        return RefitOutcome("no champion", serving, "no champion yet: the bootstrap decides on the season's labels")
    if candidate is None or candidate.mlflow_version is None:
        return RefitOutcome("no refit", serving, f"no candidate was trained for {season}")
    if candidate.model_id == champion.model_id:
        return RefitOutcome("refit serves", serving, f"{candidate.mlflow_ref} already serves")
    if champion.kind != candidate.kind or champion.mlflow_ref not in lineage:
        return RefitOutcome("other recipe", serving, f"{candidate.mlflow_ref} is not a refit of the champion's recipe "
                            f"({champion.kind} {champion.mlflow_ref}): it takes the gated path on the season's labels")
    if candidate.state is not ModelState.VALIDATED:
        return RefitOutcome("not validated", serving, f"{candidate.mlflow_ref} is {candidate.state}")
    if champion.season_id not in earlier:
        return RefitOutcome("not newer", serving, f"{candidate.mlflow_ref} is not trained on more seasons than the "
                            f"champion {champion.mlflow_ref}")

    older, diffs = refit_evidence_arrays(ledger, candidate, lineage, earlier)
    if older.size == 0:
        return RefitOutcome("no refit evidence", serving, f"no earlier season scored a refit of "
                            f"{champion.mlflow_ref}'s recipe against an older fit yet: the champion serves")
    test = refit_noninferiority(older, diffs, margin=part.spec.promotion.refit_margin, alpha=part.spec.promotion.alpha,
                                unit=part.spec.target_unit,
                                seed=int.from_bytes(hashlib.sha256(f"{candidate.mlflow_ref}|{season}".encode()).digest()[:4],
                                                    "big"))
    if not test.serve:
        _record(ledger, part, candidate, champion, "refit: champion keeps serving", test, {})
        return RefitOutcome("champion keeps serving", serving, test.reason, test)
    recorded = audit_and_record(ledger, object_store, mlflow_registry, signer, candidate, tenant, season, part.spec,
                                part.run_id, through_season=False)
    audit_ref = {"pre_serve_bias_audit": recorded.doc.body_sha256, "verdict": recorded.audit.verdict}
    if not (recorded.audit.passed and recorded.verified):
        _record(ledger, part, candidate, champion, "refit refused: pre-serve bias audit not passed", test, audit_ref)
        return RefitOutcome("refused: bias audit", serving, f"pre-serve bias audit {recorded.audit.verdict} "
                            f"(REG-5): {champion.mlflow_ref} keeps serving", test)
    why = (f"refit of the champion's recipe ({champion.mlflow_ref} → {candidate.mlflow_ref}) serves {season}: "
           f"{test.reason}; pre-serve bias audit {recorded.doc.body_sha256[:12]}… passed")
    with ledger.connect(tenant) as conn, conn.transaction():
        model_store.supersede_live_challengers(  # undecided older refits of the same recipe
            conn, candidate, only_refs=lineage, run_id=part.run_id,
            reason=f"superseded by the refit {candidate.mlflow_ref}, which serves {season}")
        model = model_store.get_model(conn, candidate.model_id)
        for target in (ModelState.SHADOW, ModelState.CANARY, ModelState.CHAMPION):
            model = model_store.transition(conn, model, target, reason=why, run_id=part.run_id)
        _record_on(conn, part, candidate, champion, "refit", test, audit_ref)
    return RefitOutcome("refit serves", candidate.mlflow_ref, why, test)


def _record(ledger: LedgerResource, part: PartitionContext, candidate: model_store.ModelVersion,
            champion: model_store.ModelVersion, decision: str, test: RefitDecision, extra: dict[str, Any]) -> None:
    with ledger.connect(part.tenant) as conn:
        _record_on(conn, part, candidate, champion, decision, test, extra)


def _record_on(conn: Any, part: PartitionContext, candidate: model_store.ModelVersion,
               champion: model_store.ModelVersion, decision: str, test: RefitDecision, extra: dict[str, Any]) -> None:
    loop.record_promotion_decision(
        conn, tenant=part.tenant, season=part.season, candidate_model_id=candidate.model_id,
        champion_model_id=champion.model_id, stage=REFIT_STAGE, decision=decision,
        statistic=test.mae_older - test.mae_newer, p_value=test.test.p_value, sample_size=test.test.n,
        evidence={"refit": test.to_dict(), **extra}, run_id=part.run_id)


def materialize_serving_model(
    context: PartitionStep,
    ledger: LedgerResource,
    object_store: ObjectStoreResource,
    mlflow_registry: MlflowRegistryResource,
    signer: SignerResource,
) -> MaterializeResult:
    """Decide (once per season) whether the season's refit of the champion's recipe serves it."""
    part = partition_context(context, ledger)
    outcome = decide_refit(part, ledger, object_store, mlflow_registry, signer)
    changes = mirror_lifecycle(ledger, mlflow_registry, part.tenant) if outcome.decision == "refit serves" else []
    context.log.info(f"{part.tenant}/{part.season}: {outcome.reason}")
    metadata: dict[str, Any] = {"decision": outcome.decision, "serving": outcome.serving, "reason": outcome.reason,
                                "mlflow_changes": len(changes)}
    if outcome.test is not None:
        metadata.update({"p_value": round(outcome.test.test.p_value, 6), "sample_size": outcome.test.test.n,
                         "refit_margin": outcome.test.margin,
                         "mae_older_fits": round(outcome.test.mae_older, 1),
                         "mae_refits": round(outcome.test.mae_newer, 1), "unit": outcome.test.unit,
                         "evidence": MetadataValue.json(outcome.test.to_dict())})
    return MaterializeResult(metadata=metadata)


@asset(
    **TENANT_SEASON_ASSET,
    kinds={"postgres", "mlflow"},
    deps=[trained_model],
    retry_policy=STEP_RETRY,
    description="Which model serves the season, decided before its labels are read: the champion, or the "
    "season's refit of the champion's own recipe when the recipe's refits were non-inferior to the fits they "
    "replaced (paired sign-flip test with a ratio margin, pooled over seasons and cohort members) and its "
    "pre-serve bias audit passed (REG-5). Lifecycle VALIDATED → SHADOW → CANARY → CHAMPION, audited.",
)
def serving_model(
    context: AssetExecutionContext,
    ledger: LedgerResource,
    object_store: ObjectStoreResource,
    mlflow_registry: MlflowRegistryResource,
    signer: SignerResource,
) -> MaterializeResult:
    """The asset: :func:`materialize_serving_model` for the run's partition."""
    return on_materialization_only(
        context, materialize_serving_model(context, ledger, object_store, mlflow_registry, signer))
