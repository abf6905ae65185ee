"""Retraining guards (RET-1, RET-2, RET-3, RET-4, RET-5, RET-6; DRIFT-2), as pure decisions.

Pure functions; no Dagster, no I/O. The caller (the retraining sensor) reads the facts from the
ledger, calls one function per guard and combines the results with :func:`evaluate_guards`. Every
function returns a :class:`GuardDecision`; a refusal always carries a one-sentence, human-readable
``reason`` naming the numbers behind it and the requirement it enforces, and ``detail`` holds the
same numbers as JSON-serialisable values (for run tags, Dagster metadata, ledger rows and the
``rai_retrain_cooldown_active`` gauge of OBS-1).

Guards (the ``guard`` name of each decision):

* ``"drift"`` — :func:`drift_actionable`: the signed drift report shows *actionable* drift (RET-1):
  a degraded MAE on its own (DRIFT-4, whatever the sample), or a feature whose Benjamini-Hochberg
  adjusted test is significant and that, at ``n >= min_sample``, has ``PSI >= psi_actionable``;
  below ``min_sample`` only a small-sample test (exact KS, permutation chi-squared) counts (DRIFT-2, 6).
* ``"cooldown"`` — :func:`cooldown`: no automatic retraining within 7 days of a rollback (RET-4).
* ``"circuit_breaker"`` — :func:`circuit_breaker`: disabled after 3 consecutive failed retraining
  runs (RET-5), until an operator resets the breaker.
* ``"quota"`` — :func:`quota`: 100 GPU-hours per tenant per calendar month and an optional monthly
  budget cap (RET-6); :func:`gpu_hours` sums the GPU-hours of runs within a month.
* ``"mutex"`` — :func:`mutex`: at most one retraining per tenant at a time (RET-2), which also rules
  out a second retraining for the same trigger (RET-3).

Times: every function accepts timezone-aware or naive datetimes, as long as the arguments of one
call agree (comparing an aware with a naive datetime raises ``ValueError``). Aware datetimes are
shown in UTC in the reasons.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rai_assets.domain.drift import DriftThresholds

__all__ = [
    "COOLDOWN_DAYS",
    "FAILURE_THRESHOLD",
    "GPU_HOURS_LIMIT",
    "OUTCOMES",
    "DetailValue",
    "GuardDecision",
    "circuit_breaker",
    "cooldown",
    "drift_actionable",
    "evaluate_guards",
    "gpu_hours",
    "month_bounds",
    "mutex",
    "quota",
]

#: RET-4: no automatic retraining within this many days of a rollback.
COOLDOWN_DAYS = 7.0
#: RET-5: the circuit breaker opens after this many consecutive failed retraining runs.
FAILURE_THRESHOLD = 3
#: RET-6: GPU-hours per tenant per calendar month.
GPU_HOURS_LIMIT = 100.0
#: Drift tests valid below ``min_sample`` (see :mod:`rai_assets.domain.drift`).
_SMALL_SAMPLE_TESTS = ("ks_2samp_exact", "chi2_permutation")
#: The outcomes of a finished retraining run understood by :func:`circuit_breaker`.
OUTCOMES: tuple[str, ...] = ("succeeded", "failed")

#: A value of :attr:`GuardDecision.detail` (``bool`` is accepted as an ``int``).
DetailValue = float | int | str | None

_SECONDS_PER_DAY = 86_400.0
_SECONDS_PER_HOUR = 3_600.0


@dataclass(frozen=True)
class GuardDecision:
    """The outcome of one retraining guard.

    Attributes:
        guard: ``"drift"``, ``"cooldown"``, ``"circuit_breaker"``, ``"quota"``, ``"mutex"``, or ``"all"``
            for the combined decision of :func:`evaluate_guards`.
        allowed: ``True`` when the guard lets the retraining go ahead.
        reason: one human-readable sentence naming the numbers behind the decision and the requirement
            it enforces, e.g. ``"cooldown: last rollback 2026-11-18T10:00Z is 3.0 days ago (< 7 days,
            RET-4)"``.
        detail: the numbers behind the decision, as JSON-serialisable scalars (``json.dumps`` succeeds).
    """

    guard: str
    allowed: bool
    reason: str
    detail: dict[str, DetailValue] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{"guard", "allowed", "reason", "detail"}`` as plain JSON-serialisable values."""
        return {"guard": self.guard, "allowed": bool(self.allowed), "reason": self.reason, "detail": dict(self.detail)}


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    """``2026-11-18T10:00Z`` (UTC, minutes; seconds when not whole minutes); naive datetimes without ``Z``."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
        suffix = "Z"
    else:
        suffix = ""
    pattern = "%Y-%m-%dT%H:%M" if moment.second == 0 and moment.microsecond == 0 else "%Y-%m-%dT%H:%M:%S"
    return moment.strftime(pattern) + suffix


def _difference(later: datetime, earlier: datetime, what: str) -> timedelta:
    """``later - earlier``; ``ValueError`` (instead of ``TypeError``) when one is aware and one naive."""
    try:
        return later - earlier
    except TypeError as exc:
        raise ValueError(f"{what}: cannot compare timezone-aware and naive datetimes ({exc})") from exc


def _finite_non_negative(value: float, name: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}") from exc
    if not (math.isfinite(number) and number >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def _optional_float(value: Any) -> float | None:
    """``float(value)`` for a finite number, ``None`` for ``None``/non-numbers/non-finite values."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _optional_int(value: Any) -> int | None:
    number = _optional_float(value)
    return None if number is None else int(number)


