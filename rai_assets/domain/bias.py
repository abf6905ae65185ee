"""Subgroup bias audit of a yield model's held-out predictions (requirement REG-5).

For every configured subgroup (e.g. land tenure, rice variety, village, farm-size class) the
held-out rows are split by group value; fairlearn's :class:`fairlearn.metrics.MetricFrame` computes each
group's row count and mean absolute error, one pandas ``groupby`` over the same labels its mean signed residual
(``mean(pred - actual)``, positive = over-prediction), mean prediction and mean actual, all in the
target unit (the spec's, e.g. kg/ha; :func:`audit_bias` takes it as ``unit`` and every table and reason
names it). Two disparity measures are then checked among the groups that are large enough:

* **MAE ratio** ``min_g MAE_g / max_g MAE_g`` — fairlearn's ``MetricFrame.ratio(method="between_groups")``
  definition (smallest group value over largest; 1.0 = parity, 0.0 = one group is predicted perfectly
  and another is not). When every group has MAE 0 the ratio is taken as 1.0 (parity).
* **Signed-residual gap** ``max_g r̄_g - min_g r̄_g`` — fairlearn's
  ``MetricFrame.difference(method="between_groups")`` definition (largest minus smallest group value)
  applied to the mean signed residual ``r̄_g``, compared with the thresholds as a fraction of the overall
  mean actual yield of all audited rows. A large gap means the model systematically over-predicts one
  group relative to another (e.g. favours owners over share-croppers).

The MAE gap ``max - min`` (target unit) is reported for information only.

Uncertainty (small samples): every group's MAE, its ratio to the subgroup's overall MAE and its mean
signed residual come with a 95 % **stratified percentile bootstrap** interval (Efron & Tibshirani 1993,
*An Introduction to the Bootstrap*, ch. 13; stratified resampling: Davison & Hinkley 1997, *Bootstrap
Methods and their Application*, §3.2): rows are resampled with replacement inside each cell
(group x season x tenant, when the frame has ``season_id`` / ``tenant_id`` columns), so the group sizes
and the season (and tenant) composition of a pooled window stay as observed. The bootstrap rather than a
t-interval because the quantities compared are *ratios* of MAEs (a group vs another, a group vs the
overall it is part of), which have no simple t form, and absolute errors are skewed with a bound at 0
that the percentile interval respects. Seeded (``BiasThresholds.seed``), so the signed report is
reproducible. Caveat: at very small n the percentile interval is too narrow (its spread is shrunk by
about ``sqrt((n-1)/n)``, 0.89 at n = 5), which is why groups below ``min_group_size`` are not assessed.

Verdict (evidence of disparity, not noise): for every pair of assessable groups the MAE ratio
(lower/higher point MAE) and the signed-residual gap (higher minus lower mean signed residual, over
``|mean actual|``) get a percentile interval at level ``1 - alpha/m`` (Bonferroni over the
``m = k(k-1)/2`` pairs, Dunn 1961, *JASA* 56:52-64). A subgroup **fails** only when some pair's interval
lies entirely beyond the threshold (ratio upper end ``< min_mae_ratio``, or gap lower end
``> max_signed_residual_gap``); a point estimate beyond the threshold whose interval still reaches the
acceptable side is reported as not significant. A subgroup with fewer than two groups of
``min_group_size`` rows is ``not_assessable``. The audit is ``"fail"`` when a subgroup fails,
``"inconclusive"`` when no subgroup could be assessed (never a vacuous pass), ``"pass"`` otherwise;
``passed`` is ``verdict == "pass"``.

Pooling: the audit takes any frame of held-out (out-of-sample) rows. The ``bias_audit`` asset pools
the candidate's held-out season with rolling-origin backtests of earlier seasons of the window; a
cohort can pool tenants by passing a ``tenant_id`` column. The per-season and per-tenant row counts are
reported.

Reference: fairlearn user guide, "Assessment / Performing a fairness assessment" and the
``MetricFrame.difference`` / ``MetricFrame.ratio`` API docs (https://fairlearn.org).

Pure module: numpy, pandas, fairlearn and scikit-learn's metric function only; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, count
from numpy.typing import ArrayLike
from sklearn.metrics import mean_absolute_error

__all__ = [
    "MISSING_GROUP",
    "VERDICTS",
    "BiasAudit",
    "BiasThresholds",
    "GroupStats",
    "SubgroupResult",
    "audit_bias",
    "size_class",
]

#: Group label given to rows whose subgroup value is missing (NaN/None), so they are audited as a group.
MISSING_GROUP = "<missing>"

STATUS_OK = "ok"
STATUS_TOO_SMALL = "not_assessable"
#: Audit verdicts.
VERDICTS = ("pass", "fail", "inconclusive")


@dataclass(frozen=True)
class BiasThresholds:
    """Pass/fail thresholds of the subgroup bias audit (REG-5).

    These are **project defaults**, not values from the literature; each tenant may override them in
    its model spec. The disparity measures follow fairlearn's between-groups definitions
    (``MetricFrame.ratio``: min/max, 1.0 = parity; ``MetricFrame.difference``: max - min).

    Attributes:
        min_group_size: groups with fewer held-out rows than this are reported with status
            ``"too_small"`` and excluded from the verdict (their metrics are too noisy). Default 5.
        min_mae_ratio: the MAE ratio ``min/max`` over the assessable groups must be ``>=`` this,
            i.e. the worst group's MAE may be at most ``1/min_mae_ratio`` times the best group's.
            Default 0.5 (worst group at most twice the error of the best). In ``[0, 1]``.
        max_signed_residual_gap: the gap ``max - min`` between the groups' mean signed residuals,
            divided by ``|overall mean actual|``, must be ``<=`` this. Default 0.25 (25 % of the mean
            yield). ``>= 0``.
        alpha: family-wise error level of the pairwise intervals of one subgroup (Bonferroni); the
            per-group intervals are at ``1 - alpha``. In (0, 1).
        n_bootstrap: bootstrap resamples (default 2,000; percentile intervals need >= 1,000, Efron &
            Tibshirani 1993 §13.3).
        seed: bootstrap seed (reproducible signed reports).
        window_seasons: seasons of out-of-sample residuals the ``bias_audit`` asset pools (the current
            one and the ones before it; default 3). Not used by :func:`audit_bias` itself.

    Raises:
        ValueError: on construction if a value is outside its range.
    """

    min_group_size: int = 5
    min_mae_ratio: float = 0.5
    max_signed_residual_gap: float = 0.25
    alpha: float = 0.05
    n_bootstrap: int = 2000
    seed: int = 20240601
    window_seasons: int = 3

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha}")
        if self.n_bootstrap < 100:
            raise ValueError(f"n_bootstrap must be >= 100, got {self.n_bootstrap}")
        if self.window_seasons < 1:
            raise ValueError(f"window_seasons must be >= 1, got {self.window_seasons}")
        if self.min_group_size < 1:
            raise ValueError(f"min_group_size must be >= 1, got {self.min_group_size}")
        if not 0.0 <= self.min_mae_ratio <= 1.0:
            raise ValueError(f"min_mae_ratio must be in [0, 1], got {self.min_mae_ratio}")
        if not (math.isfinite(self.max_signed_residual_gap) and self.max_signed_residual_gap >= 0.0):
            raise ValueError(
                f"max_signed_residual_gap must be finite and >= 0, got {self.max_signed_residual_gap}"
            )


@dataclass(frozen=True)
class GroupStats:
    """Metrics of one group of one subgroup, all in the target unit (the audit's ``unit``).

    Attributes:
        subgroup: subgroup name, e.g. ``"tenure"``.
        group: the group value as a string, e.g. ``"owner"`` (:data:`MISSING_GROUP` for missing values).
        n: number of held-out rows in the group.
        mae: mean absolute error ``mean(|pred - actual|)``.
        mean_signed_residual: ``mean(pred - actual)``; positive means over-prediction.
        mean_prediction: ``mean(pred)``.
        mean_actual: ``mean(actual)``.
        status: ``"ok"`` or ``"not_assessable"`` (``n < min_group_size``; excluded from the verdict).
        mae_ci: 95 % stratified percentile-bootstrap interval of ``mae`` (``(low, high)``).
        mae_ratio_to_overall: ``mae / MAE of all rows of the subgroup``.
        mae_ratio_to_overall_ci: its 95 % interval.
        mean_signed_residual_ci: 95 % interval of ``mean_signed_residual``.
    """

    subgroup: str
    group: str
    n: int
    mae: float
    mean_signed_residual: float
    mean_prediction: float
    mean_actual: float
    status: str
    mae_ci: tuple[float, float] | None = None
    mae_ratio_to_overall: float | None = None
    mae_ratio_to_overall_ci: tuple[float, float] | None = None
    mean_signed_residual_ci: tuple[float, float] | None = None


@dataclass(frozen=True)
class SubgroupResult:
    """Audit result of one subgroup.

    Disparity fields are computed over groups with status ``"ok"`` only and are ``None`` when fewer
    than two such groups exist.

    Attributes:
        subgroup: subgroup name, e.g. ``"tenure"``.
        column: column of the ``groups`` frame holding the group values, e.g. ``"farm.tenure"``.
        groups: per-group statistics, sorted by group value.
        mae_ratio: ``min MAE / max MAE`` (unitless, 1.0 = parity; fairlearn ratio ``between_groups``).
        mae_gap: ``max MAE - min MAE`` (target unit; fairlearn difference ``between_groups``).
        signed_residual_gap: ``max - min`` of the groups' mean signed residuals (target unit).
        passed: ``True``/``False`` verdict; ``None`` when not assessable (fewer than 2 ``"ok"`` groups).
        reasons: human-readable explanations of failures, exclusions and non-assessability.
        verdict: ``"pass"``, ``"fail"`` or ``"not_assessable"``.
        mae_ratio_ci: Bonferroni-adjusted interval of ``mae_ratio`` (best vs worst group).
        signed_residual_gap_ci: Bonferroni-adjusted interval of ``signed_residual_gap`` (target unit).
        not_assessable_groups: the groups below ``min_group_size``.
    """

    subgroup: str
    column: str
    groups: tuple[GroupStats, ...]
    mae_ratio: float | None
    mae_gap: float | None
    signed_residual_gap: float | None
    passed: bool | None
    reasons: tuple[str, ...]
    verdict: str = "not_assessable"
    mae_ratio_ci: tuple[float, float] | None = None
    signed_residual_gap_ci: tuple[float, float] | None = None
    not_assessable_groups: tuple[str, ...] = ()


def _json_float(value: Any) -> Any:
    """Replace non-finite floats by ``None`` (recursively), for ``json.dumps(allow_nan=False)``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_float(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_float(v) for v in value]
    return value


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


@dataclass(frozen=True)
class BiasAudit:
    """Result of :func:`audit_bias` over all configured subgroups (REG-5).

    Attributes:
        subgroups: one :class:`SubgroupResult` per configured subgroup, in configuration order.
        thresholds: the thresholds applied.
        n: number of audited held-out rows.
        passed: ``verdict == "pass"``: no subgroup fails *and* at least one was assessable (the REG-5
            gate). Not-assessable subgroups are listed in ``reasons``.
        reasons: every subgroup's reasons, prefixed by the subgroup name.
        verdict: ``"pass"``, ``"fail"`` or ``"inconclusive"`` (no subgroup could be assessed).
        seasons: rows per season (``season_id`` column of the groups frame), in order of appearance.
        tenants: rows per tenant (``tenant_id`` column), when pooled over a cohort.
        n_subgroups_assessable: subgroups with at least two assessable groups.
        n_groups: (subgroup, group) pairs seen; ``n_groups_assessable`` of them had ``min_group_size`` rows.
        unit: the target unit every value and reason is in (the model spec's ``target_unit``).
    """

    subgroups: tuple[SubgroupResult, ...]
    thresholds: BiasThresholds
    n: int
    passed: bool
    reasons: tuple[str, ...]
    verdict: str = "pass"
    seasons: tuple[tuple[str, int], ...] = ()
    tenants: tuple[tuple[str, int], ...] = ()
    n_subgroups_assessable: int = 0
    n_groups: int = 0
    n_groups_assessable: int = 0
    unit: str = field(kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (non-finite floats become ``None``; tuples become lists)."""
        return {
            "n": self.n,
            "unit": self.unit,
            "verdict": self.verdict,
            "passed": self.passed,
            "reasons": list(self.reasons),
            "seasons": {season: n for season, n in self.seasons},
            "tenants": {tenant: n for tenant, n in self.tenants},
            "n_subgroups_assessable": self.n_subgroups_assessable,
            "n_groups": self.n_groups,
            "n_groups_assessable": self.n_groups_assessable,
            "thresholds": _json_float(asdict(self.thresholds)),
            "subgroups": [_json_float(asdict(result)) for result in self.subgroups],
        }

    def markdown_table(self) -> str:
        """Two markdown tables: per (subgroup, group) statistics (n, MAE with 95 % interval, MAE ratio to
        the subgroup's overall MAE with interval, mean signed residual with interval, mean prediction,
        mean actual, status; in :attr:`unit`), then per-subgroup MAE ratio and signed-residual gap with their
        Bonferroni intervals and verdict, followed by the overall verdict and reasons."""
        u = self.unit
        lines = [
            f"| Subgroup | Group | n | MAE ({u}) [95% CI] | MAE / overall [95% CI] | "
            f"Mean signed residual ({u}) [95% CI] | Mean prediction ({u}) | Mean actual ({u}) | Status |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for result in self.subgroups:
            for g in result.groups:
                lines.append(
                    f"| {_md(g.subgroup)} | {_md(g.group)} | {g.n} | {g.mae:,.1f} {_ci(g.mae_ci, ',.0f')} | "
                    f"{_fmt(g.mae_ratio_to_overall, '.2f')} {_ci(g.mae_ratio_to_overall_ci, '.2f')} | "
                    f"{g.mean_signed_residual:+,.1f} {_ci(g.mean_signed_residual_ci, '+,.0f')} | "
                    f"{g.mean_prediction:,.1f} | {g.mean_actual:,.1f} | {g.status} |"
                )
        lines += [
            "",
            f"| Subgroup | Column | MAE ratio (min/max, ≥ {self.thresholds.min_mae_ratio:g}) [CI] | "
            f"MAE gap ({u}) | Signed residual gap ({u}) [CI] | Result |",
            "|---|---|---:|---:|---:|---|",
        ]
        for result in self.subgroups:
            lines.append(
                f"| {_md(result.subgroup)} | {_md(result.column)} | {_fmt(result.mae_ratio, '.3f')} "
                f"{_ci(result.mae_ratio_ci, '.2f')} | {_fmt(result.mae_gap, ',.1f')} | "
                f"{_fmt(result.signed_residual_gap, ',.1f')} {_ci(result.signed_residual_gap_ci, ',.0f')} | "
                f"{result.verdict} |"
            )
        seasons = ", ".join(f"{s}: {n}" for s, n in self.seasons) or "—"
        lines += [
            "",
            f"Bias audit (n={self.n}; seasons {seasons}; min group size {self.thresholds.min_group_size}; "
            f"{self.n_groups_assessable} of {self.n_groups} groups assessable; max signed residual gap "
            f"{self.thresholds.max_signed_residual_gap:.0%} of mean actual): {self.verdict.upper()}",
        ]
        lines += [f"- {_md(reason)}" for reason in self.reasons]
        return "\n".join(lines)


def _ci(interval: tuple[float, float] | None, spec: str) -> str:
    return "" if interval is None else f"[{interval[0]:{spec}}, {interval[1]:{spec}}]"


def _finite_1d(values: ArrayLike, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {array.shape}")
    n_bad = int(np.count_nonzero(~np.isfinite(array)))
    if n_bad:
        raise ValueError(f"{name} contains {n_bad} non-finite value(s) (NaN or ±inf) out of {array.size}")
    return array


#: The per-group metrics fairlearn's ``MetricFrame`` computes (n, MAE). The three per-group *means* (signed residual,
#: prediction, actual) come from one pandas ``groupby`` over the same labels (:func:`_group_means`): a MetricFrame
#: costs about 2 ms more a metric on a village-season (it also evaluates every between-group difference and ratio
#: of each), and an audit runs one a subgroup, four subgroups a run.
_METRICS = {
    "n": count,
    "mae": mean_absolute_error,
}


def _group_means(labels: np.ndarray, order: Sequence[str], columns: Mapping[str, np.ndarray]
                 ) -> dict[str, dict[str, float]]:
    """Per group of ``order`` (MetricFrame's ``by_group`` index as strings), the mean of each of ``columns``
    (arrays aligned with ``labels``, the rows' group labels as strings), keyed by the column's name.

    Raises:
        ValueError: a group in ``order`` has no row in ``labels`` (the two were not built from the same labels).
    """
    means = pd.DataFrame({**columns, "group": labels}).groupby("group", sort=False).mean()
    missing = [g for g in order if g not in means.index]
    if missing:
        raise ValueError(f"groups {missing} of the MetricFrame have no rows among the audited labels")
    by_group = {str(group): {str(name): float(value) for name, value in row.items()}
                for group, row in means.to_dict("index").items()}
    return {group: by_group[group] for group in order}


def _group_labels(column: pd.Series) -> pd.Series:
    """Group values as strings, missing values as :data:`MISSING_GROUP`; positional (RangeIndex)."""
    as_object = column.astype(object)
    labels = as_object.where(as_object.notna(), MISSING_GROUP).map(str)
    return labels.reset_index(drop=True)


def _percentile(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def _bootstrap_group_means(
    abs_errors: np.ndarray,
    signed: np.ndarray,
    labels: np.ndarray,
    strata: np.ndarray,
    groups: Sequence[str],
    thresholds: BiasThresholds,
    seed_offset: int,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """Stratified bootstrap replicates ``(B,)`` of every group's MAE and mean signed residual, and of
    the overall MAE of the rows: rows are resampled inside each (group, stratum) cell."""
    rng = np.random.default_rng([thresholds.seed, seed_offset])
    b = thresholds.n_bootstrap
    abs_sums = {g: np.zeros(b) for g in groups}
    signed_sums = {g: np.zeros(b) for g in groups}
    sizes = dict.fromkeys(groups, 0)
    cells = pd.DataFrame({"g": labels, "s": strata}).groupby(["g", "s"], sort=True).indices
    for key, cell in cells.items():
        group = str(key[0]) if isinstance(key, tuple) else str(key)
        index = np.asarray(cell)
        draw = index[rng.integers(0, index.size, size=(b, index.size))]
        abs_sums[group] += abs_errors[draw].sum(axis=1)
        signed_sums[group] += signed[draw].sum(axis=1)
        sizes[group] += index.size
    total = sum(abs_sums.values())
    mae = {g: abs_sums[g] / sizes[g] for g in groups}
    mean_signed = {g: signed_sums[g] / sizes[g] for g in groups}
    return mae, mean_signed, np.asarray(total) / sum(sizes.values())


def _audit_subgroup(
    name: str,
    column: str,
    actual: np.ndarray,
    predicted: np.ndarray,
    labels: pd.Series,
    thresholds: BiasThresholds,
    overall_mean_actual: float,
    strata: np.ndarray | None = None,
    seed_offset: int = 0,
    *,
    unit: str,
) -> SubgroupResult:
    frame = MetricFrame(metrics=_METRICS, y_true=actual, y_pred=predicted, sensitive_features=labels)
    by_group = frame.by_group
    label_array = labels.to_numpy(dtype=object).astype(str)
    order = [str(g) for g in by_group.index]
    signed = predicted - actual
    means = _group_means(label_array, order, {"mean_signed_residual": signed, "mean_prediction": predicted,
                                              "mean_actual": actual})
    abs_errors = np.abs(signed)
    boot_mae, boot_signed, boot_overall = _bootstrap_group_means(
        abs_errors, signed, label_array, np.zeros(actual.size, dtype=np.int64) if strata is None else strata,
        order, thresholds, seed_offset,
    )
    overall_mae = float(abs_errors.mean())
    level = 1.0 - thresholds.alpha
    stats: list[GroupStats] = []
    for group_value, row in by_group.iterrows():
        group = str(group_value)
        group_means = means[group]
        n = round(float(row["n"]))
        mae = float(row["mae"])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio_replicates = boot_mae[group] / boot_overall
        stats.append(
            GroupStats(
                subgroup=name,
                group=group,
                n=n,
                mae=mae,
                mean_signed_residual=group_means["mean_signed_residual"],
                mean_prediction=group_means["mean_prediction"],
                mean_actual=group_means["mean_actual"],
                status=STATUS_OK if n >= thresholds.min_group_size else STATUS_TOO_SMALL,
                mae_ci=_percentile(boot_mae[group], level),
                mae_ratio_to_overall=mae / overall_mae if overall_mae > 0 else None,
                mae_ratio_to_overall_ci=_percentile(ratio_replicates, level) if overall_mae > 0 else None,
                mean_signed_residual_ci=_percentile(boot_signed[group], level),
            )
        )

    reasons: list[str] = []
    too_small = [g for g in stats if g.status == STATUS_TOO_SMALL]
    if too_small:
        listed = ", ".join(f"{g.group!r} (n={g.n})" for g in too_small)
        reasons.append(f"{name}: excluded group(s) below min size {thresholds.min_group_size}: {listed}")
    not_assessable = tuple(g.group for g in too_small)

    ok = [g for g in stats if g.status == STATUS_OK]
    if len(ok) < 2:
        reasons.append(
            f"{name}: not assessable — {len(ok)} group(s) with n >= {thresholds.min_group_size}, need 2"
        )
        return SubgroupResult(
            subgroup=name,
            column=column,
            groups=tuple(stats),
            mae_ratio=None,
            mae_gap=None,
            signed_residual_gap=None,
            passed=None,
            reasons=tuple(reasons),
            verdict="not_assessable",
            not_assessable_groups=not_assessable,
        )

    n_pairs = len(ok) * (len(ok) - 1) // 2
    pair_level = 1.0 - thresholds.alpha / n_pairs  # Bonferroni over the pairs (Dunn 1961)
    scale = abs(overall_mean_actual)
    failed = False
    headline_ratio_ci: tuple[float, float] | None = None
    headline_gap_ci: tuple[float, float] | None = None
    headline_ratio, headline_gap = 1.0, 0.0
    best = min(ok, key=lambda g: g.mae)
    worst = max(ok, key=lambda g: g.mae)
    low = min(ok, key=lambda g: g.mean_signed_residual)
    high = max(ok, key=lambda g: g.mean_signed_residual)
    for i, a in enumerate(ok):
        for c in ok[i + 1:]:
            lo_g, hi_g = (a, c) if a.mae <= c.mae else (c, a)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = np.where(boot_mae[hi_g.group] > 0, boot_mae[lo_g.group] / boot_mae[hi_g.group], 1.0)
            ratio = 1.0 if hi_g.mae == 0.0 else lo_g.mae / hi_g.mae
            ratio_ci = _percentile(ratios, pair_level)
            under, over = (a, c) if a.mean_signed_residual <= c.mean_signed_residual else (c, a)
            gaps = boot_signed[over.group] - boot_signed[under.group]
            gap = over.mean_signed_residual - under.mean_signed_residual
            gap_ci = _percentile(gaps, pair_level)
            # the headline intervals are those of the pairs with the smallest ratio / largest gap
            if headline_ratio_ci is None or ratio < headline_ratio:
                headline_ratio, headline_ratio_ci = ratio, ratio_ci
            if headline_gap_ci is None or gap > headline_gap:
                headline_gap, headline_gap_ci = gap, gap_ci
            if ratio < thresholds.min_mae_ratio:
                if ratio_ci[1] < thresholds.min_mae_ratio:
                    failed = True
                    reasons.append(
                        f"{name}: MAE ratio {ratio:.3f} < {thresholds.min_mae_ratio:g}, interval "
                        f"[{ratio_ci[0]:.2f}, {ratio_ci[1]:.2f}] ({pair_level:.1%}) entirely below — group "
                        f"{hi_g.group!r} MAE {hi_g.mae:,.1f} {unit} vs group {lo_g.group!r} MAE {lo_g.mae:,.1f} {unit}"
                    )
                else:
                    reasons.append(
                        f"{name}: MAE ratio {ratio:.3f} of {lo_g.group!r}/{hi_g.group!r} is below "
                        f"{thresholds.min_mae_ratio:g} but not significantly (interval [{ratio_ci[0]:.2f}, "
                        f"{ratio_ci[1]:.2f}] reaches it)"
                    )
            if gap / scale > thresholds.max_signed_residual_gap:
                if gap_ci[0] / scale > thresholds.max_signed_residual_gap:
                    failed = True
                    reasons.append(
                        f"{name}: signed residual gap {gap:,.1f} {unit} = {gap / scale:.1%} of mean actual "
                        f"{overall_mean_actual:,.1f} {unit} > {thresholds.max_signed_residual_gap:.1%}, interval "
                        f"[{gap_ci[0]:,.0f}, {gap_ci[1]:,.0f}] {unit} entirely above — group "
                        f"{over.group!r} mean residual {over.mean_signed_residual:+,.1f} vs group {under.group!r} "
                        f"{under.mean_signed_residual:+,.1f} {unit}"
                    )
                else:
                    reasons.append(
                        f"{name}: signed residual gap {gap / scale:.1%} of mean actual between {over.group!r} and "
                        f"{under.group!r} exceeds {thresholds.max_signed_residual_gap:.1%} but not significantly "
                        f"(interval [{gap_ci[0]:,.0f}, {gap_ci[1]:,.0f}] {unit})"
                    )

    mae_ratio = 1.0 if worst.mae == 0.0 else best.mae / worst.mae
    return SubgroupResult(
        subgroup=name,
        column=column,
        groups=tuple(stats),
        mae_ratio=mae_ratio,
        mae_gap=worst.mae - best.mae,
        signed_residual_gap=high.mean_signed_residual - low.mean_signed_residual,
        passed=not failed,
        reasons=tuple(reasons),
        verdict="fail" if failed else "pass",
        mae_ratio_ci=headline_ratio_ci,
        signed_residual_gap_ci=headline_gap_ci,
        not_assessable_groups=not_assessable,
    )


def _counts(column: pd.Series) -> tuple[tuple[str, int], ...]:
    counts = column.astype(str).value_counts(sort=False)
    return tuple((str(k), int(v)) for k, v in counts.items())


def audit_bias(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: pd.DataFrame,
    subgroup_columns: Mapping[str, str],
    thresholds: BiasThresholds = BiasThresholds(),
    *,
    unit: str,
) -> BiasAudit:
    """Audit out-of-sample predictions for subgroup disparities (REG-5), with bootstrap intervals.

    Per subgroup, fairlearn's ``MetricFrame`` computes per-group n and MAE, a pandas groupby the mean signed residual,
    mean prediction and mean actual; groups with ``n < thresholds.min_group_size`` are
    ``"not_assessable"`` and excluded. Among the rest, a pair of groups fails only when its
    Bonferroni-adjusted bootstrap interval lies entirely beyond a threshold: MAE ratio
    (lower/higher) below ``min_mae_ratio``, or signed-residual gap over ``|overall mean actual|`` above
    ``max_signed_residual_gap`` (definitions and sources in the module docstring). Missing group
    values form the group :data:`MISSING_GROUP`.

    Args:
        y_true: actual target values, shape ``(n,)``, in ``unit``.
        y_pred: out-of-sample predicted values, shape ``(n,)``, in ``unit``.
        groups: frame with ``n`` rows aligned by position with ``y_true`` (its index is ignored),
            holding the subgroup columns and, for a pooled window, ``season_id`` and optionally
            ``tenant_id`` (bootstrap strata; reported counts).
        subgroup_columns: subgroup name -> column of ``groups``; at least one entry.
        thresholds: thresholds, interval level and bootstrap settings (configurable per tenant).
        unit: the target unit of the model's spec (``ModelSpec.target_unit``, e.g. ``"kg/ha"``);
            it labels the tables and reasons and is stored in the audit.

    Returns:
        :class:`BiasAudit` with verdict ``"pass"``, ``"fail"`` or ``"inconclusive"``.

    Raises:
        ValueError: if a configured column is missing from ``groups`` (named); if ``y_true``, ``y_pred``
            and ``groups`` differ in length; if the inputs are empty or contain non-finite values; if
            ``subgroup_columns`` is empty; or if the overall mean actual is 0 (the relative
            signed-residual gap is then undefined).
    """
    actual = _finite_1d(y_true, "y_true")
    predicted = _finite_1d(y_pred, "y_pred")
    if actual.size != predicted.size or actual.size != len(groups):
        raise ValueError(
            f"length mismatch: y_true has {actual.size} values, y_pred {predicted.size}, "
            f"groups {len(groups)} rows"
        )
    if actual.size == 0:
        raise ValueError("cannot audit empty input (0 rows)")
    if not subgroup_columns:
        raise ValueError("subgroup_columns is empty: configure at least one subgroup to audit")
    missing = [f"{col!r} (subgroup {name!r})" for name, col in subgroup_columns.items() if col not in groups]
    if missing:
        raise ValueError(f"subgroup column(s) missing from groups frame: {', '.join(missing)}")
    overall_mean_actual = float(actual.mean())
    if overall_mean_actual == 0.0:
        raise ValueError("overall mean of y_true is 0; the relative signed-residual gap is undefined")

    strata_columns = [c for c in ("season_id", "tenant_id") if c in groups.columns]
    strata = None
    if strata_columns:
        keys = groups[strata_columns].astype(str).agg("|".join, axis=1).reset_index(drop=True)
        strata = pd.factorize(keys)[0]
    results = tuple(
        _audit_subgroup(
            name,
            column,
            actual,
            predicted,
            _group_labels(groups[column]),
            thresholds,
            overall_mean_actual,
            strata,
            seed_offset,
            unit=unit,
        )
        for seed_offset, (name, column) in enumerate(subgroup_columns.items())
    )
    reasons = [reason for result in results for reason in result.reasons]
    n_assessable = sum(result.verdict != "not_assessable" for result in results)
    if any(result.verdict == "fail" for result in results):
        verdict = "fail"
    elif n_assessable == 0:
        verdict = "inconclusive"
        reasons.append(
            "no subgroup was assessable (every subgroup has fewer than two groups of "
            f"{thresholds.min_group_size} rows): the audit is inconclusive, not a pass"
        )
    else:
        verdict = "pass"
    all_groups = [g for result in results for g in result.groups]
    return BiasAudit(
        subgroups=results,
        thresholds=thresholds,
        n=int(actual.size),
        passed=verdict == "pass",
        reasons=tuple(reasons),
        verdict=verdict,
        seasons=_counts(groups["season_id"]) if "season_id" in groups.columns else (),
        tenants=_counts(groups["tenant_id"]) if "tenant_id" in groups.columns else (),
        n_subgroups_assessable=n_assessable,
        n_groups=len(all_groups),
        n_groups_assessable=sum(g.status == STATUS_OK for g in all_groups),
        unit=unit,
    )


def size_class(size_ha: ArrayLike, edges: Sequence[float], labels: Sequence[str]) -> np.ndarray:
    """Farm-size class from cultivated area, with right-open bins ``[e0, e1), [e1, e2), ...``.

    Example: ``edges=[0, 0.5, 1.0, inf]``, ``labels=["small", "medium", "large"]`` maps 0.2 ha to
    "small", 0.5 ha to "medium" and 3 ha to "large". The cut-offs are a per-tenant configuration choice.

    Args:
        size_ha: farm areas in hectares, shape ``(n,)``.
        edges: strictly increasing bin edges (ha), at least two; ``inf`` is allowed as the last edge.
        labels: one label per bin, ``len(labels) == len(edges) - 1``.

    Returns:
        object array of shape ``(n,)`` holding the label of each area.

    Raises:
        ValueError: if ``len(labels) != len(edges) - 1``, ``edges`` are not strictly increasing or
            contain NaN, or any area is NaN or outside ``[edges[0], edges[-1])`` (the count is given).
    """
    edge_array = np.asarray(edges, dtype=float)
    if edge_array.ndim != 1 or edge_array.size < 2:
        raise ValueError(f"edges must be a 1-D sequence of at least 2 values, got {list(edges)}")
    if len(labels) != edge_array.size - 1:
        raise ValueError(f"len(labels) must be len(edges) - 1 = {edge_array.size - 1}, got {len(labels)}")
    if np.isnan(edge_array).any() or not np.all(np.diff(edge_array) > 0):
        raise ValueError(f"edges must be strictly increasing, got {list(edges)}")
    sizes = np.asarray(size_ha, dtype=float)
    if sizes.ndim != 1:
        raise ValueError(f"size_ha must be 1-dimensional, got shape {sizes.shape}")
    outside = np.isnan(sizes) | (sizes < edge_array[0]) | (sizes >= edge_array[-1])
    n_outside = int(np.count_nonzero(outside))
    if n_outside:
        raise ValueError(
            f"{n_outside} size value(s) are NaN or outside [{edge_array[0]:g}, {edge_array[-1]:g}) ha"
        )
    index = np.searchsorted(edge_array, sizes, side="right") - 1
    return np.asarray(labels, dtype=object)[index]
