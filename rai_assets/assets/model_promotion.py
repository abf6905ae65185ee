"""Asset: who serves the tenant's next forecasts — bootstrap, SHADOW → CANARY → CHAMPION, rollback, floor.

The season's champion forecasts are already made (:mod:`~rai_assets.assets.yield_forecasts` runs first), so
whatever is decided here serves the *next* seasons. In order, on the partition's season (whose labels
have landed):

1. **RET-8**: a champion whose performance degraded on the season is rolled back to its predecessor.
2. **Bootstrap** (a tenant with no champion): the candidate becomes champion when it beats the naive
   baseline on its held-out season *and* its bias audit passed (REG-5; the database checks it too);
   otherwise the naive baseline, registered as a governed model version, becomes champion (REG-10), so a
   tenant with a labelled season is always served.
3. **Undecided canary of an earlier season**: it was never trained on this season, so this season's
   fields are more evidence; it is promoted or aborted when the evidence decides, else retired in
   favour of the newer candidate (trained on strictly more data).
4. **Gated path of the season's candidate**: SHADOW (bias audit passed; every field scored, stored,
   never served) → CANARY (a hashed slice of the next season's fields is served by it, sized by the spec;
   :mod:`~rai_assets.assets.yield_forecasts`) → CHAMPION on
   significant evidence. The evidence is the paired per-field absolute errors of *every* shadow-scored
   field, pooled over the cohort's members for a cohort model and over seasons for an undecided
   candidate (RET-10); the tests are in :mod:`rai_assets.domain.promotion_test`.
5. **Naive floor (REG-10)**: a champion significantly worse than the naive baseline on the season is
   replaced — by the previous champion when that one is not itself below the floor, else by a naive
   baseline model registered as a governed model version — audited and alerted.

Every decision is recorded (``promotion_decisions``) with its test, n and p-value; every lifecycle
move carries them in its audit-log reason.
"""

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from rai_assets.adapters import metrics
from rai_assets.adapters.ledger import artifacts, audit, cohorts, loop
from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.ledger.tenants import season_order
from rai_assets.adapters.lifecycle_mirror import mirror_lifecycle
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.adapters.signer import SignerResource
from rai_assets.assets.bias_audit import bias_audit
from rai_assets.assets.common import (
    STEP_RETRY,
    TENANT_SEASON_ASSET,
    PartitionContext,
    on_materialization_only,
    partition_context,
)
from rai_assets.assets.drift_report import drift_report
from rai_assets.assets.model_evaluation import model_evaluation
from rai_assets.assets.model_io import model_predictions, naive_mean, season_frame, trained_on
from rai_assets.assets.partitions import PartitionStep
from rai_assets.assets.serving_model import REFIT_STAGE
from rai_assets.assets.signed_reports import read_back_and_verify
from rai_assets.assets.yield_forecasts import yield_forecasts
from rai_assets.domain.features import feature_matrix, target_vector
from rai_assets.domain.lifecycle import ModelState
from rai_assets.domain.promotion_test import (
    FloorDecision,
    PromotionDecision,
    decide_promotion,
    naive_floor,
    sign_flip_test,
)
from rai_assets.domain.training import code_version, train_naive_model

ModelVersion = model_store.ModelVersion
#: Reads a stored bias audit (a ``bias_audits`` row) back and verifies it now: (verified, detail).
AuditVerifier = Callable[[dict[str, Any]], tuple[bool, str]]


def _previous_champion(conn: Any, tenant: str, current_id: int) -> ModelVersion | None:
    """The most recent other model that was champion (the rollback target), if it still is DEPRECATED."""
    row = conn.execute(
        "SELECT model_id FROM audit_log WHERE tenant_id = %s AND after->>'state' = 'CHAMPION' AND model_id <> %s"
        " ORDER BY seq DESC LIMIT 1",
        (tenant, current_id),
    ).fetchone()
    if row is None:
        return None
    model = model_store.get_model(conn, int(row["model_id"]))
    return model if model.state is ModelState.DEPRECATED else None


def _cannot_take_over(season: "_Season", model: ModelVersion) -> str | None:
    """Why ``model`` (a rollback target) may not serve after this season's decision, or None: it was trained on
    the season (no fair judgement), or it fails the naive floor on it (:func:`_below_floor`)."""
    part = season.part
    if trained_on(season.ledger, model, part.season):
        return f"it was trained on {part.season}"
    floor = _below_floor(season, model)
    if floor is not None:
        return (f"it is below the naive floor on {part.season} (MAE {floor.mae_served:.0f} vs naive "
                f"{floor.mae_naive:.0f} {part.spec.target_unit}, sign-flip test n={floor.test.n}, "
                f"p={floor.test.p_value:.4g})")
    return None