# --------------------------------------------------------------------------------------------------
# Drift (RET-1, DRIFT-2)
# --------------------------------------------------------------------------------------------------


def _is_significant(feature: Mapping[str, Any], alpha: float) -> bool:
    """BH-adjusted ``p < alpha`` (re-evaluated at the given alpha); the report's flag if p is missing."""
    p_adjusted = _optional_float(feature.get("p_value_adjusted"))
    if p_adjusted is None:
        return bool(feature.get("significant", False))
    return p_adjusted < alpha


def _performance_degraded(performance: Any, thresholds: DriftThresholds) -> bool:
    """``MAE_current > (1 + ratio) · MAE_validation`` at the given ratio; the report's flag otherwise."""
    if not isinstance(performance, Mapping):
        return False
    current = _optional_float(performance.get("mae_current"))
    validation = _optional_float(performance.get("mae_validation"))
    if current is None or validation is None or validation <= 0.0:
        return bool(performance.get("degraded", False))
    return current > (1.0 + thresholds.mae_degradation_ratio) * validation


def drift_actionable(report_body: Mapping[str, Any], thresholds: DriftThresholds) -> GuardDecision:
    """Whether a signed drift report shows actionable drift (RET-1, DRIFT-2).

    Args:
        report_body: the body of the signed drift report (see ``rai_assets.assets.drift_report``):
            ``{"verdict": ..., "reasons": [...], "assessment": DriftAssessment.to_dict()}``; the
            ``"assessment"`` is absent for verdict ``"no_reference"``. The assessment keys read here
            are ``n_current``, ``min_sample``, ``max_psi``, ``features[*].{feature, psi,
            p_value_adjusted, significant, test}`` and ``performance.{mae_current, mae_validation,
            degraded}`` (:meth:`rai_assets.domain.drift.DriftAssessment.to_dict`).
        thresholds: the tenant's drift thresholds (:class:`~rai_assets.domain.drift.DriftThresholds`).

    Returns:
        ``guard="drift"``. Allowed when the assessment, re-checked against ``thresholds`` (a tenant may
        have tightened them since the report), has

        * ``MAE_current > (1 + thresholds.mae_degradation_ratio) · MAE_validation`` (DRIFT-4): actionable
          on its own, for a ``"drift"`` *or* an ``"insufficient_sample"`` report — a degraded champion
          is never hidden behind the features' sample size; or, for a ``"drift"`` report,
        * some feature whose Benjamini-Hochberg adjusted p-value is ``< thresholds.alpha`` and, when
          ``n_current >= thresholds.min_sample``, ``psi >= thresholds.psi_actionable`` (Siddiqi 2006,
          0.25); when ``n_current < thresholds.min_sample`` the feature's test must be a small-sample
          test valid at that n (``ks_2samp_exact`` or ``chi2_permutation``; an asymptotic test on fewer
          rows than the tenant's minimum does not count, DRIFT-2) and PSI is not required (it is biased
          upward at small n; see :mod:`rai_assets.domain.drift`).

        Refused, with the reason: verdict ``"insufficient_sample"`` without a degraded MAE (reason starts
        ``"drift: insufficient sample"``), ``"no_reference"``, ``"no_drift"``, ``"warning"``, an
        unknown or missing verdict, a ``"drift"`` report without an assessment, and a ``"drift"``
        report that is not actionable under ``thresholds``. The guard fails closed: anything it cannot
        read is a refusal, never an exception. ``detail``: ``report_verdict``, ``n_current``,
        ``min_sample``, ``max_psi``, ``psi_actionable``, ``alpha``, ``actionable_features``
        (comma-separated names), ``n_actionable_features``, ``performance_degraded``.

    Raises:
        TypeError: ``report_body`` is not a mapping or ``thresholds`` not a ``DriftThresholds``.
    """
    if not isinstance(report_body, Mapping):
        raise TypeError(f"report_body must be a mapping, got {type(report_body).__name__}")
    if not isinstance(thresholds, DriftThresholds):
        raise TypeError(f"thresholds must be a DriftThresholds, got {type(thresholds).__name__}")
    verdict = report_body.get("verdict")
    assessment = report_body.get("assessment")
    assessment = assessment if isinstance(assessment, Mapping) else None
    report_reasons = report_body.get("reasons")
    if not report_reasons and assessment is not None:
        report_reasons = assessment.get("reasons")
    first_reason = str(report_reasons[0]) if isinstance(report_reasons, list | tuple) and report_reasons else ""

    detail: dict[str, DetailValue] = {
        "report_verdict": None if verdict is None else str(verdict),
        "n_current": None,
        "min_sample": thresholds.min_sample,
        "max_psi": None,
        "psi_actionable": thresholds.psi_actionable,
        "alpha": thresholds.alpha,
        "actionable_features": "",
        "n_actionable_features": 0,
        "performance_degraded": False,
    }
    if assessment is not None:
        detail["n_current"] = _optional_int(assessment.get("n_current"))
        detail["max_psi"] = _optional_float(assessment.get("max_psi"))

    def refuse(reason: str) -> GuardDecision:
        return GuardDecision("drift", False, reason, detail)

    if verdict == "insufficient_sample" and assessment is not None and _performance_degraded(
        assessment.get("performance"), thresholds
    ):
        detail["performance_degraded"] = True
        return GuardDecision(
            "drift",
            True,
            "drift: actionable: MAE degraded (> +"
            f"{thresholds.mae_degradation_ratio:.0%} over validation), reported on its own although no "
            "feature test could decide at this sample size (RET-1, DRIFT-4)",
            detail,
        )
    if verdict == "insufficient_sample":
        n_current = detail["n_current"]
        minimum = _optional_int(assessment.get("min_sample")) if assessment is not None else None
        minimum = thresholds.min_sample if minimum is None else minimum
        shown = "an unknown number of" if n_current is None else str(n_current)
        return refuse(
            f"drift: insufficient sample: {shown} current rows < minimum {minimum}, so the report gives no "
            "drift verdict and retraining is not requested (DRIFT-2)"
        )
    if verdict == "no_reference":
        because = f": {first_reason}" if first_reason else ""
        return refuse(f"drift: the report has no reference to compare with, so drift is not actionable{because}")
    if verdict in ("no_drift", "warning"):
        because = f": {first_reason}" if first_reason else ""
        return refuse(f"drift: report verdict {verdict!r} is not actionable (RET-1){because}")
    if verdict != "drift":
        return refuse(f"drift: unknown report verdict {verdict!r}; refusing to retrain on an unreadable report")
    if assessment is None:
        return refuse("drift: the report's verdict is 'drift' but it carries no assessment to check; refusing")

    n_current = _optional_int(assessment.get("n_current"))
    degraded = _performance_degraded(assessment.get("performance"), thresholds)
    detail["performance_degraded"] = degraded
    if n_current is None and not degraded:
        return refuse("drift: insufficient sample: an unknown number of current rows (DRIFT-2)")
    small = n_current is None or n_current < thresholds.min_sample
    features = assessment.get("features") or []
    actionable: list[tuple[str, float]] = []
    asymptotic_only = 0
    for feature in features if isinstance(features, list | tuple) else []:
        if not isinstance(feature, Mapping):
            continue
        psi = _optional_float(feature.get("psi"))
        if not _is_significant(feature, thresholds.alpha):
            continue
        if small:
            if feature.get("test") in _SMALL_SAMPLE_TESTS:
                actionable.append((str(feature.get("feature", "?")), math.nan if psi is None else psi))
            else:
                asymptotic_only += 1
        elif psi is not None and psi >= thresholds.psi_actionable:
            actionable.append((str(feature.get("feature", "?")), psi))
    detail["actionable_features"] = ",".join(name for name, _ in actionable)
    detail["n_actionable_features"] = len(actionable)
    if small and not actionable and not degraded:
        return refuse(
            f"drift: insufficient sample: {n_current} current rows < the tenant's minimum {thresholds.min_sample} "
            f"for asymptotic tests, and no feature is significant under a small-sample test "
            f"({asymptotic_only} significant only under an asymptotic test; DRIFT-2)"
        )
    if not actionable and not degraded:
        return refuse(
            f"drift: no feature has PSI >= {thresholds.psi_actionable:g} with a Benjamini-Hochberg adjusted "
            f"p < {thresholds.alpha:g} and the MAE is within +{thresholds.mae_degradation_ratio:.0%} of "
            "validation under the tenant's thresholds, so the report's 'drift' verdict is not actionable (RET-1)"
        )
    causes = [f"{name} PSI {psi:.3f}" for name, psi in actionable]
    if degraded:
        causes.insert(0, "MAE degraded")
    rule = (
        f"small-sample test, BH-adjusted p < {thresholds.alpha:g}" if small
        else f"PSI >= {thresholds.psi_actionable:g}, BH-adjusted p < {thresholds.alpha:g}"
    )
    size = f"{n_current} current rows ({'<' if small else '>='} {thresholds.min_sample})"
    return GuardDecision(
        "drift",
        True,
        f"drift: actionable on {size}: {', '.join(causes)} ({rule}; RET-1, DRIFT-2)",
        detail,
    )


