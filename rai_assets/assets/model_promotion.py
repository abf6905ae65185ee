"""Asset: the staged promotion of the partition's candidate — SHADOW → CANARY → CHAMPION or not.

SHADOW: the candidate scores the same fields as the champion; its forecasts are stored, never
served. CANARY: a deterministic slice of fields (hash of the field id) is served the candidate's
forecast; with the harvest labels, the canary guard compares per-field absolute errors of
candidate and champion on those fields with an always-valid mSPRT (α from the spec, minimum
sample) and promotes only on a significant win (RET-7). A significant loss aborts the canary and
a degraded champion is rolled back to its predecessor at once (RET-8); both are audited and start
the cooldown (RET-4). Every decision is recorded with its statistic, p-value, likelihood ratio,
sample size and evidence.
"""

from typing import Any

import numpy as np
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from rai_assets.adapters.ledger import artifacts, audit, loop
from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.assets.bias_audit import bias_audit
from rai_assets.assets.common import ASSET_GROUP, STEP_RETRY, partition_context
from rai_assets.assets.drift_report import drift_report
from rai_assets.assets.model_evaluation import model_evaluation
from rai_assets.assets.model_io import model_predictions, season_frame, trained_on
from rai_assets.assets.partitions import ONE_PARTITION_PER_RUN, tenant_season_partitions
from rai_assets.domain.features import target_vector
from rai_assets.domain.lifecycle import ModelState
from rai_assets.domain.sequential import canary_slice, msprt


def _previous_champion(conn: Any, tenant: str, current_id: int) -> model_store.ModelVersion | None:
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