def _below_floor(season: "_Season", model: ModelVersion) -> FloorDecision | None:
    """The REG-10 floor's test of ``model`` on the season when it fails it (significantly worse than the naive
    baseline), else None. One rule for every model about to serve after a decision on this season: a promoted
    canary, a rollback target after degradation, a fallback after the floor (a model that the floor would
    remove in the same run is never made champion)."""
    floor = naive_floor(season.actual, season.predict(model), season.naive(), alpha=season.part.spec.promotion.alpha)
    return floor if floor.below_floor else None


class _Season:
    """The partition's labelled fields and the predictions of the models judged on them (cached)."""

    def __init__(self, part: PartitionContext, ledger: LedgerResource, registry: MlflowRegistryResource,
                 verify: AuditVerifier) -> None:
        self.part, self.ledger, self.registry, self.verify = part, ledger, registry, verify
        self.fields = season_frame(ledger, part.tenant, part.season, part.spec)
        self.actual = target_vector(self.fields, part.spec)
        self.ids = [str(f) for f in self.fields["field_id"]]
        self._predictions: dict[int, np.ndarray] = {}
        self._naive: np.ndarray | None = None

    def predict(self, model: ModelVersion) -> np.ndarray:
        if model.model_id not in self._predictions:
            self._predictions[model.model_id] = model_predictions(self.registry, model, self.fields, self.part.spec,
                                                                  ledger=self.ledger, season=self.part.season)
        return self._predictions[model.model_id]

    def abs_errors(self, model: ModelVersion) -> np.ndarray:
        return np.abs(self.predict(model) - self.actual)

    def naive(self) -> np.ndarray:
        """The naive baseline's forecast of every field: the tenant's mean yield of earlier seasons (read once)."""
        if self._naive is None:
            self._naive = np.full(len(self.actual), naive_mean(self.ledger, self.part.tenant, self.part.season,
                                                                self.part.spec))
        return self._naive


def _judge(season: _Season, candidate: ModelVersion, champion: ModelVersion) -> PromotionDecision:
    """Record this season's paired evidence of (candidate, champion) and decide on all of it (RET-10).

    "All of it" is the evidence against this champion of the candidate's lineage (its recipe's earlier
    refits, :func:`~rai_assets.adapters.ledger.models.challenger_lineage`), one row per tenant-season (the
    newest refit's): the test is of the recipe against the champion, and the newest refit is what is
    promoted. The sign-flip test conditions on |d| and so stays exact when the pairs differ by season.
    """
    part, ledger = season.part, season.ledger
    d = season.abs_errors(champion) - season.abs_errors(candidate)
    cohort = candidate.cohort_id if candidate.kind == "cohort" else None
    with ledger.connect(part.tenant) as conn:
        cohorts.record_evidence(conn, tenant=part.tenant, season=part.season, cohort=cohort,
                                candidate_ref=candidate.mlflow_ref, champion_ref=champion.mlflow_ref,
                                field_ids=season.ids, differences=d.tolist(), run_id=part.run_id,
                                champion_abs_errors=season.abs_errors(champion).tolist())
        lineage = model_store.challenger_lineage(conn, candidate)
        if cohort is None:
            rows = cohorts.evidence(conn, lineage, champion.mlflow_ref)
            reporters = cohorts.evidence_tenants_by_season(conn, lineage)
            members = [part.tenant]
    if cohort is not None:
        with ledger.connect(role="cohort", cohort=cohort) as cconn:
            rows = cohorts.evidence(cconn, lineage, champion.mlflow_ref)
            reporters = cohorts.evidence_tenants_by_season(cconn, lineage)
            members = cohorts.current_members(cconn)
    by_season: dict[str, list[float]] = {}
    for row in rows:
        by_season.setdefault(str(row["season_id"]), []).extend(row["differences"])
    # a season is a complete look once every current member reported it, or once evidence of a later
    # season exists (a member that cannot report, e.g. refused at SHADOW, must not hold the look open);
    # both rules depend on arrival, never on the differences' values, so each look is a fixed-n test
    with ledger.connect(part.tenant) as conn:
        calendar = season_order(conn, part.tenant)
    reported = [calendar.index(s) for s in reporters if s in calendar]
    looks = [np.asarray(by_season[s]) for s in by_season
             if set(members) <= reporters.get(s, set()) or any(i > calendar.index(s) for i in reported)]
    everything = np.concatenate([np.asarray(v) for v in by_season.values()]) if by_season else np.zeros(0)
    return decide_promotion(looks, everything, alpha=part.spec.promotion.alpha,
                            min_sample=part.spec.promotion.min_sample,
                            key=f"{candidate.mlflow_ref}|{champion.mlflow_ref}", unit=part.spec.target_unit)


