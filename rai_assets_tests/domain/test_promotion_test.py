"""Promotion evidence at small n: exact sign-flip test, looks over seasons, naive floor (RET-7, RET-10, REG-10)."""

from __future__ import annotations

import numpy as np
import pytest

from rai_assets.domain.promotion_test import decide_promotion, naive_floor, refit_noninferiority, sign_flip_test


def test_exact_sign_flip_p_value_is_the_share_of_sign_patterns():  # REQ: RET-10
    result = sign_flip_test([5.0, 3.0, 2.0, 4.0, 1.0])
    assert result.method == "exact" and result.n == 5
    assert result.p_value == pytest.approx(1 / 32)  # only the observed all-positive pattern is as extreme
    assert sign_flip_test([5.0, 3.0, 2.0, 4.0, 1.0], alternative="less").p_value == pytest.approx(1.0)


def test_monte_carlo_sign_flip_is_reproducible_and_valid_under_the_null():  # REQ: RET-10
    rng = np.random.default_rng(7)
    d = rng.normal(0, 300, 40)
    assert sign_flip_test(d, seed=3).p_value == sign_flip_test(d, seed=3).p_value
    rejections = sum(sign_flip_test(rng.normal(0, 300, 25), seed=i, n_resamples=999).p_value < 0.05
                     for i in range(200))
    assert rejections / 200 < 0.05 + 3 * np.sqrt(0.05 * 0.95 / 200)


@pytest.mark.parametrize("case", range(24))
def test_monte_carlo_sign_flip_p_value_is_scipys_bit_for_bit(case):  # REQ: RET-10, REG-10
    """Issue 12, goal 3: the vectorized Monte Carlo sign-flip test gives exactly the p-value of
    ``scipy.stats.permutation_test`` with the same seed and resamples — ties, zeros and both directions."""
    from scipy import stats

    rng = np.random.default_rng(100 + case)
    d = rng.normal(rng.normal(0, 40), 250, int(rng.integers(17, 160)))
    if case % 3 == 0:
        d = np.round(d, -1)  # many ties among |d|
    if case % 4 == 0:
        d[: d.size // 3] = 0.0
    alternative = "less" if case % 2 else "greater"
    n_resamples = 20_000 if case % 5 else 999
    expected = stats.permutation_test(
        (d,), lambda x, axis: np.mean(x, axis=axis), permutation_type="samples", alternative=alternative,
        n_resamples=n_resamples, rng=np.random.default_rng(case), vectorized=True).pvalue
    result = sign_flip_test(d, alternative=alternative, seed=case, n_resamples=n_resamples)
    assert result.method == "monte-carlo"
    assert result.p_value == float(min(1.0, expected))


def test_evidence_accumulates_over_seasons():  # REQ: RET-10
    rng = np.random.default_rng(11)
    season1 = rng.normal(40, 300, 60)  # a real but small improvement: not significant on one season
    season2 = rng.normal(40, 300, 200)
    first = decide_promotion([season1], season1, alpha=0.05, min_sample=20, key="c|m", unit="kg/ha")
    assert first.decision == "continue"
    both = decide_promotion([season1, season2], np.concatenate([season1, season2]), alpha=0.05, min_sample=20,
                            key="c|m", unit="kg/ha")
    assert both.decision == "promote", both.to_dict()
    assert "look 2" in both.test and both.alpha == pytest.approx(0.05 / 8)
    assert "n=260" in both.reason and "p=" in both.reason


def test_incomplete_seasons_feed_only_the_always_valid_test():  # REQ: RET-10
    d = np.full(12, 80.0) + np.arange(12)
    decision = decide_promotion([], d, alpha=0.05, min_sample=20, key="c|m", unit="kg/ha")
    assert decision.decision == "insufficient_sample" and decision.complete_looks == 0


def test_a_clearly_worse_candidate_is_aborted():  # REQ: RET-8
    d = -np.abs(np.random.default_rng(3).normal(200, 50, 30))
    decision = decide_promotion([d], d, alpha=0.05, min_sample=20, key="c|m", unit="kg/ha")
    assert decision.decision == "rollback"


def test_false_promotions_stay_below_alpha_over_three_looks():  # REQ: RET-7, RET-10
    rng = np.random.default_rng(5)
    wrong = 0
    trials = 60
    for i in range(trials):
        looks = [rng.normal(0, 300, 30) for _ in range(3)]
        for k in range(1, 4):
            decision = decide_promotion(looks[:k], np.concatenate(looks[:k]), alpha=0.05, min_sample=20,
                                        key=f"t{i}", unit="kg/ha")
            if decision.decision == "promote":
                wrong += 1
                break
    assert wrong / trials <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / trials)


