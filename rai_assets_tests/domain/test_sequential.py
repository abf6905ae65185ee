"""Tests for rai_assets.domain.sequential — the always-valid mSPRT canary guard (RET-7, RET-8).

Hand-computed numbers come from the formula of Johari, Pekelis & Walsh (2017):
``Λ_k = sqrt(σ²/(σ² + kτ²)) · exp(k²τ²d̄² / (2σ²(σ² + kτ²)))`` with the prefix sample variance
(ddof = 1), and ``p_n = min(1, 1/max_{min_sample <= k <= n} Λ_k)``.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rai_assets.domain.sequential import (
    DECISIONS,
    VARIANCE_FLOOR,
    SequentialDecision,
    canary_slice,
    mixture_log_likelihood_ratio,
    msprt,
)

SEED = 20261118


def _paired_errors(
    n: int, champion_sd: float, candidate_sd: float, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Absolute errors of two models on the same n fields (kg/ha): shared field noise + own noise."""
    rng = np.random.default_rng(seed)
    field_noise = rng.normal(0.0, 300.0, n)  # what both models miss on the same field
    champion = np.abs(field_noise + rng.normal(0.0, champion_sd, n))
    candidate = np.abs(field_noise + rng.normal(0.0, candidate_sd, n))
    return champion, candidate


# --------------------------------------------------------------------------------------------------
# Hand-computed Λ and p
# --------------------------------------------------------------------------------------------------


# d = champion - candidate = [3, 4, 5] - [2, 2, 2] = [1, 2, 3], τ = 1 (τ² = 1):
# k = 2: d̄ = 1.5, σ² = ((−0.5)² + 0.5²)/1 = 0.5; σ² + kτ² = 2.5
#        log Λ_2 = ½·ln(0.5/2.5) + 2²·1·1.5² / (2·0.5·2.5) = ½·ln(0.2) + 9/2.5 = −0.8047190 + 3.6 = 2.7952810
#        Λ_2 = 16.367228
# k = 3: d̄ = 2, σ² = (1 + 0 + 1)/2 = 1; σ² + kτ² = 4
#        log Λ_3 = ½·ln(1/4) + 3²·1·2² / (2·1·4) = −0.6931472 + 4.5 = 3.8068528
#        Λ_3 = 0.5·e^4.5 = 0.5·90.017131 = 45.008566
# p_3 = 1 / max(Λ_2, Λ_3) = 1/45.008566 = 0.02221799
LOG_LR_2 = 0.5 * math.log(0.2) + 3.6
LOG_LR_3 = 0.5 * math.log(0.25) + 4.5


def test_mixture_log_likelihood_ratio_formula() -> None:
    # REQ: RET-7 — the mSPRT statistic itself.
    assert float(mixture_log_likelihood_ratio(2, 1.5, 0.5, 1.0)) == pytest.approx(LOG_LR_2, rel=1e-12)
    assert float(mixture_log_likelihood_ratio(3, 2.0, 1.0, 1.0)) == pytest.approx(LOG_LR_3, rel=1e-12)
    assert math.exp(LOG_LR_2) == pytest.approx(16.367228, rel=1e-7)
    assert math.exp(LOG_LR_3) == pytest.approx(45.008566, rel=1e-7)
    # Zero mean: Λ = sqrt(σ²/(σ² + nτ²)) < 1 — no evidence against H0.
    assert float(mixture_log_likelihood_ratio(10, 0.0, 4.0, 1.0)) == pytest.approx(0.5 * math.log(4.0 / 14.0))


def test_msprt_hand_computed_tiny_example() -> None:
    # REQ: RET-7 — Λ_3 = 45.008566, p = 1/45.008566 = 0.022218 < 0.05 → promote.
    result = msprt([3.0, 4.0, 5.0], [2.0, 2.0, 2.0], tau=1.0, min_sample=2)
    assert result.decision == "promote"
    assert result.n == 3
    assert result.mean_difference == pytest.approx(2.0)
    assert result.likelihood_ratio == pytest.approx(0.5 * math.exp(4.5), rel=1e-12)
    assert result.likelihood_ratio == pytest.approx(45.008566, rel=1e-7)
    assert result.p_value == pytest.approx(1.0 / (0.5 * math.exp(4.5)), rel=1e-12)
    assert result.p_value == pytest.approx(0.02221799, rel=1e-6)
    result_dict = result.to_dict()
    assert result_dict["decision"] == "promote" and result_dict["min_sample"] == 2