def _record(conn: Any, part: PartitionContext, candidate: ModelVersion, champion: ModelVersion | None, stage: str,
            decision: str, test: PromotionDecision | None = None, evidence: dict[str, Any] | None = None) -> None:
    loop.record_promotion_decision(
        conn, tenant=part.tenant, season=part.season, candidate_model_id=candidate.model_id,
        champion_model_id=champion.model_id if champion else None, stage=stage, decision=decision,
        statistic=test.mean_difference if test else None, p_value=test.p_value if test else None,
        sample_size=test.n if test else 0, evidence={**(evidence or {}), **({"test": test.to_dict()} if test else {})},
        run_id=part.run_id)


def _follow_in_mlflow(registry: MlflowRegistryResource, tenant: str, model: ModelVersion) -> None:
    if model.mlflow_version is not None:
        registry.set_champion_alias(tenant, model.mlflow_version, model.mlflow_model_name)


def _conclude(season: _Season, candidate: ModelVersion, champion: ModelVersion, test: PromotionDecision,
              steps: list[str]) -> ModelVersion:
    """Apply a canary's decision: promote, abort, or keep it in CANARY. Returns the champion after.

    A win is not promoted when the candidate is itself significantly worse than the naive baseline on this
    tenant's season (the REG-10 floor's test): a cohort's pooled evidence can favour a model that this one
    member's floor would remove at once, so it is retired instead of being promoted and replaced in one run.
    """
    part = season.part
    floor = _below_floor(season, candidate) if test.decision == "promote" else None
    with season.ledger.connect(part.tenant) as conn:
        candidate = model_store.get_model(conn, candidate.model_id)
        if floor is not None:
            reason = (f"canary won on {part.season} ({test.reason}) but is below the naive floor for {part.tenant} "
                      f"(REG-10): MAE {floor.mae_served:.0f} vs naive {floor.mae_naive:.0f} {part.spec.target_unit}, "
                      f"sign-flip test n={floor.test.n}, p={floor.test.p_value:.4g} < {floor.alpha}; champion "
                      f"{champion.mlflow_ref} stays")
            model_store.transition(conn, candidate, ModelState.DEPRECATED, reason=reason, run_id=part.run_id)
            audit.append(conn, tenant=part.tenant, action="promotion.refused", actor="rai-assets", reason=reason,
                         model_id=candidate.model_id, before={"state": "CANARY"}, after={"state": "DEPRECATED"})
            _record(conn, part, candidate, champion, "canary", "refused: below naive floor", test,
                    evidence={"floor": floor.to_dict()})
            steps.append(reason)
            return champion
        if test.decision == "promote":
            candidate = model_store.transition(conn, candidate, ModelState.CHAMPION, run_id=part.run_id,
                                               reason=f"canary win on {part.season}: {test.reason}")
        elif test.decision == "rollback":
            reason = f"canary loss on {part.season}: {test.reason}; champion model {champion.model_id} stays"
            candidate = model_store.transition(conn, candidate, ModelState.DEPRECATED, reason=reason,
                                               run_id=part.run_id)
            audit.append(conn, tenant=part.tenant, action="promotion.rollback", actor="rai-assets", reason=reason,
                         model_id=candidate.model_id, before={"state": "CANARY"}, after={"state": "DEPRECATED"})
        _record(conn, part, candidate, champion, "canary", test.decision, test)
    steps.append(f"canary guard on {candidate.mlflow_ref}: {test.decision} — {test.reason}")
    if test.decision == "promote":
        _follow_in_mlflow(season.registry, part.tenant, candidate)
        return candidate
    return champion