# --------------------------------------------------------------------------------------------------
# Cooldown (RET-4)
# --------------------------------------------------------------------------------------------------


def cooldown(last_rollback_at: datetime | None, now: datetime, days: float = COOLDOWN_DAYS) -> GuardDecision:
    """No automatic retraining within ``days`` of the tenant's last rollback (RET-4, anti-oscillation).

    Args:
        last_rollback_at: when the tenant's last rollback happened, or ``None`` when it never had one.
        now: the current time (aware or naive, like ``last_rollback_at``).
        days: length of the cooldown in days (RET-4: 7), finite and ``>= 0``.

    Returns:
        ``guard="cooldown"``: refused while ``now - last_rollback_at < days`` ("within 7 days"); exactly
        ``days`` after the rollback it is allowed again. A rollback time in the future of ``now``
        (clock skew) is refused too. ``detail``: ``last_rollback_at`` (ISO), ``elapsed_days``,
        ``cooldown_days``, ``cooldown_until`` (ISO), ``remaining_days``, ``active`` (1 while the
        cooldown blocks retraining, else 0: the ``rai_retrain_cooldown_active`` gauge of OBS-1).

    Raises:
        ValueError: ``days`` negative or not finite; ``now`` and ``last_rollback_at`` mix aware and naive.
    """
    days = _finite_non_negative(days, "days")
    if last_rollback_at is None:
        return GuardDecision(
            "cooldown",
            True,
            "cooldown: the tenant has no rollback on record (RET-4)",
            {"last_rollback_at": None, "elapsed_days": None, "cooldown_days": days, "cooldown_until": None,
             "remaining_days": 0.0, "active": 0},
        )
    elapsed = _difference(now, last_rollback_at, "cooldown").total_seconds() / _SECONDS_PER_DAY
    until = last_rollback_at + timedelta(days=days)
    remaining = max(0.0, days - elapsed)
    active = elapsed < days  # a negative elapsed time (rollback in the future) is active too
    detail: dict[str, DetailValue] = {
        "last_rollback_at": last_rollback_at.isoformat(),
        "elapsed_days": elapsed,
        "cooldown_days": days,
        "cooldown_until": until.isoformat(),
        "remaining_days": remaining,
        "active": int(active),
    }
    when = _iso(last_rollback_at)
    if elapsed < 0.0:
        return GuardDecision(
            "cooldown",
            False,
            f"cooldown: last rollback {when} lies {-elapsed:.1f} days after now ({_iso(now)}); refusing until the "
            "clocks agree (RET-4)",
            detail,
        )
    shown = f"{elapsed:.1f}"
    if active and float(shown) >= days:  # 6.96 must not read "7.0 days ago (< 7 days"
        shown = f"{math.floor(elapsed * 1e4) / 1e4:.4f}"  # truncated: 6.99998 reads 6.9999
    if active:
        return GuardDecision(
            "cooldown",
            False,
            f"cooldown: last rollback {when} is {shown} days ago (< {days:g} days, RET-4); automatic retraining "
            f"resumes at {_iso(until)}",
            detail,
        )
    return GuardDecision(
        "cooldown", True, f"cooldown: last rollback {when} is {shown} days ago (>= {days:g} days, RET-4)", detail
    )