def test_msprt_hand_computed_first_significant_peek() -> None:
    # REQ: RET-7 — p_2 = 1/16.367228 = 0.061098 >= 0.05, p_3 = 0.022218 < 0.05: first significant at k = 3.
    result = msprt([3.0, 4.0, 5.0], [2.0, 2.0, 2.0], tau=1.0, min_sample=2)
    assert "first significant at observation 3 (mean +2.00 kg/ha)" in result.reason
    # With alpha = 0.1, p_2 = 0.0611 < 0.1 already: the first significant peek is k = 2 (mean +1.50).
    early = msprt([3.0, 4.0, 5.0], [2.0, 2.0, 2.0], tau=1.0, min_sample=2, alpha=0.1)
    assert early.decision == "promote"
    assert "first significant at observation 2 (mean +1.50 kg/ha)" in early.reason
    assert early.p_value == pytest.approx(0.02221799, rel=1e-6)  # still the minimum over k = 2, 3


def test_msprt_hand_computed_running_maximum_and_burn_in() -> None:
    # REQ: RET-7 — d = [1, 2, 3, −4]: at k = 4, d̄ = 0.5, σ² = (0.25 + 2.25 + 6.25 + 20.25)/3 = 29/3,
    # σ² + 4τ² = 41/3; log Λ_4 = ½·ln(29/41) + 16·0.25/(2·(29/3)·(41/3)) = −0.1731381 + 0.0151388 = −0.1579993,
    # Λ_4 = 0.853850. The always-valid p keeps the maximum over the earlier peeks: p = 1/Λ_3 = 0.022218.
    log_lr_4 = 0.5 * math.log(29.0 / 41.0) + 4.0 / (2.0 * (29.0 / 3.0) * (41.0 / 3.0))
    champion, candidate = [3.0, 4.0, 5.0, 0.0], [2.0, 2.0, 2.0, 4.0]
    kept = msprt(champion, candidate, tau=1.0, min_sample=2)
    assert kept.likelihood_ratio == pytest.approx(math.exp(log_lr_4), rel=1e-12)
    assert kept.likelihood_ratio == pytest.approx(0.853850, rel=1e-6)
    assert kept.p_value == pytest.approx(math.exp(-LOG_LR_3), rel=1e-12)
    assert kept.decision == "promote"  # decided at k = 3 (mean +2), not reversed by the 4th field
    assert kept.mean_difference == pytest.approx(0.5)
    # With min_sample = 4 the peeks before 4 do not count (burn-in): p = min(1, 1/0.853850) = 1.
    late = msprt(champion, candidate, tau=1.0, min_sample=4)
    assert late.decision == "continue"
    assert late.p_value == 1.0


def test_msprt_hand_computed_rollback_and_default_tau() -> None:
    # REQ: RET-8 — the same differences with the roles swapped: d = [−1, −2, −3], same Λ, rollback.
    worse = msprt([2.0, 2.0, 2.0], [3.0, 4.0, 5.0], tau=1.0, min_sample=2)
    assert worse.decision == "rollback"
    assert worse.mean_difference == pytest.approx(-2.0)
    assert worse.p_value == pytest.approx(1.0 / 45.008566, rel=1e-6)
    # tau=None uses τ_k = σ_k: Λ_k = (1 + k)^(−½)·exp(k·z²/(2(1 + k))), z² = k·d̄²/σ².
    # k = 3: z² = 3·4/1 = 12, Λ_3 = e^(3·12/8)/2 = e^4.5/2 (σ² = 1 = τ², as above);
    # k = 2: z² = 2·2.25/0.5 = 9, Λ_2 = e^(2·9/6)/sqrt(3) = e^3/sqrt(3) = 20.085537/1.7320508 = 11.596390.
    default = msprt([3.0, 4.0, 5.0], [2.0, 2.0, 2.0], min_sample=2)
    assert default.likelihood_ratio == pytest.approx(math.exp(4.5) / 2.0, rel=1e-12)
    only_two = msprt([3.0, 4.0], [2.0, 2.0], min_sample=2, alpha=0.1)
    assert only_two.likelihood_ratio == pytest.approx(math.exp(3.0) / math.sqrt(3.0), rel=1e-12)
    assert only_two.likelihood_ratio == pytest.approx(11.596390, rel=1e-6)
    assert only_two.decision == "promote"  # p = 1/11.596390 = 0.0862 < 0.1