def _fallback(season: _Season, champion: ModelVersion, steps: list[str]) -> ModelVersion:
    """REG-10: replace a champion that is significantly worse than the naive baseline on the season."""
    part, spec = season.part, season.part.spec
    naive_pred = season.naive()
    floor = naive_floor(season.actual, season.predict(champion), naive_pred, alpha=spec.promotion.alpha)
    # forecast MAE vs naive on the season (OBS-1): the same figures the floor's test judged
    metrics.record_forecast_mae(part.tenant, served_mae=floor.mae_served, naive_mae=floor.mae_naive)
    if not floor.below_floor:
        metrics.served_below_naive.labels(tenant=part.tenant).set(0)
        return champion
    with season.ledger.connect(part.tenant) as conn:
        previous = _previous_champion(conn, part.tenant, champion.model_id)
    if previous is not None and _cannot_take_over(season, previous) is not None:
        previous = None
    why = (f"naive floor (REG-10): champion {champion.mlflow_ref} MAE {floor.mae_served:.0f} vs naive "
           f"{floor.mae_naive:.0f} {part.spec.target_unit} on {part.season}, sign-flip test n={floor.test.n}, "
           f"p={floor.test.p_value:.4g} < {floor.alpha}")
    if previous is None:
        previous = _naive_model(season, naive_pred)
    if previous.model_id == champion.model_id or previous.state not in (ModelState.VALIDATED,
                                                                       ModelState.DEPRECATED):
        # no governed fallback possible: the served model stays below the floor (RaiServedModelWorseThanNaive)
        metrics.served_below_naive.labels(tenant=part.tenant).set(1)
        steps.append(f"{why}; no fallback possible ({previous.kind} model {previous.mlflow_ref} is "
                     f"{previous.state}): still served")
        return champion
    with season.ledger.connect(part.tenant) as conn:
        if previous.state is ModelState.VALIDATED:
            model_store.transition(conn, model_store.get_model(conn, champion.model_id), ModelState.DEPRECATED,
                                   reason=why, run_id=part.run_id)
        new = model_store.transition(conn, model_store.get_model(conn, previous.model_id), ModelState.CHAMPION,
                                     reason=f"{why}: falls back to {previous.kind} model {previous.mlflow_ref}",
                                     run_id=part.run_id)
        audit.append(conn, tenant=part.tenant, action="promotion.naive_floor", actor="rai-assets", reason=why,
                     model_id=new.model_id, before={"champion": champion.model_id},
                     after={"champion": new.model_id, "kind": new.kind})
        loop.record_promotion_decision(
            conn, tenant=part.tenant, season=part.season, candidate_model_id=new.model_id,
            champion_model_id=champion.model_id, stage="rollback", decision="naive_floor",
            statistic=floor.mae_served - floor.mae_naive, p_value=floor.test.p_value, sample_size=floor.test.n,
            evidence={"floor": floor.to_dict()}, run_id=part.run_id)
    # the fallback (not itself below the floor) serves now; the fallback is counted (RaiNaiveFloorFallback)
    metrics.served_below_naive.labels(tenant=part.tenant).set(0)
    metrics.naive_floor_fallbacks.labels(tenant=part.tenant).inc()
    steps.append(f"{why} → fell back to {new.kind} model {new.mlflow_ref}")
    _follow_in_mlflow(season.registry, part.tenant, new)
    return new


def _refit_guard(season: _Season, champion: ModelVersion, steps: list[str]) -> ModelVersion:
    """After a season served by a refit (:mod:`~rai_assets.assets.serving_model`): score the fit it replaced on
    the season, record the pair as the recipe's refit evidence, and roll the refit back (RET-8) when it was
    significantly worse on the season (one-sided paired sign-flip test at ``alpha``). Returns who serves."""
    part, ledger = season.part, season.ledger
    with ledger.connect(part.tenant) as conn:
        row = conn.execute(
            "SELECT champion_model_id FROM promotion_decisions WHERE tenant_id = %s AND season_id = %s AND stage = %s"
            " AND decision = 'refit' AND candidate_model_id = %s ORDER BY decision_id DESC LIMIT 1",
            (part.tenant, part.season, REFIT_STAGE, champion.model_id)).fetchone()
        replaced = model_store.get_model(conn, int(row["champion_model_id"])) if row else None
    if replaced is None or trained_on(ledger, replaced, part.season):
        return champion
    older = season.abs_errors(replaced)
    d = older - season.abs_errors(champion)
    cohort = champion.cohort_id if champion.kind == "cohort" else None
    test = sign_flip_test(d, alternative="less", seed=_seed_of(champion.mlflow_ref, part.season, "refit-guard"))
    with ledger.connect(part.tenant) as conn:
        cohorts.record_evidence(conn, tenant=part.tenant, season=part.season, cohort=cohort,
                                candidate_ref=champion.mlflow_ref, champion_ref=replaced.mlflow_ref,
                                field_ids=season.ids, differences=d.tolist(), run_id=part.run_id,
                                champion_abs_errors=older.tolist())
        significant = test.p_value < part.spec.promotion.alpha
        held_out = artifacts.latest_signed(conn, "bias_audits", part.tenant, part.season)
        audit_failed = bool(held_out and held_out["model_id"] == champion.model_id
                            and ((held_out["body"].get("audit") or {}).get("verdict")) == "fail")
        current = model_store.get_model(conn, champion.model_id)
        if not (significant or audit_failed) or current.state is not ModelState.CHAMPION \
                or replaced.state is not ModelState.DEPRECATED:
            steps.append(f"refit {champion.mlflow_ref} vs the fit it replaced ({replaced.mlflow_ref}) on "
                         f"{part.season}: mean |error| reduction {test.mean_difference:.1f} "
                         f"{part.spec.target_unit} over "
                         f"{test.n} fields, p(worse)={test.p_value:.4g}: keeps serving")
            return champion
        reason = (f"refit {champion.mlflow_ref} significantly worse than the fit it replaced "
                  f"({replaced.mlflow_ref}) on {part.season}: sign-flip n={test.n}, p={test.p_value:.4g} < "
                  f"{part.spec.promotion.alpha}; rolled back" if significant else
                  f"refit {champion.mlflow_ref} failed its bias audit on {part.season} (REG-5): rolled back to "
                  f"{replaced.mlflow_ref}")
        back = model_store.transition(conn, replaced, ModelState.CHAMPION, reason=reason, run_id=part.run_id)
        audit.append(conn, tenant=part.tenant, action="promotion.rollback", actor="rai-assets", reason=reason,
                     model_id=back.model_id, before={"champion": champion.model_id}, after={"champion": back.model_id})
        loop.record_promotion_decision(
            conn, tenant=part.tenant, season=part.season, candidate_model_id=back.model_id,
            champion_model_id=champion.model_id, stage="rollback", decision="rollback", statistic=test.mean_difference,
            p_value=test.p_value, sample_size=test.n, evidence={"refit_guard": test.to_dict()}, run_id=part.run_id)
    steps.append(reason)
    _follow_in_mlflow(season.registry, part.tenant, back)
    return back