# --------------------------------------------------------------------------------------------------
# Circuit breaker (RET-5)
# --------------------------------------------------------------------------------------------------


def _check_outcome(outcome: Any, index: int) -> str:
    if outcome not in OUTCOMES:
        raise ValueError(f"recent_outcomes[{index}]: outcome must be one of {list(OUTCOMES)}, got {outcome!r}")
    return str(outcome)


def circuit_breaker(
    recent_outcomes: Sequence[str | tuple[datetime, str]],
    reset_at: datetime | None = None,
    threshold: int = FAILURE_THRESHOLD,
) -> GuardDecision:
    """Disable a tenant's retraining after ``threshold`` consecutive failures (RET-5).

    Args:
        recent_outcomes: the outcomes of the tenant's finished retraining runs, each ``"succeeded"`` or
            ``"failed"`` (:data:`OUTCOMES`), in one of two forms (not mixed):

            * plain strings, **newest last**; or
            * ``(finished_at, outcome)`` tuples in any order (they are sorted by ``finished_at``,
              ties keeping the given order). Only this form can be filtered by ``reset_at``.

            Runs still in progress are not outcomes and must not be passed (the mutex guard covers them).
        reset_at: when an operator last reset the breaker; only runs with ``finished_at > reset_at``
            count, so the failures before a reset are forgiven. ``None``: no reset.
        threshold: consecutive failures that open the breaker (RET-5: 3), an integer ``>= 1``.

    Returns:
        ``guard="circuit_breaker"``: refused ("open") when the last ``threshold`` counted runs all
        failed, i.e. the trailing run of failures is ``>= threshold`` long; allowed ("closed")
        otherwise, including with fewer than ``threshold`` counted runs. A success ends a streak.
        ``detail``: ``consecutive_failures``, ``threshold``, ``runs_counted``, ``runs_given``,
        ``reset_at`` (ISO or ``None``), ``open`` (0/1).

    Raises:
        ValueError: an unknown outcome, a malformed element, strings mixed with tuples, ``reset_at``
            given with plain-string outcomes (they carry no time to filter by), aware/naive datetimes
            mixed, or ``threshold`` not an integer ``>= 1``.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise ValueError(f"threshold must be an integer >= 1, got {threshold!r}")
    if isinstance(recent_outcomes, str):
        raise ValueError("recent_outcomes must be a sequence of outcomes, not a single string")
    items = list(recent_outcomes)
    strings = [isinstance(item, str) for item in items]
    if any(strings) and not all(strings):
        raise ValueError("recent_outcomes mixes plain outcomes with (finished_at, outcome) tuples")
    outcomes: list[str]
    if items and all(strings):
        if reset_at is not None:
            raise ValueError(
                "reset_at needs (finished_at, outcome) tuples: plain outcomes carry no time to compare with it"
            )
        outcomes = [_check_outcome(item, i) for i, item in enumerate(items)]
    else:
        timed: list[tuple[datetime, str]] = []
        for i, item in enumerate(items):
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], datetime)):
                raise ValueError(f"recent_outcomes[{i}] must be a (finished_at, outcome) tuple, got {item!r}")
            timed.append((item[0], _check_outcome(item[1], i)))
        try:
            timed.sort(key=lambda run: run[0])
            if reset_at is not None:
                timed = [run for run in timed if run[0] > reset_at]
        except TypeError as exc:
            raise ValueError(f"circuit_breaker: cannot compare timezone-aware and naive datetimes ({exc})") from exc
        outcomes = [outcome for _, outcome in timed]

    streak = 0
    for outcome in reversed(outcomes):
        if outcome != "failed":
            break
        streak += 1
    is_open = streak >= threshold
    detail: dict[str, DetailValue] = {
        "consecutive_failures": streak,
        "threshold": threshold,
        "runs_counted": len(outcomes),
        "runs_given": len(items),
        "reset_at": None if reset_at is None else reset_at.isoformat(),
        "open": int(is_open),
    }
    since = "" if reset_at is None else f" since the reset at {_iso(reset_at)}"
    if is_open:
        return GuardDecision(
            "circuit_breaker",
            False,
            f"circuit_breaker: open: the last {streak} retraining runs{since} failed (>= {threshold} consecutive "
            "failures, RET-5); retraining stays disabled until an operator resets the breaker",
            detail,
        )
    return GuardDecision(
        "circuit_breaker",
        True,
        f"circuit_breaker: closed: {streak} consecutive failure(s){since} (< {threshold}, RET-5)",
        detail,
    )


# --------------------------------------------------------------------------------------------------
# Quota (RET-6)
# --------------------------------------------------------------------------------------------------


def quota(
    gpu_hours_this_month: float,
    cost_this_month: float,
    *,
    gpu_hours_limit: float = GPU_HOURS_LIMIT,
    budget_limit: float | None = None,
    next_run_gpu_hours: float = 0.0,
    next_run_cost: float = 0.0,
) -> GuardDecision:
    """Monthly GPU-hour quota and budget cap of a tenant (RET-6).

    Args:
        gpu_hours_this_month: GPU-hours the tenant's runs used in the current month (see :func:`gpu_hours`).
        cost_this_month: what the tenant's runs cost this month, in the currency unit of ``budget_limit``.
        gpu_hours_limit: GPU-hours allowed per month (RET-6: 100).
        budget_limit: monthly budget cap in the same currency unit, or ``None`` for no cap.
        next_run_gpu_hours: expected GPU-hours of the retraining asked for (0 when unknown).
        next_run_cost: expected cost of the retraining asked for, same unit as ``budget_limit`` (0 when unknown).

    Returns:
        ``guard="quota"``. A limit counts as *exceeded* when nothing of it is left or the next run would
        go beyond it: refused when ``used >= limit`` or ``used + next_run > limit``, for the GPU-hours
        and (when given) the budget. So a tenant at exactly 100.0 GPU-hours is refused (the quota is
        spent), while 90.0 used + a 10.0-hour run (= exactly the limit) is allowed. The GPU-hour check
        is reported first. ``detail``: ``gpu_hours_used``, ``gpu_hours_limit``, ``next_run_gpu_hours``,
        ``gpu_hours_remaining``, ``cost_used``, ``budget_limit``, ``next_run_cost``, ``budget_remaining``
        (``None`` without a cap), ``exceeded`` (``""``, ``"gpu_hours"`` or ``"budget"``).

    Raises:
        ValueError: any amount or limit negative, not finite or not a number.
    """
    used = _finite_non_negative(gpu_hours_this_month, "gpu_hours_this_month")
    cost = _finite_non_negative(cost_this_month, "cost_this_month")
    limit = _finite_non_negative(gpu_hours_limit, "gpu_hours_limit")
    budget = None if budget_limit is None else _finite_non_negative(budget_limit, "budget_limit")
    next_hours = _finite_non_negative(next_run_gpu_hours, "next_run_gpu_hours")
    next_cost = _finite_non_negative(next_run_cost, "next_run_cost")
    detail: dict[str, DetailValue] = {
        "gpu_hours_used": used,
        "gpu_hours_limit": limit,
        "next_run_gpu_hours": next_hours,
        "gpu_hours_remaining": max(0.0, limit - used),
        "cost_used": cost,
        "budget_limit": budget,
        "next_run_cost": next_cost,
        "budget_remaining": None if budget is None else max(0.0, budget - cost),
        "exceeded": "",
    }
    if used >= limit:
        detail["exceeded"] = "gpu_hours"
        return GuardDecision(
            "quota", False,
            f"quota: {used:.2f} GPU-hours used this month reached the limit of {limit:g} GPU-hours (RET-6)", detail,
        )
    if used + next_hours > limit:
        detail["exceeded"] = "gpu_hours"
        return GuardDecision(
            "quota", False,
            f"quota: {used:.2f} GPU-hours used + {next_hours:.2f} for the next run = {used + next_hours:.2f} would "
            f"exceed the limit of {limit:g} GPU-hours this month (RET-6)", detail,
        )
    if budget is not None and cost >= budget:
        detail["exceeded"] = "budget"
        return GuardDecision(
            "quota", False,
            f"quota: cost {cost:.2f} this month reached the budget cap of {budget:.2f} (RET-6)", detail,
        )
    if budget is not None and cost + next_cost > budget:
        detail["exceeded"] = "budget"
        return GuardDecision(
            "quota", False,
            f"quota: cost {cost:.2f} this month + {next_cost:.2f} for the next run = {cost + next_cost:.2f} would "
            f"exceed the budget cap of {budget:.2f} (RET-6)", detail,
        )
    budget_text = "" if budget is None else f", cost {cost:.2f} of {budget:.2f}"
    return GuardDecision(
        "quota", True,
        f"quota: {used:.2f} + {next_hours:.2f} of {limit:g} GPU-hours this month{budget_text} (RET-6)", detail,
    )


def gpu_hours(runs: Sequence[tuple[datetime, datetime, int]], month_start: datetime, month_end: datetime) -> float:
    """GPU-hours that ``runs`` spent within the month ``[month_start, month_end)`` (RET-6).

    Args:
        runs: ``(started_at, finished_at, gpu_count)`` per run; ``finished_at >= started_at`` and
            ``gpu_count`` an integer ``>= 0`` (0 for a CPU-only run). A run still going can be passed
            with ``finished_at = now``.
        month_start: first instant of the month (see :func:`month_bounds`).
        month_end: first instant of the next month, ``> month_start``.

    Returns:
        ``Σ overlap_hours · gpu_count`` where ``overlap = max(0, min(finished, month_end) -
        max(started, month_start))``, in GPU-hours; a run crossing a month boundary is split between
        the months.

    Raises:
        ValueError: ``month_end <= month_start``, a run ending before it starts, a ``gpu_count`` that
            is not an integer ``>= 0``, a malformed run, or aware/naive datetimes mixed.
    """
    if _difference(month_end, month_start, "gpu_hours").total_seconds() <= 0.0:
        raise ValueError(f"month_end ({month_end.isoformat()}) must be after month_start ({month_start.isoformat()})")
    total = 0.0
    for i, run in enumerate(runs):
        if not (isinstance(run, tuple | list) and len(run) == 3):
            raise ValueError(f"runs[{i}] must be a (started_at, finished_at, gpu_count) tuple, got {run!r}")
        started, finished, count = run
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"runs[{i}]: gpu_count must be an integer >= 0, got {count!r}")
        if _difference(finished, started, f"runs[{i}]").total_seconds() < 0.0:
            raise ValueError(
                f"runs[{i}]: finished_at {finished.isoformat()} is before started_at {started.isoformat()}"
            )
        try:
            lo = max(started, month_start)
            hi = min(finished, month_end)
        except TypeError as exc:
            raise ValueError(f"runs[{i}]: cannot compare timezone-aware and naive datetimes ({exc})") from exc
        overlap = (hi - lo).total_seconds()
        if overlap > 0.0:
            total += overlap / _SECONDS_PER_HOUR * count
    return total


def month_bounds(moment: datetime) -> tuple[datetime, datetime]:
    """``(first instant of moment's calendar month, first instant of the next month)``, same ``tzinfo``.

    The month is that of ``moment`` in its own timezone; pass a UTC datetime for UTC months (the
    quota of RET-6 is per calendar month).
    """
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


# --------------------------------------------------------------------------------------------------
# Mutex (RET-2, RET-3) and the combination
# --------------------------------------------------------------------------------------------------


def mutex(active_run_ids: Sequence[str]) -> GuardDecision:
    """At most one retraining per tenant at a time (RET-2; this also rules out a second run for the same
    trigger, RET-3).

    Args:
        active_run_ids: ids of the tenant's retraining runs that are queued or in progress.

    Returns:
        ``guard="mutex"``: refused when any run is active; ``detail``: ``active_runs`` (count) and
        ``active_run_ids`` (comma-separated).
    """
    if isinstance(active_run_ids, str):
        raise ValueError("active_run_ids must be a sequence of run ids, not a single string")
    ids = [str(run_id) for run_id in active_run_ids]
    detail: dict[str, DetailValue] = {"active_runs": len(ids), "active_run_ids": ",".join(ids)}
    if ids:
        return GuardDecision(
            "mutex", False,
            f"mutex: {len(ids)} retraining run(s) already active for the tenant ({', '.join(ids)}); at most one at a "
            "time (RET-2, RET-3)", detail,
        )
    return GuardDecision("mutex", True, "mutex: no retraining run active for the tenant (RET-2)", detail)


def evaluate_guards(decisions: Sequence[GuardDecision]) -> GuardDecision:
    """Combine guard decisions: the first refusal, or one allowed decision.

    Args:
        decisions: the decisions of the guards, in the order they should be reported.

    Returns:
        The first refused decision in the order given (unchanged), or ``GuardDecision(guard="all",
        allowed=True, reason="all guards passed (drift, cooldown, ...)", detail={"guards": "drift,...",
        "n_guards": k})``.

    Raises:
        ValueError: ``decisions`` is empty (no guard checked is a bug, not a permission).
    """
    items = list(decisions)
    if not items:
        raise ValueError("evaluate_guards needs at least one decision; an empty list would allow anything")
    for decision in items:
        if not decision.allowed:
            return decision
    names = [decision.guard for decision in items]
    return GuardDecision(
        "all", True, f"all guards passed ({', '.join(names)})", {"guards": ",".join(names), "n_guards": len(names)}
    )