# --------------------------------------------------------------------------------------------------
# Simulated canaries
# --------------------------------------------------------------------------------------------------


def test_truly_better_candidate_is_promoted() -> None:
    # REQ: RET-7 — the candidate's own error sd is 150 vs the champion's 300 kg/ha, over 400 fields.
    champion, candidate = _paired_errors(400, champion_sd=300.0, candidate_sd=150.0)
    result = msprt(champion, candidate)
    assert result.decision == "promote"
    assert result.p_value < 0.05
    assert result.mean_difference > 0.0
    assert "promote: candidate better by" in result.reason and "RET-7" in result.reason


def test_truly_worse_candidate_is_rolled_back() -> None:
    # REQ: RET-8 — the new model is worse: significant loss → rollback.
    champion, candidate = _paired_errors(400, champion_sd=150.0, candidate_sd=300.0)
    result = msprt(champion, candidate)
    assert result.decision == "rollback"
    assert result.p_value < 0.05
    assert result.mean_difference < 0.0
    assert "rollback: candidate worse by" in result.reason and "RET-8" in result.reason


def test_equal_models_continue_and_never_decide_early() -> None:
    # REQ: RET-7 — equal models: no decision at realistic n; below min_sample never a decision.
    champion, candidate = _paired_errors(200, champion_sd=200.0, candidate_sd=200.0)
    for n in (30, 50, 100, 200):
        result = msprt(champion[:n], candidate[:n])
        assert result.decision == "continue", (n, result)
        assert result.p_value >= 0.05
    below = msprt(champion[:29], candidate[:29])
    assert below.decision == "insufficient_sample"
    assert "29 paired observations < minimum 30" in below.reason
    # Even an overwhelming difference does not decide before the minimum sample.
    better, worse = _paired_errors(29, champion_sd=1000.0, candidate_sd=10.0)
    assert msprt(better, worse).decision == "insufficient_sample"
    assert msprt(better, worse, min_sample=20).decision == "promote"
    # Identical models: every difference is 0, Λ < 1, p = 1.
    same = msprt(champion, champion)
    assert same.decision == "continue" and same.p_value == 1.0 and same.mean_difference == 0.0


def test_tiny_and_empty_samples() -> None:
    # REQ: RET-7
    for values in ([], [5.0]):
        result = msprt(values, values)
        assert result.decision == "insufficient_sample"
        assert result.likelihood_ratio == 1.0 and result.p_value == 1.0
        assert result.n == len(values)