def _seed_of(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:4], "big")


def _naive_model(season: _Season, naive_pred: np.ndarray) -> ModelVersion:
    """Register the naive baseline as a governed model version of the tenant (VALIDATED)."""
    part, registry = season.part, season.registry
    mean = float(naive_pred[0]) if len(naive_pred) else float("nan")
    with season.ledger.connect(part.tenant) as conn:
        snap = artifacts.latest_snapshot(conn, part.tenant, part.season)
        if snap is None:
            raise LookupError(f"no snapshot of {part.tenant}/{part.season}: the naive baseline has no history")
        root = snap["merkle_root"]
        existing = model_store.find_model(conn, part.tenant, part.season, root, code_version(), part.spec.sha256,
                                          kind="naive")
        if existing is not None:  # re-runs: the same naive baseline, in whatever state it reached
            return existing
        draft = model_store.create_draft(conn, part.tenant, part.season, root, code_version(), part.spec.sha256,
                                         "cpu", part.run_id, kind="naive",
                                         lineage={"naive_mean_kg_ha": mean, "seasons_before": part.season})
        draft = model_store.transition(conn, draft, ModelState.TRAINING, reason="naive baseline (REG-10)",
                                       run_id=part.run_id)
    features = feature_matrix(season.fields, part.spec)
    model = train_naive_model(features, mean, part.spec)
    run_id, version = registry.log_trained_model(
        tenant=part.tenant, season=part.season, model=model, example=features.head(5),
        params={"kind": "naive_baseline", "mean_yield_kg_ha": round(mean, 3)}, metrics={"mean_yield_kg_ha": mean},
        tags={"tenant": part.tenant, "season": part.season, "kind": "naive_baseline", "dagster_run_id": part.run_id,
              "ledger_model_id": str(draft.model_id)})
    with season.ledger.connect(part.tenant) as conn:
        return model_store.transition(conn, draft, ModelState.VALIDATED, run_id=part.run_id,
                                      reason="naive baseline registered", mlflow_model_name=registry.model_name(
                                          part.tenant), mlflow_version=version, mlflow_run_id=run_id,
                                      validation_mae=float(np.mean(np.abs(naive_pred - season.actual))))


def materialize_model_promotion(
    context: PartitionStep, ledger: LedgerResource, mlflow_registry: MlflowRegistryResource,
    object_store: ObjectStoreResource, signer: SignerResource,
) -> MaterializeResult:
    """Advance the candidate (and any undecided earlier canary) as far as the evidence allows; MLflow's
    stage aliases and state tags then mirror the ledger (see :mod:`rai_assets.adapters.lifecycle_mirror`).

    The stored bias audit a promotion relies on is read back and verified (digest and Ed25519 signature)
    at the moment the promotion acts, not only when it was written (issue 8 item 11)."""
    part = partition_context(context, ledger)

    def verify(row: dict[str, Any]) -> tuple[bool, str]:
        verified, detail = read_back_and_verify(object_store, signer, str(row["object_key"]), str(row["body_sha256"]))
        with ledger.connect(part.tenant) as conn:
            artifacts.record_integrity_check(conn, tenant=part.tenant, kind="bias_audit", sha256=row["body_sha256"],
                                             object_key=row["object_key"], verified=verified, detail=detail)
        return verified, detail

    result = _advance(part, ledger, mlflow_registry, verify)
    mirrored = mirror_lifecycle(ledger, mlflow_registry, part.tenant)
    return MaterializeResult(metadata={**(result.metadata or {}), "mlflow_changes": len(mirrored)})


