"""Model evaluation on a held-out season: error metrics, baselines and a model comparison.

Pure functions over numpy/pandas; no Dagster, no I/O, no MLflow.

The candidate model of a tenant is scored on the held-out (latest) season and compared with

* the current champion, when there is one,
* a naive baseline (the tenant's mean yield over the earlier seasons), and
* a Cobb-Douglas production function fitted by OLS on the earlier seasons, the classic
  econometric specification for the RiceFarms panel.

All metrics are in the unit of the target, kg/ha for yield, except R², which is unitless.

Formulas (standard definitions, e.g. Hyndman & Athanasopoulos, *Forecasting: Principles and
Practice*, 3rd ed., §5.8 "Evaluating point forecast accuracy"; R² is the coefficient of determination;
numerically identical to ``sklearn.metrics.mean_absolute_error``, ``root_mean_squared_error`` and
``r2_score``)::

    MAE  = (1/n) Σ |y_i - ŷ_i|
    RMSE = sqrt((1/n) Σ (y_i - ŷ_i)²)
    R²   = 1 - Σ (y_i - ŷ_i)² / Σ (y_i - ȳ)²

Unlike ``sklearn.metrics.r2_score`` (which forces 1.0 or 0.0 when the actual values are constant),
R² is reported as ``None`` when it is undefined: fewer than two rows or zero variance in the actuals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

__all__ = [
    "CobbDouglasModel",
    "ModelComparison",
    "RegressionMetrics",
    "compare_models",
    "fit_cobb_douglas",
    "naive_baseline_predictions",
    "regression_metrics",
]


def _as_finite_1d(values: ArrayLike, name: str) -> np.ndarray:
    """Convert ``values`` to a 1-D float array, raising ``ValueError`` naming ``name`` if it is not
    1-D or contains NaN/±inf values (the message gives how many)."""
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


@dataclass(frozen=True)
class RegressionMetrics:
    """Point-prediction error metrics of one model on one evaluation set.

    Attributes:
        n: number of evaluated rows.
        mae: mean absolute error, in the target's unit (kg/ha for yield).
        rmse: root mean squared error, in the target's unit.
        r2: coefficient of determination (unitless); ``None`` when ``n < 2`` or the actual values
            have zero variance, where it is undefined.
    """

    n: int
    mae: float
    rmse: float
    r2: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        """Return ``{"n", "mae", "rmse", "r2"}`` as plain Python scalars (JSON-serialisable)."""
        return {"n": self.n, "mae": self.mae, "rmse": self.rmse, "r2": self.r2}


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> RegressionMetrics:
    """Compute MAE, RMSE and R² of ``y_pred`` against ``y_true``.

    Args:
        y_true: actual values, shape ``(n,)``, target unit (kg/ha).
        y_pred: predicted values, shape ``(n,)``, same unit.

    Returns:
        :class:`RegressionMetrics`; see the module docstring for the formulas.

    Raises:
        ValueError: if either input is empty, not 1-D, contains non-finite values (the message names
            the argument and the number of bad values), or if the lengths differ.
    """
    actual = _as_finite_1d(y_true, "y_true")
    predicted = _as_finite_1d(y_pred, "y_pred")
    if actual.size != predicted.size:
        raise ValueError(f"length mismatch: y_true has {actual.size} values, y_pred has {predicted.size}")
    if actual.size == 0:
        raise ValueError("cannot compute metrics on empty input (y_true and y_pred have 0 values)")

    residual = actual - predicted
    n = int(actual.size)
    mae = float(np.mean(np.abs(residual)))
    rmse = float(np.sqrt(np.mean(residual**2)))
    r2: float | None = None
    # Exact comparison on purpose: a mean of identical floats can differ from them by one ulp, so a
    # sum-of-squares test would misreport constant actuals as having (tiny) variance.
    if n >= 2 and not np.all(actual == actual[0]):
        ss_res = float(np.sum(residual**2))
        ss_tot = float(np.sum((actual - actual.mean()) ** 2))
        r2 = 1.0 - ss_res / ss_tot
    return RegressionMetrics(n=n, mae=mae, rmse=rmse, r2=r2)


def naive_baseline_predictions(history_target: ArrayLike, n: int) -> np.ndarray:
    """Naive forecast: the tenant's mean target over earlier seasons, repeated ``n`` times.

    This is the "climatology"/historical-mean benchmark of forecast evaluation (Hyndman &
    Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed., §5.2 "average method"); a
    candidate that cannot beat it has no skill.

    Args:
        history_target: target values of the seasons before the held-out one, shape ``(m,)``,
            target unit (kg/ha).
        n: number of predictions wanted (rows of the held-out season), ``n >= 0``.

    Returns:
        float array of shape ``(n,)`` filled with ``mean(history_target)``.

    Raises:
        ValueError: if ``history_target`` is empty, not 1-D or has non-finite values, or ``n < 0``.
    """
    history = _as_finite_1d(history_target, "history_target")
    if history.size == 0:
        raise ValueError("history_target is empty: no earlier season to compute a naive baseline from")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return np.full(int(n), float(history.mean()), dtype=float)


# --------------------------------------------------------------------------------------------------
# Cobb-Douglas production function
# --------------------------------------------------------------------------------------------------


def _require_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"column(s) missing from frame: {', '.join(repr(c) for c in missing)}")


def _log_inputs(frame: pd.DataFrame, inputs: Sequence[str], log_offset: float) -> np.ndarray:
    """Design matrix ``[1, ln(X_1 + offset), ..., ln(X_k + offset)]``, shape ``(rows, k + 1)``.

    Raises ``ValueError`` naming the column if an input is non-numeric, non-finite or has
    ``X + offset <= 0`` (log undefined)."""
    _require_columns(frame, inputs)
    design = np.ones((len(frame), len(inputs) + 1), dtype=float)
    for j, column in enumerate(inputs, start=1):
        try:
            values = frame[column].to_numpy(dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"input column {column!r} is not numeric: {exc}") from exc
        n_bad = int(np.count_nonzero(~np.isfinite(values)))
        if n_bad:
            raise ValueError(f"input column {column!r} has {n_bad} non-finite value(s) (NaN or ±inf)")
        shifted = values + log_offset
        n_nonpos = int(np.count_nonzero(shifted <= 0))
        if n_nonpos:
            raise ValueError(
                f"input column {column!r} has {n_nonpos} value(s) with X + log_offset <= 0 "
                f"(log_offset={log_offset}); the logarithm is undefined"
            )
        design[:, j] = np.log(shifted)
    return design


@dataclass(frozen=True)
class CobbDouglasModel:
    """Cobb-Douglas production function fitted by OLS:
    ``ln(Q) = b0 + Σ_i b_i ln(X_i + offset)``, i.e. ``Q = e^b0 · Π_i (X_i + offset)^b_i``.

    Source: Cobb & Douglas (1928), "A Theory of Production", *American Economic Review* 18(1);
    the classic rice-farm specification (e.g. Croissant & Millo, *Panel Data Econometrics with R*,
    2018, and the ``plm`` ``RiceFarms`` examples: log output on log land, labour, seed, fertiliser).
    The ``b_i`` are output elasticities. ``log_offset`` is added to every input before the logarithm
    so that zero inputs (e.g. no pesticide) are admissible; with ``log_offset=0`` the model is the
    textbook Cobb-Douglas.

    Attributes:
        inputs: input column names, in coefficient order.
        coefficients: ``(b0, b1, ..., bk)``; ``b0`` is the intercept (log of total factor productivity).
        log_offset: constant added to each input before taking logs (input unit).
    """

    inputs: tuple[str, ...]
    coefficients: tuple[float, ...]
    log_offset: float

    def __post_init__(self) -> None:
        if len(self.coefficients) != len(self.inputs) + 1:
            raise ValueError(
                f"expected {len(self.inputs) + 1} coefficients (intercept + one per input), "
                f"got {len(self.coefficients)}"
            )

    def predict_output(self, frame: pd.DataFrame) -> np.ndarray:
        """Predicted output ``Q̂ = exp(X b)``, shape ``(len(frame),)``, in the unit of the output the
        model was fitted on (e.g. kg of rice; divide by area for kg/ha).

        No retransformation (smearing) correction is applied, so ``Q̂`` estimates the conditional
        geometric mean / median of ``Q`` rather than its mean (Duan, 1983).

        Raises:
            ValueError: if an input column is missing, non-numeric, non-finite, or ``X + offset <= 0``.
        """
        design = _log_inputs(frame, self.inputs, self.log_offset)
        return np.asarray(np.exp(design @ np.asarray(self.coefficients, dtype=float)), dtype=float)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description: inputs, intercept, elasticities per input, log_offset."""
        return {
            "model": "cobb_douglas",
            "inputs": list(self.inputs),
            "intercept": self.coefficients[0],
            "elasticities": dict(zip(self.inputs, self.coefficients[1:], strict=True)),
            "coefficients": list(self.coefficients),
            "log_offset": self.log_offset,
        }


