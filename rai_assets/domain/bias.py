"""Subgroup bias audit of a yield model's held-out predictions (requirement REG-5).

For every configured subgroup (e.g. land tenure, rice variety, village, farm-size class) the
held-out rows are split by group value and per-group metrics are computed with fairlearn's
:class:`fairlearn.metrics.MetricFrame`: row count, mean absolute error, mean signed residual
(``mean(pred - actual)``, positive = over-prediction), mean prediction and mean actual, all in the
target unit (kg/ha). Two disparity measures are then checked among the groups that are large enough:

* **MAE ratio** ``min_g MAE_g / max_g MAE_g`` — fairlearn's ``MetricFrame.ratio(method="between_groups")``
  definition (smallest group value over largest; 1.0 = parity, 0.0 = one group is predicted perfectly
  and another is not). When every group has MAE 0 the ratio is taken as 1.0 (parity).
* **Signed-residual gap** ``max_g r̄_g - min_g r̄_g`` — fairlearn's
  ``MetricFrame.difference(method="between_groups")`` definition (largest minus smallest group value)
  applied to the mean signed residual ``r̄_g``, compared with the thresholds as a fraction of the overall
  mean actual yield of all audited rows. A large gap means the model systematically over-predicts one
  group relative to another (e.g. favours owners over share-croppers).

The MAE gap ``max - min`` (kg/ha) is reported for information only.

Reference: fairlearn user guide, "Assessment / Performing a fairness assessment" and the
``MetricFrame.difference`` / ``MetricFrame.ratio`` API docs (https://fairlearn.org).

Pure module: numpy, pandas, fairlearn and scikit-learn's metric function only; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, count, mean_prediction
from numpy.typing import ArrayLike
from sklearn.metrics import mean_absolute_error

__all__ = [
    "MISSING_GROUP",
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
STATUS_TOO_SMALL = "too_small"


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

    Raises:
        ValueError: on construction if a value is outside its range.
    """

    min_group_size: int = 5
    min_mae_ratio: float = 0.5
    max_signed_residual_gap: float = 0.25

    def __post_init__(self) -> None:
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
    """Metrics of one group of one subgroup, all in the target unit (kg/ha).

    Attributes:
        subgroup: subgroup name, e.g. ``"tenure"``.
        group: the group value as a string, e.g. ``"owner"`` (:data:`MISSING_GROUP` for missing values).
        n: number of held-out rows in the group.
        mae: mean absolute error ``mean(|pred - actual|)``.
        mean_signed_residual: ``mean(pred - actual)``; positive means over-prediction.
        mean_prediction: ``mean(pred)``.
        mean_actual: ``mean(actual)``.
        status: ``"ok"`` or ``"too_small"`` (``n < min_group_size``; excluded from the verdict).
    """

    subgroup: str
    group: str
    n: int
    mae: float
    mean_signed_residual: float
    mean_prediction: float
    mean_actual: float
    status: str


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
        mae_gap: ``max MAE - min MAE`` (kg/ha; fairlearn difference ``between_groups``).
        signed_residual_gap: ``max - min`` of the groups' mean signed residuals (kg/ha).
        passed: ``True``/``False`` verdict; ``None`` when not assessable (fewer than 2 ``"ok"`` groups).
        reasons: human-readable explanations of failures, exclusions and non-assessability.
    """

    subgroup: str
    column: str
    groups: tuple[GroupStats, ...]
    mae_ratio: float | None
    mae_gap: float | None
    signed_residual_gap: float | None
    passed: bool | None
    reasons: tuple[str, ...]


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
        passed: ``True`` when every assessable subgroup passed. Not-assessable subgroups do not fail
            the audit but are listed in ``reasons``; if no subgroup is assessable the audit passes
            vacuously and says so in ``reasons``.
        reasons: every subgroup's reasons, prefixed by the subgroup name.
    """

    subgroups: tuple[SubgroupResult, ...]
    thresholds: BiasThresholds
    n: int
    passed: bool
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (non-finite floats become ``None``; tuples become lists)."""
        return {
            "n": self.n,
            "passed": self.passed,
            "reasons": list(self.reasons),
            "thresholds": _json_float(asdict(self.thresholds)),
            "subgroups": [_json_float(asdict(result)) for result in self.subgroups],
        }

    def markdown_table(self) -> str:
        """Two markdown tables: per (subgroup, group) statistics (n, MAE, mean signed residual, mean
        prediction, mean actual, status; kg/ha), then per-subgroup MAE ratio, MAE gap, signed-residual
        gap and verdict, followed by the overall verdict and reasons."""
        lines = [
            "| Subgroup | Group | n | MAE (kg/ha) | Mean signed residual (kg/ha) | "
            "Mean prediction (kg/ha) | Mean actual (kg/ha) | Status |",
            "|---|---|---:|---:|---:|---:|---:|---|",
        ]
        for result in self.subgroups:
            for g in result.groups:
                lines.append(
                    f"| {_md(g.subgroup)} | {_md(g.group)} | {g.n} | {g.mae:,.1f} | "
                    f"{g.mean_signed_residual:+,.1f} | {g.mean_prediction:,.1f} | {g.mean_actual:,.1f} | "
                    f"{g.status} |"
                )
        lines += [
            "",
            f"| Subgroup | Column | MAE ratio (min/max, ≥ {self.thresholds.min_mae_ratio:g}) | "
            f"MAE gap (kg/ha) | Signed residual gap (kg/ha) | Result |",
            "|---|---|---:|---:|---:|---|",
        ]
        verdicts = {True: "pass", False: "FAIL", None: "not assessable"}
        for result in self.subgroups:
            lines.append(
                f"| {_md(result.subgroup)} | {_md(result.column)} | {_fmt(result.mae_ratio, '.3f')} | "
                f"{_fmt(result.mae_gap, ',.1f')} | {_fmt(result.signed_residual_gap, ',.1f')} | "
                f"{verdicts[result.passed]} |"
            )
        lines += [
            "",
            f"Bias audit (n={self.n}, min group size {self.thresholds.min_group_size}, max signed residual "
            f"gap {self.thresholds.max_signed_residual_gap:.0%} of mean actual): "
            f"{'PASSED' if self.passed else 'FAILED'}",
        ]
        lines += [f"- {_md(reason)}" for reason in self.reasons]
        return "\n".join(lines)


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


def _mean_signed_residual(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    return float(np.mean(np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float)))


def _mean_actual(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    return float(np.mean(np.asarray(y_true, dtype=float)))


_METRICS = {
    "n": count,
    "mae": mean_absolute_error,
    "mean_signed_residual": _mean_signed_residual,
    "mean_prediction": mean_prediction,
    "mean_actual": _mean_actual,
}


def _group_labels(column: pd.Series) -> pd.Series:
    """Group values as strings, missing values as :data:`MISSING_GROUP`; positional (RangeIndex)."""
    as_object = column.astype(object)
    labels = as_object.where(as_object.notna(), MISSING_GROUP).map(str)
    return labels.reset_index(drop=True)


def _audit_subgroup(
    name: str,
    column: str,
    actual: np.ndarray,
    predicted: np.ndarray,
    labels: pd.Series,
    thresholds: BiasThresholds,
    overall_mean_actual: float,
) -> SubgroupResult:
    frame = MetricFrame(metrics=_METRICS, y_true=actual, y_pred=predicted, sensitive_features=labels)
    by_group = frame.by_group
    stats: list[GroupStats] = []
    for group_value, row in by_group.iterrows():
        n = round(float(row["n"]))
        stats.append(
            GroupStats(
                subgroup=name,
                group=str(group_value),
                n=n,
                mae=float(row["mae"]),
                mean_signed_residual=float(row["mean_signed_residual"]),
                mean_prediction=float(row["mean_prediction"]),
                mean_actual=float(row["mean_actual"]),
                status=STATUS_OK if n >= thresholds.min_group_size else STATUS_TOO_SMALL,
            )
        )

    reasons: list[str] = []
    too_small = [g for g in stats if g.status == STATUS_TOO_SMALL]
    if too_small:
        listed = ", ".join(f"{g.group!r} (n={g.n})" for g in too_small)
        reasons.append(f"{name}: excluded group(s) below min size {thresholds.min_group_size}: {listed}")

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
        )

    best = min(ok, key=lambda g: g.mae)
    worst = max(ok, key=lambda g: g.mae)
    # fairlearn between-groups ratio (min/max) and difference (max - min); 0/0 is parity.
    mae_ratio = 1.0 if worst.mae == 0.0 else best.mae / worst.mae
    mae_gap = worst.mae - best.mae
    low = min(ok, key=lambda g: g.mean_signed_residual)
    high = max(ok, key=lambda g: g.mean_signed_residual)
    signed_gap = high.mean_signed_residual - low.mean_signed_residual
    signed_gap_fraction = signed_gap / abs(overall_mean_actual)

    passed = True
    if mae_ratio < thresholds.min_mae_ratio:
        passed = False
        reasons.append(
            f"{name}: MAE ratio {mae_ratio:.3f} < {thresholds.min_mae_ratio:g} — group {worst.group!r} "
            f"MAE {worst.mae:,.1f} kg/ha vs group {best.group!r} MAE {best.mae:,.1f} kg/ha"
        )
    if signed_gap_fraction > thresholds.max_signed_residual_gap:
        passed = False
        reasons.append(
            f"{name}: signed residual gap {signed_gap:,.1f} kg/ha = {signed_gap_fraction:.1%} of mean actual "
            f"{overall_mean_actual:,.1f} kg/ha > {thresholds.max_signed_residual_gap:.1%} — group "
            f"{high.group!r} mean residual {high.mean_signed_residual:+,.1f} vs group {low.group!r} "
            f"{low.mean_signed_residual:+,.1f} kg/ha"
        )
    return SubgroupResult(
        subgroup=name,
        column=column,
        groups=tuple(stats),
        mae_ratio=mae_ratio,
        mae_gap=mae_gap,
        signed_residual_gap=signed_gap,
        passed=passed,
        reasons=tuple(reasons),
    )


def audit_bias(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: pd.DataFrame,
    subgroup_columns: Mapping[str, str],
    thresholds: BiasThresholds = BiasThresholds(),
) -> BiasAudit:
    """Audit held-out predictions for subgroup disparities (REG-5).

    Per subgroup, fairlearn's ``MetricFrame`` computes per-group n, MAE, mean signed residual,
    mean prediction and mean actual; groups with ``n < thresholds.min_group_size`` are marked
    ``"too_small"`` and excluded. Among the rest, the subgroup passes when
    ``min MAE / max MAE >= thresholds.min_mae_ratio`` and
    ``(max - min mean signed residual) / |overall mean actual| <= thresholds.max_signed_residual_gap``
    (definitions and sources in the module docstring). Missing group values form the group
    :data:`MISSING_GROUP`.

    Args:
        y_true: actual target values, shape ``(n,)`` (kg/ha).
        y_pred: predicted values, shape ``(n,)`` (kg/ha).
        groups: frame with ``n`` rows aligned by position with ``y_true`` (its index is ignored),
            holding the subgroup columns.
        subgroup_columns: subgroup name -> column of ``groups``, e.g.
            ``{"tenure": "farm.tenure", "variety": "farm.variety"}``; at least one entry.
        thresholds: pass/fail thresholds (project defaults; configurable per tenant).

    Returns:
        :class:`BiasAudit`.

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

    results = tuple(
        _audit_subgroup(
            name,
            column,
            actual,
            predicted,
            _group_labels(groups[column]),
            thresholds,
            overall_mean_actual,
        )
        for name, column in subgroup_columns.items()
    )
    reasons = [reason for result in results for reason in result.reasons]
    if all(result.passed is None for result in results):
        reasons.append("no subgroup was assessable; the audit passes vacuously")
    passed = all(result.passed is not False for result in results)
    return BiasAudit(
        subgroups=results,
        thresholds=thresholds,
        n=int(actual.size),
        passed=passed,
        reasons=tuple(reasons),
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