@asset(
    partitions_def=tenant_season_partitions,
    backfill_policy=ONE_PARTITION_PER_RUN,
    group_name=ASSET_GROUP,
    kinds={"mlflow", "postgres"},
    deps=[model_evaluation, bias_audit, drift_report],
    retry_policy=STEP_RETRY,
    description="Staged promotion of the candidate: SHADOW (scored, not served) → CANARY (a hashed slice of "
    "fields served) → CHAMPION only on a significant win of an always-valid mSPRT on paired per-field errors "
    "(RET-7); significant loss or champion degradation rolls back at once (RET-8).",
)
def model_promotion(
    context: AssetExecutionContext, ledger: LedgerResource, mlflow_registry: MlflowRegistryResource
) -> MaterializeResult:
    """Advance the candidate through the gated path as far as the evidence allows."""
    part = partition_context(context, ledger)
    spec, tenant, season, run_id = part.spec, part.tenant, part.season, part.run_id
    with ledger.connect(tenant) as conn:
        candidate = model_store.latest_model_for_partition(conn, tenant, season)
        champion = model_store.get_champion(conn, tenant)
        report = artifacts.latest_signed(conn, "drift_reports", tenant, season)
    steps: list[str] = []

    # RET-8: a champion whose performance degraded on this season is rolled back at once
    degraded = bool(report and (((report["body"].get("assessment") or {}).get("performance") or {})
                                .get("degraded")))
    if champion is not None and report is not None and degraded:
        with ledger.connect(tenant) as conn:
            previous = _previous_champion(conn, tenant, champion.model_id)
            if previous is not None:
                reason = f"champion model {champion.model_id} degraded on {season} (drift report " \
                         f"{report['body_sha256'][:12]}…): rolled back to model {previous.model_id}"
                model_store.transition(conn, previous, ModelState.CHAMPION, reason=reason, run_id=run_id)
                audit.append(conn, tenant=tenant, action="promotion.rollback", actor="rai-assets", reason=reason,
                             model_id=previous.model_id, before={"champion": champion.model_id},
                             after={"champion": previous.model_id})
                loop.record_promotion_decision(
                    conn, tenant=tenant, season=season, candidate_model_id=previous.model_id,
                    champion_model_id=champion.model_id, stage="rollback", decision="rollback",
                    evidence={"drift_report": report["body_sha256"]}, run_id=run_id)
                steps.append(reason)
                champion = model_store.get_model(conn, previous.model_id)
        if champion.mlflow_version is not None:
            mlflow_registry.set_champion_alias(tenant, champion.mlflow_version)

    if candidate is None or candidate.mlflow_version is None:
        raise ValueError(f"no trained candidate for {tenant}/{season}; materialize trained_model first")
    if champion is None or champion.model_id == candidate.model_id:
        return _result("no gated promotion: " + ("the candidate is the champion" if champion else
                                                 "the tenant has no champion (bootstrap happens at evaluation)"),
                       steps, candidate.state.value)
    if candidate.state not in (ModelState.VALIDATED, ModelState.SHADOW, ModelState.CANARY):
        return _result(f"candidate is {candidate.state}: nothing to promote", steps, candidate.state.value)
    if trained_on(ledger, champion, season):
        return _result(f"the champion was trained on {season}: no fair comparison on it", steps,
                       candidate.state.value)

    fields = season_frame(ledger, tenant, season, spec)
    actual = target_vector(fields, spec)
    cand_pred = model_predictions(mlflow_registry, candidate, fields, spec)
    champ_pred = model_predictions(mlflow_registry, champion, fields, spec)
    ids = [str(f) for f in fields["field_id"]]

    with ledger.connect(tenant) as conn:
        if candidate.state is ModelState.VALIDATED:
            audit_row = artifacts.latest_signed(conn, "bias_audits", tenant, season)
            if audit_row is None or audit_row["model_id"] != candidate.model_id or not audit_row["passed"]:
                loop.record_promotion_decision(
                    conn, tenant=tenant, season=season, candidate_model_id=candidate.model_id,
                    champion_model_id=champion.model_id, stage="shadow", decision="refused: bias audit not passed",
                    evidence={"bias_audit": audit_row["body_sha256"] if audit_row else None}, run_id=run_id)
                return _result("stays VALIDATED: its bias audit did not pass (REG-5)", steps, "VALIDATED")
            for other in conn.execute(
                "SELECT model_id FROM model_versions WHERE tenant_id = %s AND state IN ('SHADOW', 'CANARY')"
                " AND model_id <> %s", (tenant, candidate.model_id)).fetchall():
                older = model_store.get_model(conn, int(other["model_id"]))
                model_store.transition(conn, older, ModelState.DEPRECATED, run_id=run_id,
                                       reason=f"superseded by candidate model {candidate.model_id}")
            candidate = model_store.transition(conn, candidate, ModelState.SHADOW, run_id=run_id,
                                               reason="bias audit passed; scoring in shadow")
            artifacts.replace_forecasts(conn, tenant=tenant, season=season, model_id=candidate.model_id,
                                        role="shadow", predictions=dict(zip(ids, map(float, cand_pred), strict=True)),
                                        run_id=run_id)
            loop.record_promotion_decision(
                conn, tenant=tenant, season=season, candidate_model_id=candidate.model_id,
                champion_model_id=champion.model_id, stage="shadow", decision="shadow",
                sample_size=len(ids), evidence={"bias_audit": audit_row["body_sha256"]}, run_id=run_id)
            steps.append(f"SHADOW: scored {len(ids)} fields (stored, not served)")
        in_slice = np.array([canary_slice(f, spec.promotion.canary_share, salt=tenant) for f in ids], dtype=bool)
        if candidate.state is ModelState.SHADOW:
            candidate = model_store.transition(conn, candidate, ModelState.CANARY, run_id=run_id,
                                               reason=f"canary on {int(in_slice.sum())} of {len(ids)} fields")
            artifacts.replace_forecasts(
                conn, tenant=tenant, season=season, model_id=candidate.model_id, role="canary",
                predictions={f: float(p) for f, p, s in zip(ids, cand_pred, in_slice, strict=True) if s},
                run_id=run_id)
            steps.append(f"CANARY: served to {int(in_slice.sum())} of {len(ids)} fields "
                         f"(share {spec.promotion.canary_share})")

    test = msprt(np.abs(champ_pred - actual)[in_slice], np.abs(cand_pred - actual)[in_slice],
                 alpha=spec.promotion.alpha, min_sample=spec.promotion.min_sample)
    evidence = {"test": test.to_dict(), "fields_in_slice": int(in_slice.sum()),
                "drift_report": report["body_sha256"] if report else None}
    with ledger.connect(tenant) as conn:
        candidate = model_store.get_model(conn, candidate.model_id)
        if test.decision == "promote":
            candidate = model_store.transition(
                conn, candidate, ModelState.CHAMPION, run_id=run_id,
                reason=f"canary win: mean |error| reduction {test.mean_difference:.1f} kg/ha, "
                       f"always-valid p {test.p_value:.4f} < {test.alpha} (n={test.n})")
        elif test.decision == "rollback":
            reason = (f"canary loss: candidate worse by {-test.mean_difference:.1f} kg/ha, p {test.p_value:.4f} "
                      f"(n={test.n}); the slice goes back to champion model {champion.model_id}")
            candidate = model_store.transition(conn, candidate, ModelState.DEPRECATED, reason=reason,
                                               run_id=run_id)
            audit.append(conn, tenant=tenant, action="promotion.rollback", actor="rai-assets", reason=reason,
                         model_id=candidate.model_id, before={"state": "CANARY"}, after={"state": "DEPRECATED"})
        loop.record_promotion_decision(
            conn, tenant=tenant, season=season, candidate_model_id=candidate.model_id,
            champion_model_id=champion.model_id, stage="canary", decision=test.decision,
            statistic=test.mean_difference, p_value=test.p_value, likelihood_ratio=test.likelihood_ratio,
            sample_size=test.n, evidence=evidence, run_id=run_id)
    if test.decision == "promote" and candidate.mlflow_version is not None:
        mlflow_registry.set_champion_alias(tenant, candidate.mlflow_version)
    steps.append(f"canary guard: {test.decision} — {test.reason}")
    return _result(test.decision, steps, candidate.state.value, test=test.to_dict())


def _result(decision: str, steps: list[str], state: str, test: dict[str, Any] | None = None) -> MaterializeResult:
    metadata: dict[str, Any] = {
        "decision": decision,
        "candidate_state": state,
        "steps": MetadataValue.md("\n".join(f"1. {s}" for s in steps) or "none"),
    }
    if test is not None:
        metadata.update({"p_value": test["p_value"], "likelihood_ratio": test["likelihood_ratio"],
                         "sample_size": test["n"], "mean_error_reduction_kg_ha": test["mean_difference"],
                         "test": MetadataValue.json(test)})
    return MaterializeResult(metadata=metadata)
