"""Tests for rai_assets.domain.drift — feature and performance drift (DRIFT-1, DRIFT-2, DRIFT-4).

Expected numbers are derived by hand in the comments next to the assertions (PSI = Σ (c - r)·ln(c/r),
KL = Σ c·ln(c/r), shares floored at epsilon = 1e-4).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from rai_assets.domain import drift
from rai_assets.domain.drift import (
    DriftAssessment,
    DriftThresholds,
    assess_drift,
    chi2_test,
    drift_table_markdown,
    ks_test,
    psi_categorical,
    psi_numeric,
)

SEED = 20240601


def _frames(
    n_ref: int, n_cur: int, shift: float = 0.0, seed: int = SEED, cols: tuple[str, ...] = ("rain", "temp")
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame({c: rng.standard_normal(n_ref) for c in cols})
    current = pd.DataFrame({c: rng.standard_normal(n_cur) + shift for c in cols})
    return reference, current


# --------------------------------------------------------------------------------------------------
# PSI / KL (DRIFT-1)
# --------------------------------------------------------------------------------------------------


def test_psi_numeric_hand_computed_two_bins() -> None:
    # REQ: DRIFT-1 — PSI/KL formula on reference-quantile bins.
    # reference 1..10, bins=2: the single edge is the reference median 5.5 (np.quantile linear).
    # reference shares: (-inf, 5.5] -> 5/10, (5.5, inf) -> 5/10 = [0.5, 0.5]
    # current (1..8, 2, 3): <= 5.5 -> {1,2,3,4,5,2,3} = 7, > 5.5 -> {6,7,8} = 3 -> [0.7, 0.3]
    # PSI = (0.7-0.5)·ln(0.7/0.5) + (0.3-0.5)·ln(0.3/0.5) = 0.2·0.336472 + 0.2·0.510826 = 0.169460
    # KL  = 0.7·ln(1.4) + 0.3·ln(0.6) = 0.235531 - 0.153248 = 0.082283
    reference = np.arange(1.0, 11.0)
    current = np.array([1, 2, 3, 4, 5, 6, 7, 8, 2, 3], dtype=float)
    psi, kl = psi_numeric(reference, current, bins=2)
    assert psi == pytest.approx(0.2 * math.log(1.4) - 0.2 * math.log(0.6), rel=1e-12)
    assert psi == pytest.approx(0.1694596, rel=1e-6)
    assert kl == pytest.approx(0.7 * math.log(1.4) + 0.3 * math.log(0.6), rel=1e-12)
    assert kl == pytest.approx(0.0822829, rel=1e-5)


def test_psi_numeric_empty_bins_use_epsilon_floor() -> None:
    # REQ: DRIFT-1 — epsilon replaces empty-bin zero shares so the log stays finite.
    # reference 1..100: decile edges 10.9, 20.8, ..., 90.1 -> 10 reference values per bin (r_i = 0.1).
    # current: every value in the first bin -> c = [1, 0 x 9] -> floored [1, 1e-4 x 9].
    # PSI = (1 - 0.1)·ln(1/0.1) + 9·(1e-4 - 0.1)·ln(1e-4/0.1)
    #     = 0.9·2.302585 + 9·0.0999·6.907755 = 2.072327 + 6.210762 = 8.283089
    # KL  = 1·ln(10) + 9·1e-4·ln(1e-3) = 2.302585 - 0.006217 = 2.296368
    reference = np.arange(1.0, 101.0)
    current = np.tile(np.arange(1.0, 11.0), 5)
    psi, kl = psi_numeric(reference, current)
    assert math.isfinite(psi) and math.isfinite(kl)
    assert psi == pytest.approx(0.9 * math.log(10) + 9 * 0.0999 * math.log(1000), rel=1e-12)
    assert psi == pytest.approx(8.283089, rel=1e-6)
    assert kl == pytest.approx(math.log(10) + 9 * 1e-4 * math.log(1e-3), rel=1e-12)
    # current entirely outside the reference range: still finite
    psi_far, kl_far = psi_numeric(reference, np.full(50, 1e6))
    assert math.isfinite(psi_far) and math.isfinite(kl_far) and psi_far > 5


def test_psi_numeric_zero_inflated_collapses_tied_edges() -> None:
    # REQ: DRIFT-1 — zero-inflated input (many tied quantiles) works; ties collapse with np.unique.
    # reference: 800 zeros + 1..200. Deciles at virtual index 999·q: q <= 0.7 -> 0; q = 0.8 -> lerp of
    # idx 799 (0) and 800 (1) at 0.2 -> 0.2; q = 0.9 -> idx 899 (100), 900 (101) at 0.1 -> 100.1.
    # Unique edges [0, 0.2, 100.1]: bins (-inf,0] (0,0.2] (0.2,100.1] (100.1,inf)
    # reference counts 800, 0, 100, 100 -> r = [0.8, 1e-4 (floored), 0.1, 0.1]
    # current: 500 zeros, 250 values in 1..100, 250 values 150 -> c = [0.5, 1e-4, 0.25, 0.25]
    # PSI = (0.5-0.8)·ln(0.5/0.8) + 0 + 2·(0.25-0.1)·ln(2.5) = 0.141001 + 0.274887 = 0.415888
    reference = np.concatenate([np.zeros(800), np.arange(1.0, 201.0)])
    np.testing.assert_allclose(drift._quantile_edges(np.sort(reference), 10), [0.0, 0.2, 100.1], rtol=1e-12)
    current = np.concatenate([np.zeros(500), np.arange(250) % 100 + 1.0, np.full(250, 150.0)])
    psi, _ = psi_numeric(reference, current)
    assert psi == pytest.approx(-0.3 * math.log(0.625) + 0.3 * math.log(2.5), rel=1e-12)
    assert psi == pytest.approx(0.4158883, rel=1e-6)
    assert psi_numeric(reference, reference) == (0.0, 0.0)
    # a constant column has no edge left but the single value: still well defined
    assert psi_numeric(np.zeros(100), np.zeros(50)) == (0.0, 0.0)


def test_psi_numeric_edges_match_numpy_quantile() -> None:
    # REQ: DRIFT-1 — bin edges are np.quantile(reference, [0.1..0.9]) (read by index from the sort).
    rng = np.random.default_rng(SEED)
    for n in (1, 2, 3, 11, 1000, 1001):
        values = np.sort(rng.standard_normal(n))
        expected = np.unique(np.quantile(values, np.arange(1, 10) / 10))
        assert np.array_equal(drift._quantile_edges(values, 10), expected)


def test_psi_numeric_drops_nan_and_rejects_bad_input() -> None:
    # REQ: DRIFT-1 — NaN dropped before computing; invalid input raises.
    reference = np.arange(1.0, 11.0)
    current = np.array([1, 2, 3, 4, 5, 6, 7, 8, 2, 3], dtype=float)
    with_nan = np.concatenate([current, [np.nan, np.nan]])
    assert psi_numeric(np.append(reference, np.nan), with_nan, bins=2) == psi_numeric(
        reference, current, bins=2
    )
    with pytest.raises(ValueError, match="no non-missing"):
        psi_numeric(reference, np.array([np.nan, np.nan]))
    with pytest.raises(ValueError, match="inf"):
        psi_numeric(reference, np.array([1.0, np.inf]))
    with pytest.raises(ValueError, match="bins"):
        psi_numeric(reference, current, bins=1)
    with pytest.raises(ValueError, match="epsilon"):
        psi_numeric(reference, current, epsilon=0.0)


@settings(max_examples=60, deadline=None, database=None)
@given(
    reference=st.lists(st.floats(-1e9, 1e9, allow_nan=False), min_size=1, max_size=200),
    current=st.lists(st.floats(-1e9, 1e9, allow_nan=False), min_size=1, max_size=200),
)
def test_psi_property_nonnegative_and_zero_for_identical(
    reference: list[float], current: list[float]
) -> None:
    # REQ: DRIFT-1 — property: PSI >= 0 always, PSI == 0 (and KL == 0) for identical inputs.
    psi, _ = psi_numeric(np.array(reference), np.array(current))
    assert psi >= 0.0
    assert psi_numeric(np.array(reference), np.array(reference)) == (0.0, 0.0)
    psi_c, _ = psi_categorical([str(round(x)) for x in reference], [str(round(x)) for x in current])
    assert psi_c >= 0.0


def test_psi_and_chi2_categorical_known_shift() -> None:
    # REQ: DRIFT-1 — categorical PSI over the union of categories, chi-squared on the 2 x k table.
    # reference: a x50, b x50; current: a x70, b x20, c x10 (c unseen in the reference)
    # r = [0.5, 0.5, 1e-4 (floored)], c = [0.7, 0.2, 0.1]
    # PSI = 0.2·ln(1.4) + (-0.3)·ln(0.4) + (0.1-1e-4)·ln(1000) = 0.067294 + 0.274887 + 0.690085 = 1.032266
    reference = ["a"] * 50 + ["b"] * 50
    current = ["a"] * 70 + ["b"] * 20 + ["c"] * 10 + [None]  # None is dropped
    psi, kl = psi_categorical(reference, current)
    assert psi == pytest.approx(
        0.2 * math.log(1.4) - 0.3 * math.log(0.4) + 0.0999 * math.log(1000), rel=1e-12
    )
    assert psi == pytest.approx(1.032266, rel=1e-6)
    assert kl == pytest.approx(0.7 * math.log(1.4) + 0.2 * math.log(0.4) + 0.1 * math.log(1000), rel=1e-12)
    # chi2: column totals 120, 70, 10, row totals 100/100 -> expected 60, 35, 5 in both rows
    # chi2 = 2·(10²/60 + 15²/35 + 5²/5) = 3.333333 + 12.857143 + 10 = 26.190476, dof 2 -> p = exp(-chi2/2)
    #      = exp(-13.095238) = 2.05499e-6
    statistic, p_value = chi2_test(reference, current)
    assert statistic == pytest.approx(2 * (100 / 60 + 225 / 35 + 25 / 5), rel=1e-12)
    assert p_value == pytest.approx(math.exp(-statistic / 2), rel=1e-9)
    assert p_value == pytest.approx(2.05499e-6, rel=1e-5)
    expected = stats.chi2_contingency(np.array([[50, 50, 0], [70, 20, 10]]))
    assert (statistic, p_value) == pytest.approx((expected.statistic, expected.pvalue), rel=1e-12)
    # identical distributions: PSI 0, chi2 0, p 1
    assert psi_categorical(reference, reference) == (0.0, 0.0)
    assert chi2_test(reference, reference) == pytest.approx((0.0, 1.0))
    # a single category: no degree of freedom
    assert chi2_test(["x"] * 5, ["x"] * 7) == (0.0, 1.0)


# --------------------------------------------------------------------------------------------------
# KS test (DRIFT-1)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_ref", "n_cur", "kind"),
    [
        (1, 2, "normal"),
        (5, 3, "normal"),
        (200, 150, "normal"),
        (3000, 1700, "normal"),  # > 4 blocks: exercises the pruned search of _max_scaled_gap
        (2500, 2500, "ties"),
        (4000, 900, "zero_inflated"),
        (1000, 1000, "identical"),
    ],
)
def test_ks_test_agrees_with_scipy(n_ref: int, n_cur: int, kind: str) -> None:
    # REQ: DRIFT-1 — KS statistic and p-value equal scipy.stats.ks_2samp(method="asymp").
    rng = np.random.default_rng(n_ref * 7 + n_cur)
    if kind == "normal":
        a, b = rng.standard_normal(n_ref), rng.standard_normal(n_cur) * 1.1 + 0.1
    elif kind == "ties":
        a, b = rng.integers(0, 7, n_ref).astype(float), rng.integers(0, 8, n_cur).astype(float)
    elif kind == "zero_inflated":
        a = np.where(rng.random(n_ref) < 0.7, 0.0, rng.exponential(size=n_ref))
        b = np.where(rng.random(n_cur) < 0.6, 0.0, rng.exponential(size=n_cur))
    else:
        a = rng.standard_normal(n_ref)
        b = a.copy()
    statistic, p_value = ks_test(a, b)
    expected = stats.ks_2samp(a, b, method="asymp")
    assert statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("n_d_squared", [3.0, 25.0, 300.0])
def test_ks_p_value_vectorised_smirnov_branch_matches_scipy(n_d_squared: float) -> None:
    # REQ: DRIFT-1 — where scipy's kstwo.sf runs its slow exact Smirnov sum (n > 10,000,
    # 2.2 <= n·d² < 370) the vectorised evaluation of the same sum agrees with scipy.
    n = 20_000
    d = math.sqrt(n_d_squared / n)
    assert drift._kstwo_sf(d, n) == pytest.approx(stats.kstwo.sf(d, n), rel=1e-8)


def test_ks_test_one_versus_one_value() -> None:
    # REQ: DRIFT-1 — 1 vs 1 value: m·n/(m+n) = 0.5 rounds to 0 and scipy's asymptotic p-value is NaN;
    # the exact p-value is 1 (both orderings of two values give D = 1), which is returned instead.
    assert ks_test(np.array([0.0]), np.array([1.0])) == (1.0, 1.0)
    assert ks_test(np.array([0.0]), np.array([0.0])) == (0.0, 1.0)


def test_ks_test_rejects_empty_sample() -> None:
    # REQ: DRIFT-1 — an empty (or all-NaN) sample cannot be tested.
    with pytest.raises(ValueError, match="no non-missing"):
        ks_test(np.array([1.0, 2.0]), np.array([np.nan]))


# --------------------------------------------------------------------------------------------------
# assess_drift: verdicts, BH correction, guard (DRIFT-1, DRIFT-2, DRIFT-4)
# --------------------------------------------------------------------------------------------------


def test_identical_distributions_no_drift() -> None:
    # REQ: DRIFT-1 — identical windows: PSI 0, KS D 0 / p 1, verdict no_drift (min_sample met).
    reference, _ = _frames(3000, 0)
    assessment = assess_drift(reference, reference.copy(), numeric=["rain", "temp"], categorical=[])
    assert assessment.verdict == "no_drift"
    assert assessment.max_psi == 0.0
    for feature in assessment.features:
        assert (feature.psi, feature.kl_divergence, feature.statistic) == (0.0, 0.0, 0.0)
        assert feature.p_value == 1.0 and feature.p_value_adjusted == 1.0
        assert not feature.significant and feature.psi_level == "stable"
    assert len(assessment.reasons) == 1 and "no feature" in assessment.reasons[0]


def test_same_distribution_independent_samples_no_drift() -> None:
    # REQ: DRIFT-1 — two samples of one distribution: PSI near 0 (expected ~ (bins-1)(1/n_r + 1/n_c)
    # = 9·(1/5000 + 1/4000) = 0.004), nothing significant, verdict no_drift.
    reference, current = _frames(5000, 4000, shift=0.0)
    assessment = assess_drift(reference, current, numeric=["rain", "temp"], categorical=[])
    assert assessment.max_psi < 0.02
    assert assessment.verdict == "no_drift"


def test_clear_mean_shift_is_drift() -> None:
    # REQ: DRIFT-1 — a one-sigma mean shift: PSI > 0.25, KS significant, verdict drift.
    reference, current = _frames(5000, 4000, shift=1.0)
    assessment = assess_drift(reference, current, numeric=["rain", "temp"], categorical=[])
    assert assessment.verdict == "drift"
    assert assessment.n_current == 4000
    for feature in assessment.features:
        assert feature.kind == "numeric" and feature.test == "ks_2samp"
        assert feature.psi > 0.25 and feature.psi_level == "shift"
        assert feature.significant and feature.p_value_adjusted < 1e-10
        # D of N(0,1) vs N(1,1) is about 2·Φ(0.5) - 1 = 0.383
        assert 0.33 < feature.statistic < 0.43
        assert (feature.n_reference, feature.n_current) == (5000, 4000)
    assert len(assessment.reasons) == 2
    assert all("PSI" in reason and ">= 0.25" in reason for reason in assessment.reasons)
    assert assessment.max_psi == max(f.psi for f in assessment.features)


def test_significant_small_shift_is_warning() -> None:
    # REQ: DRIFT-1 — a shift too small for the PSI warning level but significant at large n -> warning.
    # PSI of N(0,1) vs N(0.12,1) is about δ² = 0.014 (< 0.10); KS D ≈ 0.048 at n = 20,000 -> p ~ 1e-19.
    reference, current = _frames(20_000, 20_000, shift=0.12, cols=("rain",))
    assessment = assess_drift(reference, current, numeric=["rain"], categorical=[])
    (feature,) = assessment.features
    assert feature.psi < 0.10 and feature.psi_level == "stable"
    assert feature.significant
    assert assessment.verdict == "warning"
    assert "below warning level 0.1" in assessment.reasons[0]
    assert "p_adj" in assessment.reasons[0] and "< alpha 0.05" in assessment.reasons[0]


def test_small_sample_uses_exact_test_and_reports_metrics() -> None:
    # REQ: DRIFT-2, DRIFT-6 — below min_sample the exact KS test decides (a 2-sigma shift at n=28 is
    # drift); PSI is still reported, descriptively.
    reference, current = _frames(5000, 28, shift=2.0)
    assessment = assess_drift(reference, current, numeric=["rain", "temp"], categorical=[])
    assert assessment.verdict == "drift"
    assert assessment.sample_regime == "small_sample"
    assert assessment.n_current == 28 and assessment.min_sample == 1000
    assert len(assessment.features) == 2
    for feature in assessment.features:
        assert feature.n_current == 28 and feature.test == "ks_2samp_exact"
        assert feature.psi > 0.25 and math.isfinite(feature.kl_divergence)
        assert 0.0 <= feature.p_value <= 1.0 and feature.decidable and feature.actionable


def test_too_small_to_decide_is_insufficient() -> None:
    # REQ: DRIFT-2 — insufficient_sample only when no test can reach alpha: 2 rows against 5 can give
    # at best p = 2 / C(7, 2) = 0.095 > 0.05.
    reference, current = _frames(5, 2, shift=5.0)
    assessment = assess_drift(reference, current, numeric=["rain", "temp"], categorical=[])
    assert assessment.verdict == "insufficient_sample"
    assert assessment.reasons[0].startswith("insufficient sample: 2 current rows")
    assert all(not f.decidable and f.min_attainable_p == pytest.approx(2 / 21) for f in assessment.features)


def test_min_sample_threshold_is_configurable() -> None:
    # REQ: DRIFT-2 — the guard uses DriftThresholds.min_sample.
    reference, current = _frames(500, 28, shift=2.0)
    assessment = assess_drift(
        reference, current, numeric=["rain"], categorical=[], thresholds=DriftThresholds(min_sample=20)
    )
    assert assessment.verdict == "drift"
    assert assessment.min_sample == 20


def test_empty_current_window_is_insufficient() -> None:
    # REQ: DRIFT-2 — a window with no rows has nothing to compare: insufficient_sample, no metrics.
    reference, current = _frames(100, 0)
    assessment = assess_drift(reference, current, numeric=["rain"], categorical=[])
    assert assessment.verdict == "insufficient_sample"
    assert assessment.features == ()
    assert "0 current rows" in assessment.reasons[0]


def test_bh_adjustment_matches_scipy_false_discovery_control() -> None:
    # REQ: DRIFT-1 — p-values adjusted with Benjamini-Hochberg over all features of the report.
    rng = np.random.default_rng(SEED)
    n = 1500
    shifts = [0.0, 0.02, 0.05, 0.08, 0.12]
    reference = pd.DataFrame({f"f{i}": rng.standard_normal(n) for i in range(len(shifts))})
    current = pd.DataFrame({f"f{i}": rng.standard_normal(n) + s for i, s in enumerate(shifts)})
    reference["soil"] = rng.choice(["clay", "loam", "sand"], n, p=[0.3, 0.4, 0.3])
    current["soil"] = rng.choice(["clay", "loam", "sand"], n, p=[0.25, 0.4, 0.35])
    numeric = [f"f{i}" for i in range(len(shifts))]
    assessment = assess_drift(reference, current, numeric=numeric, categorical=["soil"])
    raw = [f.p_value for f in assessment.features]
    expected = stats.false_discovery_control(raw, method="bh")
    assert [f.p_value_adjusted for f in assessment.features] == pytest.approx(list(expected), rel=1e-12)
    assert [f.significant for f in assessment.features] == [p < 0.05 for p in expected]
    assert [f.feature for f in assessment.features] == [*numeric, "soil"]
    # raw p-values are the per-feature tests
    assert raw[0] == pytest.approx(stats.ks_2samp(reference["f0"], current["f0"], method="asymp").pvalue)
    assert raw[-1] == pytest.approx(chi2_test(reference["soil"], current["soil"])[1])


def test_bh_hand_computed_example() -> None:
    # REQ: DRIFT-1 — BH by hand: sorted p (0.01, 0.03, 0.04), m = 3:
    # p_(k)·m/k = 0.03, 0.045, 0.04 -> cumulative min from the top: 0.03, 0.04, 0.04
    assert list(stats.false_discovery_control([0.01, 0.04, 0.03])) == pytest.approx([0.03, 0.04, 0.04])


def test_categorical_drift_in_assessment() -> None:
    # REQ: DRIFT-1 — categorical features use PSI over categories and the chi-squared test.
    n = 2000
    reference = pd.DataFrame({"soil": ["clay"] * (n // 2) + ["loam"] * (n // 2)})
    current = pd.DataFrame({"soil": ["clay"] * 1400 + ["loam"] * 400 + ["sand"] * 200})
    assessment = assess_drift(reference, current, numeric=[], categorical=["soil"])
    (feature,) = assessment.features
    assert feature.kind == "categorical" and feature.test == "chi2"
    assert feature.psi == pytest.approx(psi_categorical(reference["soil"], current["soil"])[0])
    assert feature.psi > 0.25 and feature.significant
    assert assessment.verdict == "drift"


def test_nan_dropped_per_column_and_counted() -> None:
    # REQ: DRIFT-1 — NaN dropped per column; n counts the remaining values.
    reference, current = _frames(2000, 1500)
    current.loc[:99, "rain"] = np.nan
    reference.loc[:9, "temp"] = np.nan
    assessment = assess_drift(reference, current, numeric=["rain", "temp"], categorical=[])
    rain, temp = assessment.features
    assert (rain.n_reference, rain.n_current) == (2000, 1400)
    assert (temp.n_reference, temp.n_current) == (1990, 1500)
    assert assessment.n_current == 1500
    assert rain.psi == pytest.approx(
        psi_numeric(reference["rain"].dropna().to_numpy(), current["rain"].dropna().to_numpy())[0]
    )


def test_performance_degradation_drives_drift() -> None:
    # REQ: DRIFT-4 — MAE_current > (1 + 0.20)·MAE_validation is actionable drift on its own.
    reference, _ = _frames(2000, 0)
    current = reference.copy()
    assessment = assess_drift(
        reference, current, numeric=["rain"], categorical=[], mae_current=650.0, mae_validation=500.0
    )
    assert assessment.performance is not None
    assert assessment.performance.degradation_ratio == pytest.approx(0.3)  # 650/500 - 1
    assert assessment.performance.degraded
    assert assessment.verdict == "drift"
    assert len(assessment.reasons) == 1 and assessment.reasons[0].startswith("performance: MAE 650")
    # 590 / 500 - 1 = 0.18 <= 0.20: not degraded
    ok = assess_drift(
        reference, current, numeric=["rain"], categorical=[], mae_current=590.0, mae_validation=500.0
    )
    assert ok.performance is not None and not ok.performance.degraded
    assert ok.verdict == "no_drift"
    with pytest.raises(ValueError, match="together"):
        assess_drift(reference, current, numeric=["rain"], categorical=[], mae_current=590.0)
    with pytest.raises(ValueError, match="mae_validation"):
        assess_drift(
            reference, current, numeric=["rain"], categorical=[], mae_current=1.0, mae_validation=0.0
        )


def test_missing_column_raises_naming_it() -> None:
    # REQ: DRIFT-1 — a column missing from either frame is an error naming the column.
    reference, current = _frames(100, 100)
    reference["humidity"] = "high"
    with pytest.raises(ValueError, match=r"current frame is missing column.*'humidity'"):
        assess_drift(reference, current, numeric=["rain"], categorical=["humidity"])
    with pytest.raises(ValueError, match=r"reference frame is missing column.*'temp'"):
        assess_drift(reference.drop(columns=["temp"]), current, numeric=["rain", "temp"], categorical=[])
    with pytest.raises(ValueError, match=r"current frame is missing column.*'temp'"):
        assess_drift(reference, current.drop(columns=["temp"]), numeric=["temp"], categorical=[])


def test_entirely_nan_column_and_empty_reference_raise() -> None:
    # REQ: DRIFT-1 — an all-NaN column (either frame) or an empty reference cannot be assessed.
    reference, current = _frames(100, 100)
    current["rain"] = np.nan
    with pytest.raises(ValueError, match="current column 'rain'"):
        assess_drift(reference, current, numeric=["rain", "temp"], categorical=[])
    reference["soil"] = None
    current["soil"] = "clay"
    with pytest.raises(ValueError, match="reference column 'soil'"):
        assess_drift(reference, current, numeric=[], categorical=["soil"])
    with pytest.raises(ValueError, match="0 rows"):
        assess_drift(reference.iloc[:0], current, numeric=["temp"], categorical=[])
    with pytest.raises(ValueError, match="more than once"):
        assess_drift(reference, current, numeric=["temp"], categorical=["temp"])


def test_thresholds_are_validated() -> None:
    # REQ: DRIFT-2 — nonsensical thresholds are rejected up front.
    with pytest.raises(ValueError, match="psi_actionable"):
        DriftThresholds(psi_actionable=0.05, psi_warning=0.10)
    with pytest.raises(ValueError, match="alpha"):
        DriftThresholds(alpha=1.5)
    with pytest.raises(ValueError, match="min_sample"):
        DriftThresholds(min_sample=0)


# --------------------------------------------------------------------------------------------------
# Serialisation and presentation
# --------------------------------------------------------------------------------------------------


def _mixed_assessment() -> DriftAssessment:
    reference, current = _frames(1500, 1200, shift=0.6)
    rng = np.random.default_rng(SEED + 1)
    reference["soil"] = rng.choice(["clay", "loam"], 1500)
    current["soil"] = rng.choice(["clay", "loam", "sand"], 1200)
    return assess_drift(
        reference,
        current,
        numeric=["rain", "temp"],
        categorical=["soil"],
        mae_current=410.0,
        mae_validation=400.0,
    )


def test_to_dict_is_strict_json() -> None:
    # REQ: DRIFT-1 — the report is JSON-serialisable without NaN/inf and without numpy types.
    assessment = _mixed_assessment()
    document = assessment.to_dict()
    text = json.dumps(document, allow_nan=False)
    assert json.loads(text) == document
    assert document["verdict"] == assessment.verdict
    assert document["n_current"] == 1200 and document["min_sample"] == 1000
    assert [f["feature"] for f in document["features"]] == ["rain", "temp", "soil"]
    assert document["performance"]["degradation_ratio"] == pytest.approx(0.025)
    for feature in document["features"]:
        for value in feature.values():
            assert type(value) in (str, int, float, bool)
    # undefined numbers become None rather than NaN
    assert drift._json_float(float("nan")) is None and drift._json_float(float("inf")) is None


def test_drift_table_markdown() -> None:
    # REQ: DRIFT-1 — one markdown row per feature for the Dagster UI.
    assessment = _mixed_assessment()
    table = drift_table_markdown(assessment).splitlines()
    assert table[0] == "| feature | kind | PSI | KL | test | statistic | p (adj.) | level |"
    assert len(table) == 2 + 3
    rain = assessment.features[0]
    assert table[2].startswith(f"| rain | numeric | {rain.psi:.4f} | {rain.kl_divergence:.4f} | ks_2samp |")
    assert table[2].endswith(f"| {rain.psi_level} |")
    assert table[4].startswith("| soil | categorical |")
