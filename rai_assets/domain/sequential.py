"""Canary guard: an always-valid sequential test of candidate vs. champion errors (RET-7, RET-8).

Pure functions over numpy; no Dagster, no I/O.

The canary (and, after a promotion, the new champion against the previous one) is judged on
*paired* absolute errors: for every field ``i`` served during the canary, both models' absolute
errors against the harvested yield are known, and

    d_i = |err_champion_i| - |err_candidate_i|        (kg/ha; positive = candidate better)

The test is the **mixture sequential probability ratio test** (mSPRT) of ``H0: E[d] = 0`` with a
normal mixing distribution ``θ ~ N(0, τ²)`` over the alternative (Robbins 1970, *Statistical methods
related to the law of the iterated logarithm*, Ann. Math. Statist. 41(5):1397-1409; Johari, Pekelis &
Walsh 2017, *Always valid inference: bringing sequential analysis to A/B testing*, arXiv:1512.04922,
and Johari, Koomen, Pekelis & Walsh 2022, Operations Research 70(3):1806-1821). After ``k``
observations with mean ``d̄_k`` and variance ``σ_k²``::

    Λ_k = sqrt(σ_k² / (σ_k² + k τ²)) · exp( k² τ² d̄_k² / (2 σ_k² (σ_k² + k τ²)) )

and the always-valid p-value is ``p_n = min(1, 1 / max_{k<=n} Λ_k)``. Under H0, ``Λ_k`` is a
non-negative martingale with mean 1, so by Ville's inequality ``P(sup_k Λ_k >= 1/α) <= α``: the
probability that the test *ever* rejects, however often the canary is peeked at, stays below ``α``
(the RET-7 "p < 0.05" with continuous monitoring, which a fixed-n t-test peeked repeatedly does not
give). The mixture is symmetric, so the test is two-sided: a significant result is a *promotion*
when the candidate is better and a *rollback* (RET-8) when it is worse.

Choices made here (documented deviations from the textbook, known-variance test):

* **Variance**: ``σ_k²`` is the plug-in sample variance of the first ``k`` differences
  (``ddof=1``), floored at :data:`VARIANCE_FLOOR` (``1e-12`` (kg/ha)², i.e. a standard deviation of
  1e-6 kg/ha, negligible for yields) so that identical errors do not divide by zero. With
  identical differences that are not zero the test then rejects at once, which is right: the
  candidate is better (or worse) on every field.
* **Burn-in**: the maximum in ``p_n`` runs over the peeks ``min_sample <= k <= n`` at which the test
  may decide, not over ``k < min_sample``: with a plug-in variance of a handful of observations
  (``σ_2²`` can be tiny by chance), early ``Λ_k`` are heavy-tailed and would void the guarantee; the
  test never decides before ``min_sample`` anyway (RET-7 "minimum sample size"). Below
  ``min_sample`` only ``Λ_n`` is reported (``p = min(1, 1/Λ_n)``), as information.
* **Mixing scale**: ``tau=None`` (default) sets ``τ = σ_k`` at every ``k``: a standard-normal prior on
  the standardised effect ``θ/σ``. Then ``Λ_k = (1 + k)^(-1/2) · exp(k z_k² / (2 (1 + k)))`` with
  ``z_k = sqrt(k) d̄_k / σ_k`` depends only on the data's signal-to-noise ratio, not on the unit.
  It has good power for effects of a sizeable fraction of ``σ`` at a few hundred fields (an effect
  of 0.2 σ is detected at ~500 fields). Pass ``tau`` (kg/ha) to centre the prior on the smallest
  improvement worth detecting instead (a smaller ``τ`` gains power on small effects and loses
  some on large ones; Johari et al. 2017, section 4).
* **Direction**: a rejection is taken at the first peek ``k* >= min_sample`` with ``p_k* < α``, as a
  sequential test stopping there would; its direction is the sign of ``d̄_k*``. Once rejected, the
  decision no longer changes as more fields arrive (``p_n`` is non-increasing).
* ``Λ`` is computed in log space and reported capped at ``exp(700)`` (about 1.0e304), so it is
  always a finite float; ``p`` is then far below any ``α``.

:func:`canary_slice` picks the fields served by the canary deterministically from a hash.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "DECISIONS",
    "LOG_LR_CAP",
    "VARIANCE_FLOOR",
    "SequentialDecision",
    "canary_slice",
    "mixture_log_likelihood_ratio",
    "msprt",
]

#: The possible values of :attr:`SequentialDecision.decision`.
DECISIONS: tuple[str, ...] = ("insufficient_sample", "continue", "promote", "rollback")
#: Floor of the plug-in variance of the differences, in (kg/ha)².
VARIANCE_FLOOR = 1e-12
#: ``log Λ`` is reported capped at this value so that ``Λ`` stays a finite float.
LOG_LR_CAP = 700.0


@dataclass(frozen=True)
class SequentialDecision:
    """The outcome of :func:`msprt`.

    Attributes:
        decision: ``"promote"`` (candidate significantly better), ``"rollback"`` (candidate
            significantly worse, RET-8), ``"continue"`` (not significant yet: keep collecting) or
            ``"insufficient_sample"`` (fewer than ``min_sample`` paired observations; never decides).
        n: number of paired observations.
        mean_difference: ``mean(|err_champion| - |err_candidate|)`` over all ``n`` pairs, kg/ha;
            positive = candidate better (``0.0`` when ``n == 0``).
        likelihood_ratio: ``Λ_n``, the mixture likelihood ratio after all ``n`` observations
            (unitless, > 0; 1.0 when ``n < 2``; capped at ``exp(700)``).
        p_value: the always-valid p-value ``min(1, 1 / max_{min_sample <= k <= n} Λ_k)``; for
            ``n < min_sample`` it is ``min(1, 1 / Λ_n)``, for information only.
        alpha: significance level of the test.
        min_sample: minimum number of paired observations before any decision (RET-7).
        reason: one human-readable sentence with the numbers behind the decision.
    """

    decision: str
    n: int
    mean_difference: float
    likelihood_ratio: float
    p_value: float
    alpha: float
    min_sample: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON-serialisable Python values (all floats are finite)."""
        return {
            "decision": self.decision,
            "n": int(self.n),
            "mean_difference": float(self.mean_difference),
            "likelihood_ratio": float(self.likelihood_ratio),
            "p_value": float(self.p_value),
            "alpha": float(self.alpha),
            "min_sample": int(self.min_sample),
            "reason": self.reason,
        }


