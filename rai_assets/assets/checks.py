"""Asset checks for the verdicts people act on, partitioned like their assets (tenant × season).

Each check is evaluated by its asset's own step (the verdict is computed there, once) and returned
with the materialization, so the Dagster UI shows a red or yellow check on the partition where a
person has something to do:

* ``bias_audit_passed`` (``bias_audit``): ERROR on a failed audit or a signature that did not verify,
  WARN on ``inconclusive`` (REG-5).
* ``drift_not_actionable`` (``drift_report``): WARN when the retraining guard's own rule
  (:func:`rai_assets.domain.guards.drift_actionable`) calls the report actionable (RET-1, DRIFT-4).
* ``candidate_beats_champion_and_naive`` (``model_evaluation``): WARN when the candidate's held-out MAE
  does not beat the naive baseline, or the champion's where there is one (point estimates; the
  promotion test itself is in ``model_promotion``).
* ``forecasts_complete`` (``yield_forecasts``): WARN unless every field of the season was served.

None is blocking: the lifecycle already acts on each verdict inside ``model_promotion`` (a failed bias
audit is refused at SHADOW, the naive floor and rollback must still run), and a blocking check would
stop those steps too.
"""

from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue

from rai_assets.assets.partitions import tenant_season_partitions

BIAS_PASSED = "bias_audit_passed"
DRIFT_NOT_ACTIONABLE = "drift_not_actionable"
CANDIDATE_BEATS = "candidate_beats_champion_and_naive"
FORECASTS_COMPLETE = "forecasts_complete"


def verdict_check(name: str, asset: str, description: str) -> AssetCheckSpec:
    """A non-blocking check of ``asset`` partitioned by tenant × season."""
    return AssetCheckSpec(name, asset=asset, description=description, partitions_def=tenant_season_partitions)


def bias_check(verdict: str, signature_verified: bool, reasons: list[str]) -> AssetCheckResult:
    """``bias_audit_passed``: passes only for a ``pass`` verdict whose stored signature verified."""
    passed = verdict == "pass" and signature_verified
    severity = AssetCheckSeverity.WARN if verdict == "inconclusive" and signature_verified else \
        AssetCheckSeverity.ERROR
    why = "signature did not verify" if not signature_verified else f"verdict {verdict}"
    return AssetCheckResult(check_name=BIAS_PASSED, passed=passed, severity=severity, description=why,
                            metadata={"verdict": verdict, "signature_verified": signature_verified,
                                      "reasons": MetadataValue.md("\n".join(f"- {r}" for r in reasons) or "none")})


def drift_check(actionable: bool, reason: str, verdict: str) -> AssetCheckResult:
    """``drift_not_actionable``: fails (WARN) when the report is actionable under the tenant's thresholds."""
    return AssetCheckResult(check_name=DRIFT_NOT_ACTIONABLE, passed=not actionable, severity=AssetCheckSeverity.WARN,
                            description=reason, metadata={"verdict": verdict, "actionable": actionable})


def evaluation_check(candidate_mae: float, naive_mae: float, champion_mae: float | None,
                     unit: str) -> AssetCheckResult:
    """``candidate_beats_champion_and_naive``: held-out MAE below naive and below the champion's.

    MAEs are in ``unit``, the spec's target unit (kg/ha for rice-yield-v1); the metadata keys keep their
    ``_kg_ha`` names for backward compatibility and ``unit`` names the unit.
    """
    beats_naive = candidate_mae < naive_mae
    beats_champion = champion_mae is None or candidate_mae < champion_mae
    parts = [f"candidate {candidate_mae:,.0f} vs naive {naive_mae:,.0f} {unit}"]
    if champion_mae is not None:
        parts.append(f"champion {champion_mae:,.0f} {unit}")
    return AssetCheckResult(
        check_name=CANDIDATE_BEATS, passed=beats_naive and beats_champion, severity=AssetCheckSeverity.WARN,
        description="; ".join(parts),
        metadata={"candidate_mae_kg_ha": round(candidate_mae, 1), "naive_mae_kg_ha": round(naive_mae, 1),
                  "champion_mae_kg_ha": round(champion_mae, 1) if champion_mae is not None else MetadataValue.null(),
                  "beats_naive": beats_naive, "beats_champion": beats_champion, "unit": unit})


def forecasts_check(served: int, fields: int, status: str) -> AssetCheckResult:
    """``forecasts_complete``: every one of the season's ``fields`` has a served forecast."""
    return AssetCheckResult(check_name=FORECASTS_COMPLETE, passed=fields > 0 and served == fields,
                            severity=AssetCheckSeverity.WARN,
                            description=f"{served} of {fields} fields served: {status}",
                            metadata={"served": served, "fields": fields})