@asset(
    **TENANT_SEASON_ASSET,
    kinds={"mlflow", "postgres"},
    deps=[model_evaluation, bias_audit, drift_report, yield_forecasts],
    retry_policy=STEP_RETRY,
    description="Who serves the tenant: bootstrap champion (beats naive and passed its bias audit), SHADOW (every "
    "field scored) → CANARY (a hashed slice served) → CHAMPION on significant paired evidence pooled over seasons "
    "and cohort members (RET-7, RET-10); rollback on degradation (RET-8); the naive floor (REG-10).",
)
def model_promotion(
    context: AssetExecutionContext, ledger: LedgerResource, mlflow_registry: MlflowRegistryResource,
    object_store: ObjectStoreResource, signer: SignerResource,
) -> MaterializeResult:
    """The asset: :func:`materialize_model_promotion` for the run's partition."""
    return on_materialization_only(
        context, materialize_model_promotion(context, ledger, mlflow_registry, object_store, signer))


def _advance(part: PartitionContext, ledger: LedgerResource, mlflow_registry: MlflowRegistryResource,
             verify: AuditVerifier) -> MaterializeResult:
    spec, tenant, season_id, run_id = part.spec, part.tenant, part.season, part.run_id
    with ledger.connect(tenant) as conn:
        candidate = model_store.latest_model_for_partition(conn, tenant, season_id)
        champion = model_store.get_champion(conn, tenant)
        report = artifacts.latest_signed(conn, "drift_reports", tenant, season_id)
    if candidate is None or candidate.mlflow_version is None:
        raise ValueError(f"no trained candidate for {tenant}/{season_id}; materialize trained_model first")
    season = _Season(part, ledger, mlflow_registry, verify)
    steps: list[str] = []
    test: PromotionDecision | None = None

    # 1. RET-8: a champion whose performance degraded on this season is rolled back at once
    degraded = bool(report and (((report["body"].get("assessment") or {}).get("performance") or {})
                                .get("degraded")))
    if champion is not None and report is not None and degraded:
        with ledger.connect(tenant) as conn:
            previous = _previous_champion(conn, tenant, champion.model_id)
        why_not = _cannot_take_over(season, previous) if previous is not None else None
        if previous is not None and why_not is not None:
            steps.append(f"champion {champion.mlflow_ref} degraded on {season_id}, but its predecessor "
                         f"{previous.mlflow_ref} cannot serve: {why_not}; no rollback, the naive floor decides")
            previous = None
        with ledger.connect(tenant) as conn:
            if previous is not None:
                reason = f"champion model {champion.model_id} degraded on {season_id} (drift report " \
                         f"{report['body_sha256'][:12]}…): rolled back to model {previous.model_id}"
                model_store.transition(conn, previous, ModelState.CHAMPION, reason=reason, run_id=run_id)
                audit.append(conn, tenant=tenant, action="promotion.rollback", actor="rai-assets", reason=reason,
                             model_id=previous.model_id, before={"champion": champion.model_id},
                             after={"champion": previous.model_id})
                _record(conn, part, previous, champion, "rollback", "rollback",
                        evidence={"drift_report": report["body_sha256"]})
                steps.append(reason)
                champion = model_store.get_model(conn, previous.model_id)
        _follow_in_mlflow(mlflow_registry, tenant, champion)

    # 2. bootstrap: the tenant's first champion needs to beat naive and a passed bias audit (REG-5)
    if champion is None:
        champion = _bootstrap(season, candidate, steps)
        if champion is None:
            return _result("no champion: " + steps[-1], steps, candidate.state.value)
        if champion.kind == "naive":
            return _result("the naive baseline serves: " + steps[-2], steps, candidate.state.value, champion=champion)

    # 3. an undecided canary of an earlier season: more evidence, then decide or retire
    with ledger.connect(tenant) as conn:
        pending = [model_store.get_model(conn, int(r["model_id"])) for r in conn.execute(
            "SELECT model_id FROM model_versions WHERE tenant_id = %s AND state = 'CANARY' AND model_id <> %s"
            " ORDER BY model_id", (tenant, candidate.model_id)).fetchall()]
    with ledger.connect(tenant) as conn:
        lineage = set(model_store.challenger_lineage(conn, candidate))
    for older in pending:
        if older.mlflow_ref in lineage and candidate.state in (ModelState.VALIDATED, ModelState.SHADOW):
            continue  # the newer refit carries the lineage's evidence on; judging both would count fields twice
        if not trained_on(ledger, older, season_id) and not trained_on(ledger, champion, season_id):
            champion = _conclude(season, older, champion, _judge(season, older, champion), steps)

    if champion.model_id == candidate.model_id or candidate.mlflow_ref == champion.mlflow_ref:
        champion = _refit_guard(season, champion, steps)
        return _finish(season, champion, "the candidate is the champion", steps, candidate.state.value)
    if candidate.state not in (ModelState.VALIDATED, ModelState.SHADOW, ModelState.CANARY):
        return _finish(season, champion, f"candidate is {candidate.state}: nothing to promote", steps,
                       candidate.state.value)
    if trained_on(ledger, champion, season_id):
        return _finish(season, champion, f"the champion was trained on {season_id}: no fair comparison on it",
                       steps, candidate.state.value)
    with ledger.connect(tenant) as conn:
        decided = {r["decision"] for r in conn.execute(
            "SELECT decision FROM promotion_decisions WHERE tenant_id = %s AND season_id = %s"
            " AND candidate_model_id = %s AND decision IN ('promote', 'bootstrap', 'naive_floor', 'rollback',"
            " 'naive_bootstrap')", (tenant, season_id, champion.model_id)).fetchall()}
    if decided and (candidate.state is not ModelState.VALIDATED or "naive_bootstrap" in decided):
        # the champion was chosen on this season's labels (a re-run): judging on them again would use the
        # same evidence twice
        return _finish(season, champion, f"the champion was chosen on {season_id}'s labels: already decided",
                       steps, candidate.state.value)

    # 4. the gated path of this season's candidate
    cand_pred = season.predict(candidate)
    with ledger.connect(tenant) as conn:
        if candidate.state is ModelState.VALIDATED:
            audit_row = artifacts.latest_signed(conn, "bias_audits", tenant, season_id)
            if audit_row is None or audit_row["model_id"] != candidate.model_id or not audit_row["passed"]:
                _record(conn, part, candidate, champion, "shadow", "refused: bias audit not passed",
                        evidence={"bias_audit": audit_row["body_sha256"] if audit_row else None})
                return _finish(season, champion, "stays VALIDATED: its bias audit did not pass (REG-5)", steps,
                               "VALIDATED")
            verified, detail = season.verify(audit_row)
            if not verified:
                _record(conn, part, candidate, champion, "shadow", "refused: stored bias audit does not verify",
                        evidence={"bias_audit": audit_row["body_sha256"], "detail": detail})
                return _finish(season, champion, f"stays VALIDATED: the stored bias audit does not verify now "
                                                  f"({detail})", steps, "VALIDATED")
            model_store.supersede_live_challengers(
                conn, candidate, run_id=run_id, reason=f"superseded by candidate model {candidate.model_id}, trained "
                                                       "on more seasons, before its evidence decided")
            candidate = model_store.transition(conn, candidate, ModelState.SHADOW, run_id=run_id,
                                               reason="bias audit passed; scoring every field in shadow")
            artifacts.replace_forecasts(conn, tenant=tenant, season=season_id, model_id=candidate.model_id,
                                        role="shadow", run_id=run_id,
                                        unit=spec.target_unit,
                                        predictions=dict(zip(season.ids, map(float, cand_pred), strict=True)))
            _record(conn, part, candidate, champion, "shadow", "shadow",
                    evidence={"bias_audit": audit_row["body_sha256"], "fields": len(season.ids)})
            steps.append(f"SHADOW: scored all {len(season.ids)} fields (stored, not served)")
        if candidate.state is ModelState.SHADOW:
            # the canary serves a hashed slice of the *next* seasons' fields (yield_forecasts): this season's
            # forecasts were served before its labels were read, and are never rewritten
            candidate = model_store.transition(conn, candidate, ModelState.CANARY, run_id=run_id,
                                               reason=f"canary serves a hashed share {spec.promotion.canary_share} of "
                                                      "the fields of the next seasons it forecasts")
            steps.append(f"CANARY: will serve a share {spec.promotion.canary_share} of the next season's fields")
    test = _judge(season, candidate, champion)
    champion = _conclude(season, candidate, champion, test, steps)
    with ledger.connect(tenant) as conn:
        state = model_store.get_model(conn, candidate.model_id).state.value
    return _finish(season, champion, test.decision, steps, state, test)