def mixture_log_likelihood_ratio(n: ArrayLike, mean: ArrayLike, variance: ArrayLike, tau2: ArrayLike) -> np.ndarray:
    """``log Λ_n`` of the normal-mixture SPRT (Robbins 1970; Johari, Pekelis & Walsh 2017, eq. (11)).

    ``log Λ = ½ log(σ² / (σ² + n τ²)) + n² τ² d̄² / (2 σ² (σ² + n τ²))``, element-wise over broadcast
    arrays.

    Args:
        n: number of observations (``>= 1``).
        mean: sample mean ``d̄`` of the differences, kg/ha.
        variance: variance ``σ²`` of one difference, (kg/ha)², ``> 0``.
        tau2: mixing variance ``τ²``, (kg/ha)², ``> 0``.

    Returns:
        ``log Λ`` as a float64 array of the broadcast shape (0-d for scalars).
    """
    n_ = np.asarray(n, dtype=np.float64)
    mean_ = np.asarray(mean, dtype=np.float64)
    var_ = np.asarray(variance, dtype=np.float64)
    tau2_ = np.asarray(tau2, dtype=np.float64)
    spread = var_ + n_ * tau2_
    result: np.ndarray = 0.5 * np.log(var_ / spread) + (n_ * n_ * tau2_ * mean_ * mean_) / (2.0 * var_ * spread)
    return result


def _abs_errors(values: ArrayLike, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or ±inf); pass only scored fields")
    return np.abs(array)


