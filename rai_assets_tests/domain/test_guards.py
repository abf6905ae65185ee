"""Tests for rai_assets.domain.guards — retraining guards (RET-1..6, DRIFT-2).

Every refusal must carry a human-readable reason; the tests check the numbers in it as well as the
allow/refuse outcome, at the boundaries named by the requirements (exactly 7 days, exactly 3
failures, exactly at the quota).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rai_assets.domain.drift import DriftThresholds, assess_drift
from rai_assets.domain.guards import (
    GuardDecision,
    circuit_breaker,
    cooldown,
    drift_actionable,
    evaluate_guards,
    gpu_hours,
    month_bounds,
    mutex,
    quota,
)

SEED = 20261118
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def _json_roundtrip(decision: GuardDecision) -> dict[str, Any]:
    """The decision must serialise as strict JSON (run tags, metadata, ledger rows)."""
    result: dict[str, Any] = json.loads(json.dumps(decision.to_dict(), allow_nan=False))
    return result


# --------------------------------------------------------------------------------------------------
# Drift (RET-1, DRIFT-2)
# --------------------------------------------------------------------------------------------------


def _frames(n_cur: int, shift: float, n_ref: int = 3000, seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame({c: rng.standard_normal(n_ref) for c in ("rain", "temp")})
    current = pd.DataFrame({"rain": rng.standard_normal(n_cur) + shift, "temp": rng.standard_normal(n_cur)})
    return reference, current


def _report_body(n_cur: int, shift: float, thresholds: DriftThresholds | None = None, **mae: float) -> dict[str, Any]:
    """A drift report body as the drift_report asset builds it, after a JSON round trip (it is signed JSON)."""
    reference, current = _frames(n_cur, shift)
    assessment = assess_drift(reference, current, ["rain", "temp"], [], thresholds or DriftThresholds(), **mae)
    body = {
        "kind": "drift_report",
        "verdict": assessment.verdict,
        "reasons": list(assessment.reasons),
        "assessment": assessment.to_dict(),
    }
    loaded: dict[str, Any] = json.loads(json.dumps(body, allow_nan=False))
    return loaded


def test_drift_big_shift_with_large_sample_is_actionable() -> None:
    # REQ: RET-1, DRIFT-2 — a 1 σ shift of one feature with n = 1500 >= 1000: PSI ≈ 0.96 >= 0.25 and the
    # BH-adjusted KS p-value is ~1e-136 < 0.05.
    body = _report_body(1500, 1.0)
    assert body["verdict"] == "drift"
    decision = drift_actionable(body, DriftThresholds())
    assert decision.guard == "drift"
    assert decision.allowed
    assert decision.detail["actionable_features"] == "rain"
    assert decision.detail["n_actionable_features"] == 1
    assert decision.detail["n_current"] == 1500
    assert "rain PSI" in decision.reason and "RET-1" in decision.reason
    _json_roundtrip(decision)


def test_drift_same_shift_below_min_sample_is_actionable_by_the_exact_test() -> None:
    # REQ: DRIFT-2, DRIFT-6 — the same shift on 500 < 1000 current rows: the exact KS test is valid at
    # that n and decides; PSI is not required below min_sample.
    body = _report_body(500, 1.0)
    assert body["verdict"] == "drift"
    assert body["assessment"]["sample_regime"] == "small_sample"
    assert body["assessment"]["features"][0]["test"] == "ks_2samp_exact"
    decision = drift_actionable(body, DriftThresholds())
    assert decision.allowed
    assert decision.detail["actionable_features"] == "rain"
    assert "500 current rows (< 1000)" in decision.reason and "small-sample test" in decision.reason


def test_drift_small_report_with_only_asymptotic_tests_is_refused() -> None:
    # REQ: DRIFT-2 — below the tenant's minimum an asymptotic test does not count (an old-style report).
    body = _report_body(500, 1.0)
    for feature in body["assessment"]["features"]:
        feature["test"] = "ks_2samp"
    decision = drift_actionable(body, DriftThresholds())
    assert not decision.allowed
    assert decision.reason.startswith("drift: insufficient sample: 500 current rows < the tenant's minimum 1000")
    assert "DRIFT-2" in decision.reason


def test_drift_degraded_mae_is_actionable_even_when_features_are_insufficient() -> None:
    # REQ: DRIFT-4, DRIFT-6 — a flagged MAE degradation is never hidden behind insufficient_sample.
    body = {
        "verdict": "insufficient_sample",
        "reasons": ["insufficient sample: 2 current rows"],
        "assessment": {"n_current": 2, "min_sample": 1000, "max_psi": 0.0, "features": [],
                       "performance": {"mae_current": 150.0, "mae_validation": 100.0, "degraded": True}},
    }
    decision = drift_actionable(body, DriftThresholds())
    assert decision.allowed and decision.detail["performance_degraded"] is True
    assert "MAE degraded" in decision.reason
    body["assessment"]["performance"]["mae_current"] = 110.0  # within +20 %: refused again
    assert not drift_actionable(body, DriftThresholds()).allowed


def test_drift_no_shift_is_refused() -> None:
    # REQ: RET-1 — no shift, n = 1500: verdict no_drift, nothing to act on.
    body = _report_body(1500, 0.0)
    assert body["verdict"] == "no_drift"
    decision = drift_actionable(body, DriftThresholds())
    assert not decision.allowed
    assert "'no_drift' is not actionable" in decision.reason
    assert decision.detail["report_verdict"] == "no_drift"


def test_drift_warning_is_refused() -> None:
    # REQ: RET-1 — a 0.2 σ shift: significant KS but PSI ≈ 0.04 < 0.10: "warning", not actionable.
    body = _report_body(1500, 0.2)
    assert body["verdict"] == "warning"
    decision = drift_actionable(body, DriftThresholds())
    assert not decision.allowed
    assert "'warning' is not actionable" in decision.reason


def test_drift_performance_degradation_alone_is_actionable() -> None:
    # REQ: RET-1, DRIFT-4 — no feature shift, but MAE 130 > 1.2 · 100.
    body = _report_body(1500, 0.0, mae_current=130.0, mae_validation=100.0)
    assert body["verdict"] == "drift"
    decision = drift_actionable(body, DriftThresholds())
    assert decision.allowed
    assert decision.detail["performance_degraded"] is True
    assert decision.detail["n_actionable_features"] == 0
    assert "MAE degraded" in decision.reason


def test_drift_is_rechecked_against_the_tenants_current_thresholds() -> None:
    # REQ: DRIFT-2 — min_sample is configurable per tenant; a report made under the default is re-checked.
    body = _report_body(1500, 1.0)
    stricter_sample = drift_actionable(body, DriftThresholds(min_sample=5000))
    assert not stricter_sample.allowed
    assert "insufficient sample: 1500 current rows < the tenant's minimum 5000" in stricter_sample.reason
    stricter_psi = drift_actionable(body, DriftThresholds(psi_warning=0.1, psi_actionable=2.0))
    assert not stricter_psi.allowed
    assert "no feature has PSI >= 2" in stricter_psi.reason
    # The significance is re-evaluated at the tenant's alpha, from the adjusted p-value.
    body["assessment"]["features"][0]["p_value_adjusted"] = 0.03
    assert drift_actionable(body, DriftThresholds(alpha=0.05)).allowed
    assert not drift_actionable(body, DriftThresholds(alpha=0.01)).allowed


def test_drift_no_reference_and_unreadable_reports_are_refused() -> None:
    # REQ: RET-1 — the guard fails closed, with a reason.
    no_reference = {"verdict": "no_reference", "reasons": ["the tenant has no champion: there is no reference"]}
    decision = drift_actionable(no_reference, DriftThresholds())
    assert not decision.allowed
    assert "no reference" in decision.reason and "no champion" in decision.reason
    unknown = drift_actionable({"verdict": "maybe"}, DriftThresholds())
    assert not unknown.allowed and "unknown report verdict 'maybe'" in unknown.reason
    missing = drift_actionable({}, DriftThresholds())
    assert not missing.allowed and "unknown report verdict None" in missing.reason
    no_assessment = drift_actionable({"verdict": "drift"}, DriftThresholds())
    assert not no_assessment.allowed and "no assessment" in no_assessment.reason
    with pytest.raises(TypeError, match="report_body must be a mapping"):
        drift_actionable(["drift"], DriftThresholds())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="DriftThresholds"):
        drift_actionable({"verdict": "drift"}, {"min_sample": 1})  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Cooldown (RET-4)
# --------------------------------------------------------------------------------------------------


def test_cooldown_refuses_within_seven_days_of_a_rollback() -> None:
    # REQ: RET-4 — rollback 2026-11-18T10:00Z, now 2026-11-21T10:00Z: 3.0 days < 7.
    decision = cooldown(datetime(2026, 11, 18, 10, 0, tzinfo=UTC), NOW)
    assert decision.guard == "cooldown"
    assert not decision.allowed
    assert decision.reason.startswith("cooldown: last rollback 2026-11-18T10:00Z is 3.0 days ago (< 7 days, RET-4)")
    assert "resumes at 2026-11-25T10:00Z" in decision.reason
    assert decision.detail["elapsed_days"] == pytest.approx(3.0)
    assert decision.detail["remaining_days"] == pytest.approx(4.0)
    assert decision.detail["active"] == 1
    _json_roundtrip(decision)


def test_cooldown_boundary_exactly_seven_days_is_allowed() -> None:
    # REQ: RET-4 — "within 7 days": exactly 7 days later it is over.
    rollback = NOW - timedelta(days=7)
    decision = cooldown(rollback, NOW)
    assert decision.allowed
    assert "7.0 days ago (>= 7 days, RET-4)" in decision.reason
    assert decision.detail["active"] == 0
    assert decision.detail["remaining_days"] == 0.0
    one_second_short = cooldown(rollback + timedelta(seconds=1), NOW)
    assert not one_second_short.allowed
    assert "7.0 days ago (<" not in one_second_short.reason  # shown with enough digits not to contradict itself
    assert "6.9999 days ago (< 7 days" in one_second_short.reason


def test_cooldown_without_rollback_future_rollback_and_custom_length() -> None:
    # REQ: RET-4
    assert cooldown(None, NOW).allowed
    assert cooldown(None, NOW).detail["active"] == 0
    future = cooldown(NOW + timedelta(days=1), NOW)
    assert not future.allowed and "after now" in future.reason
    assert cooldown(NOW - timedelta(days=2), NOW, days=1.5).allowed
    assert not cooldown(NOW - timedelta(days=1), NOW, days=1.5).allowed
    naive = datetime(2026, 11, 18, 10, 0)
    assert not cooldown(naive, datetime(2026, 11, 19, 10, 0)).allowed  # naive with naive is fine
    with pytest.raises(ValueError, match="timezone-aware and naive"):
        cooldown(naive, NOW)
    with pytest.raises(ValueError, match="days"):
        cooldown(None, NOW, days=-1.0)
    with pytest.raises(ValueError, match="days"):
        cooldown(None, NOW, days=float("nan"))


# --------------------------------------------------------------------------------------------------
# Circuit breaker (RET-5)
# --------------------------------------------------------------------------------------------------


def test_circuit_breaker_opens_at_exactly_three_consecutive_failures() -> None:
    # REQ: RET-5
    assert circuit_breaker([]).allowed
    two = circuit_breaker(["succeeded", "failed", "failed"])
    assert two.allowed
    assert two.detail["consecutive_failures"] == 2
    three = circuit_breaker(["succeeded", "failed", "failed", "failed"])
    assert not three.allowed
    assert three.guard == "circuit_breaker"
    assert "the last 3 retraining runs failed (>= 3 consecutive failures, RET-5)" in three.reason
    assert three.detail["open"] == 1
    _json_roundtrip(three)


def test_circuit_breaker_a_success_ends_the_streak() -> None:
    # REQ: RET-5 — failures must be consecutive, newest last.
    assert circuit_breaker(["failed", "failed", "failed", "succeeded"]).allowed
    assert circuit_breaker(["failed", "failed", "succeeded", "failed", "failed"]).allowed
    assert not circuit_breaker(["failed"] * 5).allowed
    assert circuit_breaker(["failed"] * 5).detail["consecutive_failures"] == 5


def test_circuit_breaker_reset_forgives_earlier_failures() -> None:
    # REQ: RET-5 — an operator's reset closes the breaker; only runs finished after it count.
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    runs = [(t0 + timedelta(days=i), "failed") for i in range(3)]
    assert not circuit_breaker(runs).allowed
    reset = t0 + timedelta(days=2, hours=12)
    after_reset = circuit_breaker(runs, reset_at=reset)
    assert after_reset.allowed
    assert after_reset.detail["runs_counted"] == 0
    assert after_reset.detail["runs_given"] == 3
    more = [*runs, (t0 + timedelta(days=3), "failed"), (t0 + timedelta(days=4), "failed")]
    assert circuit_breaker(more, reset_at=reset).allowed  # 2 failures since the reset
    again = circuit_breaker([*more, (t0 + timedelta(days=5), "failed")], reset_at=reset)
    assert not again.allowed
    assert "since the reset at 2026-11-03T12:00Z" in again.reason
    # A run finished exactly at the reset instant was before it (only finished_at > reset_at counts).
    assert circuit_breaker(runs, reset_at=t0 + timedelta(days=2)).allowed


def test_circuit_breaker_sorts_timed_outcomes() -> None:
    # REQ: RET-5 — tuples may come in any order; newest is by finished_at.
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    shuffled = [(t0 + timedelta(days=3), "succeeded"), (t0, "failed"), (t0 + timedelta(days=1), "failed"),
                (t0 + timedelta(days=2), "failed")]
    assert circuit_breaker(shuffled).allowed  # the newest run succeeded
    shuffled[0] = (t0 - timedelta(days=1), "succeeded")
    assert not circuit_breaker(shuffled).allowed


def test_circuit_breaker_threshold_and_invalid_input() -> None:
    # REQ: RET-5
    assert not circuit_breaker(["failed"], threshold=1).allowed
    assert circuit_breaker(["failed", "failed"], threshold=4).allowed
    with pytest.raises(ValueError, match="threshold"):
        circuit_breaker([], threshold=0)
    with pytest.raises(ValueError, match="outcome must be one of"):
        circuit_breaker(["succeeded", "crashed"])
    with pytest.raises(ValueError, match="reset_at needs"):
        circuit_breaker(["failed"], reset_at=NOW)
    with pytest.raises(ValueError, match="mixes"):
        circuit_breaker(["failed", (NOW, "failed")])
    with pytest.raises(ValueError, match="single string"):
        circuit_breaker("failed")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["succeeded", "failed"]), max_size=12), st.integers(min_value=1, max_value=5))
def test_circuit_breaker_open_iff_last_threshold_runs_failed(outcomes: list[str], threshold: int) -> None:
    # REQ: RET-5 — property: open exactly when the newest `threshold` outcomes are all failures.
    expected_open = len(outcomes) >= threshold and all(o == "failed" for o in outcomes[-threshold:])
    assert circuit_breaker(outcomes, threshold=threshold).allowed is not expected_open


# --------------------------------------------------------------------------------------------------
# Quota (RET-6)
# --------------------------------------------------------------------------------------------------


def test_quota_gpu_hours_boundaries() -> None:
    # REQ: RET-6 — 100 GPU-hours per tenant per month.
    assert quota(0.0, 0.0).allowed
    assert quota(99.9, 0.0).allowed
    at_limit = quota(100.0, 0.0)
    assert not at_limit.allowed
    assert at_limit.guard == "quota"
    assert "100.00 GPU-hours used this month reached the limit of 100 GPU-hours (RET-6)" in at_limit.reason
    assert at_limit.detail["exceeded"] == "gpu_hours"
    assert at_limit.detail["gpu_hours_remaining"] == 0.0
    assert not quota(130.0, 0.0).allowed
    # The next run fitting exactly into the quota is allowed; going beyond it is not.
    assert quota(90.0, 0.0, next_run_gpu_hours=10.0).allowed
    over = quota(90.0, 0.0, next_run_gpu_hours=10.5)
    assert not over.allowed
    assert "= 100.50 would exceed the limit of 100 GPU-hours" in over.reason
    assert quota(40.0, 0.0, gpu_hours_limit=50.0).allowed
    assert not quota(50.0, 0.0, gpu_hours_limit=50.0).allowed
    _json_roundtrip(over)


def test_quota_budget_cap() -> None:
    # REQ: RET-6 — monthly budget cap, checked after the GPU-hours.
    assert quota(10.0, 10_000.0).allowed  # no cap given
    assert quota(10.0, 499.99, budget_limit=500.0).allowed
    capped = quota(10.0, 500.0, budget_limit=500.0)
    assert not capped.allowed
    assert capped.detail["exceeded"] == "budget"
    assert "cost 500.00 this month reached the budget cap of 500.00 (RET-6)" in capped.reason
    assert not quota(10.0, 450.0, budget_limit=500.0, next_run_cost=60.0).allowed
    assert quota(10.0, 450.0, budget_limit=500.0, next_run_cost=50.0).allowed
    both = quota(120.0, 900.0, budget_limit=500.0)
    assert not both.allowed and both.detail["exceeded"] == "gpu_hours"  # GPU-hours reported first
    assert quota(10.0, 0.0, budget_limit=500.0).detail["budget_remaining"] == 500.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"gpu_hours_this_month": -1.0},
        {"gpu_hours_this_month": float("nan")},
        {"cost_this_month": float("inf")},
        {"gpu_hours_limit": -5.0},
        {"budget_limit": -1.0},
        {"next_run_gpu_hours": -0.5},
    ],
)
def test_quota_rejects_invalid_amounts(kwargs: dict[str, float]) -> None:
    # REQ: RET-6
    args: dict[str, Any] = {"gpu_hours_this_month": 1.0, "cost_this_month": 1.0, **kwargs}
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        quota(args.pop("gpu_hours_this_month"), args.pop("cost_this_month"), **args)


def test_gpu_hours_month_overlap_arithmetic() -> None:
    # REQ: RET-6 — GPU-hours within November 2026 (UTC).
    start, end = month_bounds(datetime(2026, 11, 17, 15, 30, tzinfo=UTC))
    assert start == datetime(2026, 11, 1, tzinfo=UTC) and end == datetime(2026, 12, 1, tzinfo=UTC)

    def at(month: int, day: int, hour: int) -> datetime:
        return datetime(2026, month, day, hour, tzinfo=UTC)

    inside = (at(11, 10, 8), at(11, 10, 10), 2)  # 2 h × 2 GPUs = 4
    crossing_start = (at(10, 31, 22), at(11, 1, 3), 1)  # 3 h of it in November (22:00-24:00 in October)
    crossing_end = (at(11, 30, 20), at(12, 1, 2), 4)  # 4 h × 4 GPUs = 16 in November
    spanning = (at(10, 30, 0), at(12, 2, 0), 1)  # the whole of November: 30 days × 24 h = 720
    before = (at(10, 1, 0), at(10, 2, 0), 8)  # 0
    cpu_only = (at(11, 5, 0), at(11, 6, 0), 0)  # 0
    assert gpu_hours([inside], start, end) == pytest.approx(4.0)
    assert gpu_hours([crossing_start], start, end) == pytest.approx(3.0)
    assert gpu_hours([crossing_end], start, end) == pytest.approx(16.0)
    assert gpu_hours([spanning], start, end) == pytest.approx(720.0)
    assert gpu_hours([before, cpu_only], start, end) == 0.0
    assert gpu_hours([], start, end) == 0.0
    runs = [inside, crossing_start, crossing_end, spanning, before, cpu_only]
    assert gpu_hours(runs, start, end) == pytest.approx(4.0 + 3.0 + 16.0 + 720.0)
    # The October part of the run crossing the start, and December's part of the one crossing the end.
    oct_start, oct_end = month_bounds(at(10, 15, 0))
    assert gpu_hours([crossing_start], oct_start, oct_end) == pytest.approx(2.0)
    dec_start, dec_end = month_bounds(at(12, 31, 23))
    assert (dec_start, dec_end) == (at(12, 1, 0), datetime(2027, 1, 1, tzinfo=UTC))
    assert gpu_hours([crossing_end], dec_start, dec_end) == pytest.approx(8.0)


def test_gpu_hours_invalid_input() -> None:
    # REQ: RET-6
    start, end = month_bounds(NOW)
    with pytest.raises(ValueError, match="month_end"):
        gpu_hours([], end, start)
    with pytest.raises(ValueError, match=r"runs\[0\]: finished_at"):
        gpu_hours([(NOW, NOW - timedelta(hours=1), 1)], start, end)
    with pytest.raises(ValueError, match="gpu_count"):
        gpu_hours([(NOW, NOW, -1)], start, end)
    with pytest.raises(ValueError, match="gpu_count"):
        gpu_hours([(NOW, NOW, 1.5)], start, end)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="timezone-aware and naive"):
        gpu_hours([(datetime(2026, 11, 2), datetime(2026, 11, 3), 1)], start, end)


@settings(max_examples=100, deadline=None)
@given(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31)),
    st.integers(min_value=0, max_value=24 * 80),
    st.integers(min_value=0, max_value=8),
)
def test_gpu_hours_months_partition_a_run(started: datetime, minutes_x30: int, gpus: int) -> None:
    # REQ: RET-6 — property: summed over consecutive months, a run's GPU-hours are duration × GPUs.
    started = started.replace(tzinfo=UTC)
    finished = started + timedelta(minutes=30 * minutes_x30)
    run = (started, finished, gpus)
    total = 0.0
    month_start, month_end = month_bounds(started)
    while True:
        total += gpu_hours([run], month_start, month_end)
        if month_end >= finished:
            break
        month_start, month_end = month_bounds(month_end)
    assert total == pytest.approx((finished - started).total_seconds() / 3600.0 * gpus, abs=1e-9)


# --------------------------------------------------------------------------------------------------
# Mutex (RET-2, RET-3) and the combination
# --------------------------------------------------------------------------------------------------


def test_mutex() -> None:
    # REQ: RET-2, RET-3 — one retraining per tenant at a time.
    assert mutex([]).allowed
    busy = mutex(["run-7"])
    assert not busy.allowed
    assert busy.guard == "mutex"
    assert "1 retraining run(s) already active for the tenant (run-7)" in busy.reason
    assert busy.detail == {"active_runs": 1, "active_run_ids": "run-7"}
    with pytest.raises(ValueError, match="single string"):
        mutex("run-7")


def test_evaluate_guards_returns_the_first_refusal_in_order() -> None:
    # REQ: RET-1..6 — the sensor reports the first guard that blocks the retraining.
    drift_ok = GuardDecision("drift", True, "drift: actionable", {})
    cooling = cooldown(NOW - timedelta(days=3), NOW)
    broken = circuit_breaker(["failed"] * 3)
    spent = quota(100.0, 0.0)
    assert evaluate_guards([drift_ok, cooling, broken, spent]) is cooling
    assert evaluate_guards([drift_ok, broken, cooling]) is broken
    passed = evaluate_guards([drift_ok, cooldown(None, NOW), circuit_breaker([]), quota(1.0, 0.0), mutex([])])
    assert passed.allowed
    assert passed.guard == "all"
    assert passed.reason == "all guards passed (drift, cooldown, circuit_breaker, quota, mutex)"
    assert passed.detail == {"guards": "drift,cooldown,circuit_breaker,quota,mutex", "n_guards": 5}
    with pytest.raises(ValueError, match="at least one"):
        evaluate_guards([])


def test_every_decision_is_json_serialisable_and_refusals_have_reasons() -> None:
    # REQ: RET-1..6 — each refusal carries a human-readable reason; detail is JSON.
    refusals = [
        drift_actionable(_report_body(500, 0.0), DriftThresholds()),
        cooldown(NOW - timedelta(hours=1), NOW),
        circuit_breaker(["failed"] * 3),
        quota(101.0, 0.0),
        quota(1.0, 10.0, budget_limit=5.0),
        mutex(["a", "b"]),
    ]
    for decision in refusals:
        assert not decision.allowed
        assert decision.reason.startswith(f"{decision.guard}: ")
        loaded = _json_roundtrip(decision)
        assert loaded["allowed"] is False and loaded["reason"] == decision.reason