def test_always_valid_under_h0_with_continuous_peeking() -> None:
    # REQ: RET-7 — Ville's inequality: under H0 the chance of EVER rejecting, peeking after every
    # field from min_sample to n, is <= alpha. 600 simulated canaries of 300 fields, one msprt call
    # each (the p-value is the minimum over all peeks k = 30..300). A fixed-n t-test peeked the same
    # way rejects far more often, which is why RET-7 needs a sequential test.
    rng = np.random.default_rng(SEED)
    runs, n, alpha, min_sample = 600, 300, 0.05, 30
    ever_rejected = 0
    naive_rejected = 0
    k = np.arange(1, n + 1, dtype=float)
    for _ in range(runs):
        field_noise = rng.normal(0.0, 300.0, n)
        champion = np.abs(field_noise + rng.normal(0.0, 200.0, n))
        candidate = np.abs(field_noise + rng.normal(0.0, 200.0, n))
        result = msprt(champion, candidate, alpha=alpha, min_sample=min_sample)
        ever_rejected += result.decision in ("promote", "rollback")
        # naive: a z-test at every peek (|z| > 1.96)
        d = champion - candidate
        mean = np.cumsum(d) / k
        var = (np.cumsum(d * d) - k * mean * mean) / np.maximum(k - 1.0, 1.0)
        z = np.abs(mean) / np.sqrt(np.maximum(var, 1e-12) / k)
        naive_rejected += bool(np.any(z[min_sample - 1:] > 1.96))
    assert ever_rejected / runs <= alpha + 0.015
    assert naive_rejected / runs > 2 * alpha


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.0, 2000.0, allow_nan=False), st.floats(0.0, 2000.0, allow_nan=False)),
        min_size=0,
        max_size=80,
    ),
    st.sampled_from([None, 25.0, 300.0]),
)
def test_msprt_properties(pairs: list[tuple[float, float]], tau: float | None) -> None:
    # REQ: RET-7, RET-8 — invariants: p in [0, 1]; decision ⇔ p < alpha past min_sample; swapping the
    # models swaps promote/rollback with the same p; Λ and p do not depend on the unit (tau=None).
    champion = [a for a, _ in pairs]
    candidate = [b for _, b in pairs]
    result = msprt(champion, candidate, tau=tau, min_sample=10)
    assert result.decision in DECISIONS
    assert 0.0 <= result.p_value <= 1.0
    assert math.isfinite(result.likelihood_ratio) and result.likelihood_ratio > 0.0
    if len(pairs) < 10:
        assert result.decision == "insufficient_sample"
    else:
        assert (result.decision in ("promote", "rollback")) == (result.p_value < 0.05)
    swapped = msprt(candidate, champion, tau=tau, min_sample=10)
    assert swapped.p_value == result.p_value
    assert swapped.mean_difference == -result.mean_difference
    flip = {"promote": "rollback", "rollback": "promote"}
    assert swapped.decision == flip.get(result.decision, result.decision)
    differences = np.subtract(champion, candidate)
    unfloored = len(pairs) >= 2 and float(np.var(differences, ddof=1)) > 1e6 * VARIANCE_FLOOR
    if tau is None and unfloored:  # the variance floor (documented, absolute) is the one thing not unit-free
        scaled = msprt([4.0 * a for a in champion], [4.0 * b for b in candidate], min_sample=10)
        assert scaled.decision == result.decision
        assert scaled.p_value == pytest.approx(result.p_value, rel=1e-9, abs=1e-300)
    json.dumps(result.to_dict(), allow_nan=False)


