"""DRIFT-2, DRIFT-4, DRIFT-6 at small n; REG-5 pooled bias audit with intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rai_assets.domain.bias import BiasThresholds, audit_bias
from rai_assets.domain.drift import DriftThresholds, assess_drift, ks_test_exact, season_level_covariates

SEED = 7


def test_exact_ks_at_n20_rejects_a_clear_shift_and_not_equal_distributions() -> None:
    rng = np.random.default_rng(SEED)
    reference = rng.standard_normal(80)
    d, p, min_p = ks_test_exact(reference, rng.standard_normal(20) + 1.5)
    assert d > 0.5
    assert p < 0.001 and min_p < 1e-15
    rejections = sum(ks_test_exact(rng.standard_normal(80), rng.standard_normal(20))[1] < 0.05 for _ in range(200))
    assert rejections <= 20  # level <= 5 % (+ Monte-Carlo slack): the exact test is valid at n = 20


def test_small_n_assessment_uses_exact_tests_and_bh() -> None:
    rng = np.random.default_rng(SEED)
    reference = pd.DataFrame({f"f{i}": rng.standard_normal(100) for i in range(5)})
    current = pd.DataFrame({f"f{i}": rng.standard_normal(20) + (2.0 if i == 0 else 0.0) for i in range(5)})
    a = assess_drift(reference, current, [f"f{i}" for i in range(5)], [])
    assert a.sample_regime == "small_sample" and a.verdict == "drift"
    assert {f.test for f in a.features} == {"ks_2samp_exact"}
    adjusted = stats.false_discovery_control([f.p_value for f in a.features], method="bh")
    assert [f.p_value_adjusted for f in a.features] == pytest.approx(list(adjusted))
    assert [f.feature for f in a.features if f.actionable] == ["f0"]


def test_small_categorical_table_uses_permutation_chi2() -> None:
    reference = pd.DataFrame({"v": ["trad"] * 30 + ["high"] * 2})
    current = pd.DataFrame({"v": ["high"] * 10 + ["trad"] * 10})
    a = assess_drift(reference, current, [], ["v"])
    (f,) = a.features
    assert f.test == "chi2_permutation" and f.p_value < 0.01 and f.actionable


def test_season_level_detected_when_constant_within_seasons_and_ranked() -> None:
    reference = pd.DataFrame({"season_id": ["s01"] * 10 + ["s02"] * 10,
                              "price": [80.0] * 10 + [90.0] * 10, "wage": [40.0] * 10 + [44.0] * 10,
                              "rain": np.arange(20.0)})
    current = pd.DataFrame({"season_id": ["s03"] * 10, "price": [170.0] * 10, "wage": [46.0] * 10,
                            "rain": np.arange(10.0)})
    covariates = season_level_covariates(reference, current, ["price", "wage", "rain"], DriftThresholds())
    assert [c.feature for c in covariates] == ["price", "wage"]
    price, wage = covariates
    assert price.source == "constant_within_season" and price.ratio_to_latest == pytest.approx(170 / 90)
    assert price.ratio_to_reference_mean == pytest.approx(2.0) and price.changed
    assert not wage.changed
    a = assess_drift(reference, current, ["price", "wage", "rain"], [])
    assert [f.feature for f in a.features] == ["rain"]
    assert a.reasons[0].startswith("season-level price: s03 170")
    assert a.to_dict()["season_level_changed"] == ["price"]


def test_degraded_mae_is_drift_even_when_no_feature_test_can_decide() -> None:
    reference = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0]})
    current = pd.DataFrame({"x": [2.0, 3.0]})
    a = assess_drift(reference, current, ["x"], [], mae_current=150.0, mae_validation=100.0,
                     abs_errors_current=[140.0, 160.0])
    assert not a.features[0].decidable
    assert a.verdict == "drift" and a.reasons[0].startswith("performance: MAE 150")
    assert a.performance is not None and a.performance.ratio_ci_low is not None
    assert a.to_dict()["performance"]["degraded"] is True


def test_pooled_bias_audit_gives_intervals_and_strata_counts() -> None:
    rng = np.random.default_rng(SEED)
    n = 90
    groups = pd.DataFrame({"tenure": rng.choice(["owner", "share"], n), "season_id": np.repeat(["s1", "s2", "s3"], 30),
                           "tenant_id": "v1"})
    actual = np.full(n, 4000.0)
    predicted = actual + rng.normal(0, 300, n)
    audit = audit_bias(actual, predicted, groups, {"tenure": "tenure"}, BiasThresholds(), unit="kg/ha")
    assert audit.verdict == "pass" and audit.passed, audit.reasons
    assert dict(audit.seasons) == {"s1": 30, "s2": 30, "s3": 30} and dict(audit.tenants) == {"v1": 90}
    for g in audit.subgroups[0].groups:
        assert g.mae_ci is not None and g.mae_ci[0] < g.mae < g.mae_ci[1]
        assert g.mae_ratio_to_overall_ci is not None
    # a noisy breach (ratio below threshold by chance in a tiny group) is not a fail
    small = audit_bias(np.full(10, 4000.0), 4000.0 + np.array([100, -100, 100, -100, 100, 150, -20, 900, -30, 40.0]),
                       pd.DataFrame({"t": ["a"] * 5 + ["b"] * 5}), {"t": "t"}, unit="kg/ha")
    assert small.subgroups[0].mae_ratio is not None and small.subgroups[0].mae_ratio < 0.5
    assert small.verdict == "pass" and any("not significantly" in r for r in small.reasons)