def _bootstrap(season: _Season, candidate: ModelVersion, steps: list[str]) -> ModelVersion | None:
    """The tenant's first champion: the candidate, if it beats naive and its bias audit passed (REG-5)."""
    part = season.part
    with season.ledger.connect(part.tenant) as conn:
        body = artifacts.latest_evaluation(conn, part.tenant, part.season, candidate.model_id)
        audit_row = artifacts.latest_signed(conn, "bias_audits", part.tenant, part.season)
        overridden = conn.execute("SELECT 1 FROM bootstrap_overrides WHERE tenant_id = %s AND model_id = %s",
                                  (part.tenant, candidate.model_id)).fetchone() is not None
        audit_passed = bool(audit_row and audit_row["model_id"] == candidate.model_id and audit_row["passed"])
        # the stored audit as it is now, not as it was written
        passed = (audit_passed and audit_row is not None and season.verify(audit_row)[0]) or overridden
        beats = bool(body and body["comparison"].get("beats_naive"))
        why = ("its bias audit did not pass or no longer verifies (REG-5)" if not passed else
               "it does not beat the naive baseline" if not beats else f"it is {candidate.state}")
        if candidate.state is not ModelState.VALIDATED or not beats or not passed:
            _record(conn, part, candidate, None, "champion", f"bootstrap refused: {why}",
                    evidence={"bias_audit": audit_row["body_sha256"] if audit_row else None})
            steps.append(f"bootstrap refused: {why}")
    if not (candidate.state is ModelState.VALIDATED and beats and passed):
        return _naive_bootstrap(season, why, steps)
    with season.ledger.connect(part.tenant) as conn:
        comparison = body["comparison"] if body else {}
        promoted = model_store.promote_bootstrap_champion(
            conn, candidate, run_id=part.run_id,
            reason=f"first champion: held-out MAE {comparison['candidate']['mae']:.1f} < naive "
                   f"{comparison['naive']['mae']:.1f} {part.spec.target_unit} on {part.season}, bias audit "
                   f"{audit_row['body_sha256'][:12] if audit_row else ''}… passed")
        _record(conn, part, promoted, None, "champion", "bootstrap",
                evidence={"bias_audit": audit_row["body_sha256"] if audit_row else None})
    steps.append(f"bootstrap champion {promoted.mlflow_ref} (beats naive, bias audit passed)")
    _follow_in_mlflow(season.registry, part.tenant, promoted)
    return promoted