def fit_cobb_douglas(
    frame: pd.DataFrame,
    output: str,
    inputs: Sequence[str],
    log_offset: float = 1.0,
) -> CobbDouglasModel:
    """Fit a :class:`CobbDouglasModel` by ordinary least squares on logs.

    Solves ``min_b ||ln(Q) - X b||²`` with ``numpy.linalg.lstsq``, where ``X`` has an intercept
    column and one column ``ln(X_i + log_offset)`` per input (Cobb & Douglas, 1928).

    Args:
        frame: training rows (earlier seasons), one row per farm-season.
        output: column of the output ``Q`` (e.g. kg of rice); must be strictly positive.
        inputs: input columns (e.g. area in ha, labour in hours, seed and fertiliser in kg); at least one,
            no duplicates.
        log_offset: constant added to each input before the logarithm (default 1.0, so zero inputs
            are allowed); must be finite and ``>= 0``.

    Returns:
        The fitted model.

    Raises:
        ValueError: if a column is missing (named); if ``output`` has non-finite or non-positive values
            (count given); if an input is non-numeric, non-finite or ``X + log_offset <= 0``; if there are
            fewer rows than ``len(inputs) + 1`` coefficients; or if the design matrix is rank deficient
            (a constant or collinear input), where the elasticities are not identified.
    """
    input_names = tuple(inputs)
    if not input_names:
        raise ValueError("fit_cobb_douglas needs at least one input column")
    if len(set(input_names)) != len(input_names):
        raise ValueError(f"duplicate input columns: {list(input_names)}")
    if not np.isfinite(log_offset) or log_offset < 0:
        raise ValueError(f"log_offset must be finite and >= 0, got {log_offset}")
    _require_columns(frame, [output, *input_names])

    try:
        q = frame[output].to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"output column {output!r} is not numeric: {exc}") from exc
    n_nonfinite = int(np.count_nonzero(~np.isfinite(q)))
    if n_nonfinite:
        raise ValueError(f"output column {output!r} has {n_nonfinite} non-finite value(s) (NaN or ±inf)")
    n_nonpos = int(np.count_nonzero(q <= 0))
    if n_nonpos:
        raise ValueError(f"output column {output!r} has {n_nonpos} non-positive value(s); ln(Q) is undefined")

    n_coef = len(input_names) + 1
    if len(frame) < n_coef:
        raise ValueError(
            f"need at least {n_coef} rows to fit {n_coef} coefficients (intercept + {len(input_names)} "
            f"inputs), got {len(frame)}"
        )

    design = _log_inputs(frame, input_names, log_offset)
    beta, _residuals, rank, _sv = np.linalg.lstsq(design, np.log(q), rcond=None)
    if int(rank) < n_coef:
        raise ValueError(
            f"design matrix is rank deficient (rank {int(rank)} < {n_coef}): an input is constant or "
            f"collinear with others, so the elasticities are not identified"
        )
    return CobbDouglasModel(
        inputs=input_names,
        coefficients=tuple(float(b) for b in beta),
        log_offset=float(log_offset),
    )