def test_msprt_validates_its_arguments() -> None:
    # REQ: RET-7 — errors name the argument.
    with pytest.raises(ValueError, match="same length"):
        msprt([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="champion_abs_errors contains 1 non-finite"):
        msprt([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError, match="candidate_abs_errors contains 1 non-finite"):
        msprt([1.0, 2.0], [1.0, float("inf")])
    with pytest.raises(ValueError, match="candidate_abs_errors must be 1-dimensional"):
        msprt([1.0, 2.0], [[1.0, 2.0]])
    with pytest.raises(ValueError, match="champion_abs_errors must be numeric"):
        msprt(["a", "b"], [1.0, 2.0])
    with pytest.raises(ValueError, match="alpha"):
        msprt([1.0], [1.0], alpha=1.0)
    with pytest.raises(ValueError, match="min_sample"):
        msprt([1.0], [1.0], min_sample=1)
    with pytest.raises(ValueError, match="tau"):
        msprt([1.0], [1.0], tau=0.0)
    with pytest.raises(ValueError, match="tau"):
        msprt([1.0], [1.0], tau=float("nan"))


def test_msprt_signed_residuals_are_taken_in_absolute_value_and_to_dict() -> None:
    # REQ: RET-7 — |err| is taken, so signed residuals give the same result.
    champion, candidate = _paired_errors(100, 300.0, 150.0)
    signs = np.where(np.random.default_rng(1).random(100) < 0.5, -1.0, 1.0)
    assert msprt(champion * signs, -candidate) == msprt(champion, candidate)
    result = msprt(champion, candidate)
    as_dict = result.to_dict()
    assert set(as_dict) == {"decision", "n", "mean_difference", "likelihood_ratio", "p_value", "alpha",
                            "min_sample", "reason"}
    assert json.loads(json.dumps(as_dict, allow_nan=False)) == as_dict
    assert SequentialDecision(**as_dict) == result


def test_overwhelming_evidence_keeps_the_likelihood_ratio_finite() -> None:
    # REQ: RET-7 — identical nonzero differences (variance floored) give an astronomically large Λ,
    # reported capped at exp(700) so that it stays a finite float.
    result = msprt(np.full(1000, 500.0), np.full(1000, 100.0))
    assert result.decision == "promote"
    assert result.likelihood_ratio == pytest.approx(math.exp(700.0))
    assert result.p_value == 0.0


# --------------------------------------------------------------------------------------------------
# Canary slice
# --------------------------------------------------------------------------------------------------


def test_canary_slice_is_deterministic_and_matches_the_documented_hash() -> None:
    # REQ: RET-7 — the canary serves a fixed, reproducible set of fields.
    digest = hashlib.sha256(b"tenant-a:v7:field-0042").digest()
    u = (int.from_bytes(digest[:8], "big") >> 11) / 2.0**53
    assert canary_slice("field-0042", u + 1e-12, salt="tenant-a:v7:") is True
    assert canary_slice("field-0042", u, salt="tenant-a:v7:") is False
    assert all(canary_slice(f"f{i}", 0.3, "s") == canary_slice(f"f{i}", 0.3, "s") for i in range(100))


def test_canary_slice_share_matches_the_observed_fraction() -> None:
    # REQ: RET-7 — over 10,000 ids the slice holds ≈ share of them (binomial sd 0.0046 at 0.3).
    ids = [f"field-{i:05d}" for i in range(10_000)]
    for share in (0.05, 0.3, 0.5):
        fraction = sum(canary_slice(field_id, share, salt="tenant-a:v7:") for field_id in ids) / len(ids)
        assert fraction == pytest.approx(share, abs=0.015)
    assert not any(canary_slice(field_id, 0.0) for field_id in ids)
    assert all(canary_slice(field_id, 1.0) for field_id in ids)
    # Slices are nested as the share grows (ramping a canary up keeps its fields), and a new salt
    # draws a different slice.
    small = {i for i in ids if canary_slice(i, 0.1, "v7:")}
    large = {i for i in ids if canary_slice(i, 0.3, "v7:")}
    assert small <= large
    other = {i for i in ids if canary_slice(i, 0.1, "v8:")}
    assert len(small & other) < 0.5 * len(small)


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan"), True])
def test_canary_slice_rejects_invalid_share(share: float) -> None:
    # REQ: RET-7
    with pytest.raises(ValueError, match="share"):
        canary_slice("field-1", share)


def test_reason_names_the_given_unit_ret7() -> None:
    """RET-7: the decision's reason is in the unit of the errors it is given (a barley spec's bu/ac)."""
    rng = np.random.default_rng(3)
    champion = np.abs(rng.normal(10.0, 2.0, 200))
    decision = msprt(champion, champion * 0.5, min_sample=30, unit="bu/ac")
    assert decision.decision == "promote" and "bu/ac" in decision.reason and "kg/ha" not in decision.reason


def test_msprt_scale_invariance_holds_where_the_variance_floor_does_not_bind() -> None:
    # REQ: RET-7 — the example hypothesis found: differences of 1e-5 have zero variance, the absolute floor
    # decides both p-values, and they differ with the unit; above the floor the test is unit-free.
    tiny = msprt([1e-5] * 12, [0.0] * 12, min_sample=10)
    assert tiny.p_value != msprt([4e-5] * 12, [0.0] * 12, min_sample=10).p_value
    rng = np.random.default_rng(SEED)
    champion, candidate = rng.uniform(0, 2000, 40), rng.uniform(0, 2000, 40)
    assert msprt(champion * 4.0, candidate * 4.0, min_sample=10).p_value == pytest.approx(
        msprt(champion, candidate, min_sample=10).p_value, rel=1e-9)