def _naive_bootstrap(season: _Season, why: str, steps: list[str]) -> ModelVersion | None:
    """REG-10 from the first season on: with no model fit to serve, the naive baseline (a governed, registered
    model version) becomes the tenant's champion, so the tenant is served the baseline, never nothing.
    Returns None when the tenant has no earlier labelled season (no baseline either)."""
    part = season.part
    try:
        naive = _naive_model(season, season.naive())
    except LookupError as exc:
        steps.append(f"no naive baseline either: {exc}")
        return None
    with season.ledger.connect(part.tenant) as conn:
        naive = model_store.get_model(conn, naive.model_id)
        if naive.state is not ModelState.VALIDATED:
            return None
        promoted = model_store.promote_bootstrap_champion(
            conn, naive, run_id=part.run_id,
            reason=f"the candidate is not served ({why}): the naive baseline serves {part.tenant} (REG-10)")
        _record(conn, part, promoted, None, "champion", "naive_bootstrap", evidence={"why": why})
    metrics.naive_floor_fallbacks.labels(tenant=part.tenant).inc()
    steps.append(f"the naive baseline {promoted.mlflow_ref} is champion until a candidate beats it with evidence")
    _follow_in_mlflow(season.registry, part.tenant, promoted)
    return promoted


def _finish(season: _Season, champion: ModelVersion, decision: str, steps: list[str], state: str,
            test: PromotionDecision | None = None) -> MaterializeResult:
    """Apply the naive floor to whoever serves now, then report."""
    if not trained_on(season.ledger, champion, season.part.season):
        champion = _fallback(season, champion, steps)
    return _result(decision, steps, state, test, champion)


def _result(decision: str, steps: list[str], state: str, test: PromotionDecision | None = None,
            champion: ModelVersion | None = None) -> MaterializeResult:
    metrics.export()  # the step's decisions, floor and MAE vs naive (pushed to the run's group, OBS-1)
    metadata: dict[str, Any] = {
        "decision": decision,
        "candidate_state": state,
        "serving": champion.mlflow_ref if champion else "nobody",
        "serving_kind": champion.kind if champion else "none",
        "steps": MetadataValue.md("\n".join(f"1. {s}" for s in steps) or "none"),
    }
    if test is not None:
        metadata.update({"test": test.test, "p_value": test.p_value, "sample_size": test.n,
                         "paired_fields_total": test.n_total,
                         "mean_error_reduction_kg_ha": round(test.mean_difference, 1),
                         "evidence": MetadataValue.json(test.to_dict())})
    return MaterializeResult(metadata=metadata)