def test_naive_floor_trips_only_on_significant_loss():  # REQ: REG-10
    rng = np.random.default_rng(2)
    actual = rng.normal(5000, 800, 30)
    naive = np.full(30, 5000.0)
    bad = actual + rng.normal(1500, 200, 30)
    tripped = naive_floor(actual, bad, naive, alpha=0.05)
    assert tripped.below_floor and tripped.mae_served > tripped.mae_naive and tripped.test.p_value < 0.05
    fine = naive_floor(actual, actual + rng.normal(0, 50, 30), naive, alpha=0.05)
    assert not fine.below_floor
    with pytest.raises(ValueError, match="one shape"):
        naive_floor(actual, bad[:5], naive, alpha=0.05)


def _refit_pairs(rng, n, mae_old, ratio):
    """(|e_old|, |e_old| - |e_new|) with MAE_new ≈ ratio × MAE_old, field by field correlated."""
    older = np.abs(rng.normal(0, mae_old * 1.25, n))
    newer = np.abs(older * ratio + rng.normal(0, mae_old * 0.3, n))
    return older, older - newer


def test_refit_serves_when_not_worse_than_the_older_fit_by_more_than_the_margin():  # REQ: RET-7, RET-10
    rng = np.random.default_rng(5)
    older, d = _refit_pairs(rng, 340, 1000.0, 0.97)  # refits 3 % better: non-inferior with a 5 % margin
    decision = refit_noninferiority(older, d, margin=0.05, alpha=0.05, unit="kg/ha")
    assert decision.serve and decision.test.n == 340 and decision.test.p_value < 0.05
    assert decision.mae_newer < 1.05 * decision.mae_older
    assert "non-inferior" in decision.reason and "n=340" in decision.reason


def test_refit_does_not_serve_when_plausibly_worse_by_the_margin():  # REQ: RET-7
    rng = np.random.default_rng(6)
    older, d = _refit_pairs(rng, 340, 1000.0, 1.12)  # refits 12 % worse
    decision = refit_noninferiority(older, d, margin=0.05, alpha=0.05, unit="kg/ha")
    assert not decision.serve and decision.test.p_value > 0.5
    # no evidence at all: no refit
    assert not refit_noninferiority([], [], margin=0.05, alpha=0.05, unit="kg/ha").serve


def test_refit_non_inferiority_keeps_its_level_at_the_margin():  # REQ: RET-7
    """At the boundary MAE_new = 1.05 MAE_old (symmetric D), the test wrongly serves at most alpha of the time."""
    rng = np.random.default_rng(8)
    wrong = 0
    for i in range(200):
        older = np.abs(rng.normal(0, 1000, 12))  # exact test (2^12 sign patterns)
        noise = rng.normal(0, 200, 12)
        d = -0.05 * older + noise  # D = 0.05|e_old| + d = noise: symmetric about 0
        wrong += refit_noninferiority(older, d, margin=0.05, alpha=0.05, unit="kg/ha", seed=i).serve
    assert wrong / 200 < 0.05 + 3 * np.sqrt(0.05 * 0.95 / 200)


@pytest.mark.parametrize(("older", "d", "margin", "alpha", "match"), [
    ([1.0, 2.0], [0.5], 0.05, 0.05, "one shape"),
    ([-1.0], [0.5], 0.05, 0.05, "non-negative"),
    ([1.0], [np.nan], 0.05, 0.05, "finite"),
    ([1.0], [0.5], 1.0, 0.05, "margin"),
    ([1.0], [0.5], 0.05, 0.0, "alpha"),
])
def test_refit_non_inferiority_rejects_bad_input(older, d, margin, alpha, match):
    with pytest.raises(ValueError, match=match):
        refit_noninferiority(older, d, margin=margin, alpha=alpha, unit="kg/ha")


@pytest.mark.parametrize(("n", "bit_generator"), [(17, "pcg64"), (31, "pcg64"), (171, "pcg64"), (465, "pcg64"),
                                                  (40, "philox"), (40, "pcg64-half-used")])
def test_sign_flip_null_distribution_is_scipys_bit_for_bit(n, bit_generator):  # REQ: RET-10
    """Issue 12, goal 3: the Monte Carlo null distribution (read from PCG64's raw output, or from numpy's
    ``permuted`` for any other generator state) equals ``scipy.stats.permutation_test``'s ``null_distribution``
    element for element, up to a cohort's n (465 pairs), with ties and zeros."""
    from scipy import stats

    from rai_assets.domain.promotion_test import _sign_flip_null

    def generator() -> np.random.Generator:
        if bit_generator == "philox":
            return np.random.Generator(np.random.Philox(n))
        rng = np.random.default_rng(n)
        if bit_generator == "pcg64-half-used":
            rng.integers(0, 2 ** 16, dtype=np.uint32)  # leaves half a 64-bit word buffered
        return rng

    d = np.round(np.random.default_rng(n + 1).normal(30, 250, n), -1)
    d[: n // 5] = 0.0
    expected = stats.permutation_test(
        (d,), lambda x, axis: np.mean(x, axis=axis), permutation_type="samples", alternative="greater",
        n_resamples=5_000, rng=generator(), vectorized=True).null_distribution
    assert np.array_equal(_sign_flip_null(d, 5_000, generator()), expected)