def _prefix_statistics(d: np.ndarray, tau: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Prefix means and ``log Λ_k`` for ``k = 2..n`` (index ``k - 2``), vectorised.

    The prefix variance uses cumulative sums of the differences centred on their overall mean (the
    variance does not change with a shift; centring avoids the cancellation of ``Σx² - (Σx)²/k``).
    """
    n = d.shape[0]
    shift = float(d.mean())
    centred = d - shift
    k = np.arange(1, n + 1, dtype=np.float64)
    s1 = np.cumsum(centred)
    s2 = np.cumsum(centred * centred)
    centred_mean = s1 / k
    k, s1, s2, centred_mean = k[1:], s1[1:], s2[1:], centred_mean[1:]
    variance = np.maximum((s2 - s1 * centred_mean) / (k - 1.0), VARIANCE_FLOOR)
    mean = centred_mean + shift
    tau2 = variance if tau is None else np.full_like(variance, tau * tau)
    return mean, mixture_log_likelihood_ratio(k, mean, variance, tau2)


def _p_from_log_lr(log_lr: np.ndarray) -> np.ndarray:
    """``min(1, 1/Λ)`` from ``log Λ`` without overflow."""
    result: np.ndarray = np.exp(-np.maximum(log_lr, 0.0))
    return result


def msprt(
    champion_abs_errors: ArrayLike,
    candidate_abs_errors: ArrayLike,
    *,
    alpha: float = 0.05,
    min_sample: int = 30,
    tau: float | None = None,
    unit: str = "kg/ha",
) -> SequentialDecision:
    """Always-valid mSPRT of candidate vs. champion on paired absolute errors (RET-7, RET-8).

    Args:
        champion_abs_errors: absolute errors of the champion, kg/ha, shape ``(n,)``, in the order the
            fields were observed (oldest first; the order defines the sequence of peeks).
        candidate_abs_errors: absolute errors of the candidate on the same fields, same order, shape
            ``(n,)``. Pairs are matched by position. Absolute values are taken, so signed residuals
            are accepted too.
        alpha: significance level in (0, 1) (RET-7: 0.05).
        min_sample: minimum number of pairs before any decision (RET-7 "minimum sample size"), an
            integer ``>= 2`` (a variance needs two observations).
        tau: standard deviation of the normal mixing distribution over the effect, kg/ha, ``> 0``;
            ``None`` (default) uses the plug-in standard deviation of the differences at each peek
            (a unit-free standard-normal prior on the standardised effect; see the module docstring).
        unit: the target unit of the errors (the model spec's ``target_unit``), named in the reason.

    Returns:
        :class:`SequentialDecision` with ``d_i = |err_champion_i| - |err_candidate_i|``:

        * ``"insufficient_sample"`` when ``n < min_sample``, whatever the evidence;
        * otherwise ``p_n = min(1, 1 / max_{min_sample <= k <= n} Λ_k)``; when ``p_n < alpha`` the
          decision is ``"promote"`` if the mean difference at the first peek ``k*`` with
          ``p_k* < alpha`` is positive (candidate better) and ``"rollback"`` if it is negative;
        * ``"continue"`` otherwise.

    Raises:
        ValueError: an input that is not numeric, not 1-D or holds NaN/±inf (the message names the
            argument); inputs of different lengths; ``alpha`` outside (0, 1); ``min_sample`` not an
            integer ``>= 2``; ``tau`` not a finite number ``> 0``.
    """
    if isinstance(alpha, bool) or not (isinstance(alpha, int | float) and 0.0 < float(alpha) < 1.0):
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    alpha = float(alpha)
    if isinstance(min_sample, bool) or not isinstance(min_sample, int | np.integer) or min_sample < 2:
        raise ValueError(f"min_sample must be an integer >= 2, got {min_sample!r}")
    min_sample = int(min_sample)
    if tau is not None:
        if isinstance(tau, bool) or not (isinstance(tau, int | float) and math.isfinite(tau) and tau > 0.0):
            raise ValueError(f"tau must be a finite number > 0 (kg/ha) or None, got {tau!r}")
        tau = float(tau)
    champion = _abs_errors(champion_abs_errors, "champion_abs_errors")
    candidate = _abs_errors(candidate_abs_errors, "candidate_abs_errors")
    if champion.shape[0] != candidate.shape[0]:
        raise ValueError(
            f"champion_abs_errors ({champion.shape[0]}) and candidate_abs_errors ({candidate.shape[0]}) must have "
            "the same length: they are paired by position"
        )
    d = champion - candidate
    n = int(d.shape[0])
    mean_difference = float(d.mean()) if n else 0.0
    prior = "tau = plug-in sd" if tau is None else f"tau = {tau:g} {unit}"

    def decide(decision: str, log_lr_n: float, p_value: float, reason: str) -> SequentialDecision:
        return SequentialDecision(
            decision=decision,
            n=n,
            mean_difference=mean_difference,
            likelihood_ratio=math.exp(min(log_lr_n, LOG_LR_CAP)),
            p_value=float(p_value),
            alpha=alpha,
            min_sample=min_sample,
            reason=reason,
        )

    if n < 2:
        return decide(
            "insufficient_sample", 0.0, 1.0,
            f"insufficient sample: {n} paired observation(s) < minimum {min_sample}; no decision yet (RET-7)",
        )
    means, log_lr = _prefix_statistics(d, tau)
    log_lr_n = float(log_lr[-1])
    if n < min_sample:
        p_info = float(_p_from_log_lr(log_lr[-1:])[0])
        return decide(
            "insufficient_sample", log_lr_n, p_info,
            f"insufficient sample: {n} paired observations < minimum {min_sample}; mean difference "
            f"{mean_difference:+.2f} {unit}, no decision before the minimum sample (RET-7)",
        )
    window = log_lr[min_sample - 2:]  # peeks k = min_sample..n
    p_k = _p_from_log_lr(window)
    p_value = float(p_k.min())
    if not p_value < alpha:
        return decide(
            "continue", log_lr_n, p_value,
            f"continue: mean difference {mean_difference:+.2f} {unit} over {n} paired fields is not significant "
            f"(always-valid p {p_value:.3g} >= alpha {alpha:g}; mSPRT, {prior}; RET-7)",
        )
    first = int(np.argmax(p_k < alpha))
    stop_k = first + min_sample
    stop_mean = float(means[min_sample - 2 + first])
    at = f"at observation {stop_k} (mean {stop_mean:+.2f} {unit})"
    if stop_mean > 0.0:
        return decide(
            "promote", log_lr_n, p_value,
            f"promote: candidate better by {mean_difference:+.2f} {unit} on average over {n} paired fields; "
            f"always-valid p {p_value:.3g} < alpha {alpha:g}, first significant {at} (mSPRT, {prior}; RET-7)",
        )
    return decide(
        "rollback", log_lr_n, p_value,
        f"rollback: candidate worse by {-mean_difference:.2f} {unit} on average over {n} paired fields; "
        f"always-valid p {p_value:.3g} < alpha {alpha:g}, first significant {at} (mSPRT, {prior}; RET-8)",
    )


def canary_slice(field_id: str, share: float, salt: str = "") -> bool:
    """Whether a field belongs to the canary slice: a deterministic, hash-based traffic split.

    ``u = (int.from_bytes(sha256((salt + field_id).encode("utf-8")).digest()[:8], "big") >> 11) / 2**53``,
    a uniform number in ``[0, 1)`` (the top 53 bits of the digest: exact in a float, never 1.0); the
    field is in the slice when ``u < share``. The same field id and salt always give the same answer
    (across processes and machines: no Python ``hash``), and over many fields the slice holds a
    fraction ``share`` of them. Use a salt per tenant and candidate version, ending with a separator
    (``"tenant-a:v7:"``), so that consecutive canaries do not always hit the same fields.

    Args:
        field_id: the field's identifier.
        share: fraction of the fields in the canary, in ``[0, 1]`` (0: none, 1: all).
        salt: prefix mixed into the hash.

    Raises:
        ValueError: ``share`` is not a number in ``[0, 1]`` (NaN included).
    """
    if isinstance(share, bool) or not isinstance(share, int | float) or not (0.0 <= float(share) <= 1.0):
        raise ValueError(f"share must be a number in [0, 1], got {share!r}")
    digest = hashlib.sha256((salt + field_id).encode("utf-8")).digest()
    u = (int.from_bytes(digest[:8], "big") >> 11) / 2.0**53
    return u < float(share)