# --------------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _metrics_row(label: str, metrics: RegressionMetrics | None, note: str) -> str:
    note = note.replace("|", "\\|").replace("\n", " ")
    if metrics is None:
        return f"| {label} | — | — | — | — | {note} |"
    return (
        f"| {label} | {metrics.n} | {_fmt(metrics.mae, 1)} | {_fmt(metrics.rmse, 1)} | "
        f"{_fmt(metrics.r2, 3)} | {note} |"
    )


@dataclass(frozen=True)
class ModelComparison:
    """Candidate vs. champion vs. baselines, all scored on the same held-out season (kg/ha).

    Build it with :func:`compare_models`, which derives ``beats_naive`` and ``beats_champion``.

    Attributes:
        candidate: metrics of the newly trained model.
        champion: metrics of the current production model on the same rows; ``None`` when the tenant
            has no champion yet.
        naive: metrics of :func:`naive_baseline_predictions`.
        cobb_douglas: metrics of the Cobb-Douglas benchmark; ``None`` if it could not be fitted.
        cobb_douglas_note: why the Cobb-Douglas benchmark is missing (required when it is ``None``),
            or an optional remark otherwise.
        beats_naive: ``candidate.mae < naive.mae`` (strict).
        beats_champion: ``candidate.mae < champion.mae`` as computed by :func:`compare_models`;
            ``None`` exactly when there is no champion.

    Raises:
        ValueError: on construction, if ``beats_naive`` disagrees with the MAEs, if ``beats_champion``
            is ``None`` while a champion is given (or the reverse), or if ``cobb_douglas`` is ``None``
            without a note.
    """

    candidate: RegressionMetrics
    champion: RegressionMetrics | None
    naive: RegressionMetrics
    cobb_douglas: RegressionMetrics | None
    cobb_douglas_note: str | None
    beats_naive: bool
    beats_champion: bool | None

    def __post_init__(self) -> None:
        if self.beats_naive != (self.candidate.mae < self.naive.mae):
            raise ValueError(
                f"beats_naive={self.beats_naive} contradicts candidate MAE {self.candidate.mae} "
                f"vs naive MAE {self.naive.mae}"
            )
        if (self.champion is None) != (self.beats_champion is None):
            raise ValueError("beats_champion must be None exactly when there is no champion")
        if self.cobb_douglas is None and not self.cobb_douglas_note:
            raise ValueError("cobb_douglas_note must explain why the Cobb-Douglas benchmark is missing")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable nested dict of all fields (metrics as :meth:`RegressionMetrics.to_dict`)."""
        return {
            "candidate": self.candidate.to_dict(),
            "champion": None if self.champion is None else self.champion.to_dict(),
            "naive": self.naive.to_dict(),
            "cobb_douglas": None if self.cobb_douglas is None else self.cobb_douglas.to_dict(),
            "cobb_douglas_note": self.cobb_douglas_note,
            "beats_naive": self.beats_naive,
            "beats_champion": self.beats_champion,
        }

    def markdown_table(self, unit: str, champion_note: str | None = None) -> str:
        """Markdown table with one row each for candidate, champion, naive baseline and Cobb-Douglas
        (columns n, MAE, RMSE in ``unit`` — the spec's target unit, kg/ha for rice-yield-v1 —, R², note),
        followed by the verdict lines. ``champion_note`` names the champion (or why it is not compared);
        without one the row says "no champion yet" only when there are no champion metrics."""
        note = champion_note if champion_note is not None else ("" if self.champion else "no champion yet")
        lines = [
            f"| Model | n | MAE ({unit}) | RMSE ({unit}) | R² | Note |",
            "|---|---:|---:|---:|---:|---|",
            _metrics_row("candidate", self.candidate, ""),
            _metrics_row("champion", self.champion, note),
            _metrics_row("naive baseline", self.naive, ""),
            _metrics_row("Cobb-Douglas", self.cobb_douglas, self.cobb_douglas_note or ""),
        ]
        lines.append("")
        lines.append(f"Beats naive baseline: {'yes' if self.beats_naive else 'no'}")
        champion_verdict = {None: "n/a (no champion)", True: "yes", False: "no"}[self.beats_champion]
        lines.append(f"Beats champion: {champion_verdict}")
        return "\n".join(lines)


def compare_models(
    candidate: RegressionMetrics,
    naive: RegressionMetrics,
    champion: RegressionMetrics | None = None,
    cobb_douglas: RegressionMetrics | None = None,
    cobb_douglas_note: str | None = None,
) -> ModelComparison:
    """Build a :class:`ModelComparison`, deriving the verdicts from MAE (kg/ha).

    ``beats_naive = candidate.mae < naive.mae``; ``beats_champion = candidate.mae < champion.mae``
    (``None`` without a champion). Strict inequalities: a tie does not beat. If ``cobb_douglas`` is
    ``None`` and no note is given, the note defaults to ``"not fitted"``.
    """
    note = cobb_douglas_note
    if cobb_douglas is None and not note:
        note = "not fitted"
    return ModelComparison(
        candidate=candidate,
        champion=champion,
        naive=naive,
        cobb_douglas=cobb_douglas,
        cobb_douglas_note=note,
        beats_naive=candidate.mae < naive.mae,
        beats_champion=None if champion is None else candidate.mae < champion.mae,
    )
