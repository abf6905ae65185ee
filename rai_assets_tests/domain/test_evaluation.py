"""Tests for rai_assets.domain.evaluation — model evaluation on the held-out season.

Expected numbers are computed by hand in the comments next to each assertion.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from rai_assets.domain.evaluation import (
    CobbDouglasModel,
    ModelComparison,
    RegressionMetrics,
    compare_models,
    fit_cobb_douglas,
    naive_baseline_predictions,
    regression_metrics,
)

# --------------------------------------------------------------------------------------------------
# regression_metrics (model evaluation on held-out season)
# --------------------------------------------------------------------------------------------------


def test_regression_metrics_hand_computed_example() -> None:
    # residuals actual - pred = (-500, 0, 1000)
    # MAE  = (500 + 0 + 1000) / 3 = 500
    # RMSE = sqrt((250_000 + 0 + 1_000_000) / 3) = sqrt(416_666.67) = 645.4972...
    # R²   = 1 - 1_250_000 / SS_tot, SS_tot = 1e6 + 0 + 1e6 = 2e6  ->  0.375
    m = regression_metrics([3000.0, 4000.0, 5000.0], [3500.0, 4000.0, 4000.0])
    assert m.n == 3
    assert m.mae == pytest.approx(500.0)
    assert m.rmse == pytest.approx(math.sqrt(1_250_000 / 3))
    assert m.rmse == pytest.approx(645.4972243679028)
    assert m.r2 == pytest.approx(0.375)


def test_regression_metrics_perfect_prediction() -> None:
    m = regression_metrics(np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0, 4.0]))
    assert (m.mae, m.rmse, m.r2) == (0.0, 0.0, 1.0)


def test_r2_is_none_for_constant_actuals() -> None:
    # 0.1 * 3 / 3 != 0.1 in floating point, so a variance test could see "tiny" variance; must be None.
    m = regression_metrics([0.1, 0.1, 0.1], [0.0, 0.1, 0.3])
    assert m.r2 is None
    assert m.mae == pytest.approx(0.1)  # (0.1 + 0 + 0.2) / 3


def test_r2_is_none_for_single_row() -> None:
    m = regression_metrics([4200.0], [4000.0])
    assert m == RegressionMetrics(n=1, mae=200.0, rmse=200.0, r2=None)


def test_regression_metrics_to_dict_is_json_serialisable() -> None:
    d = regression_metrics([1.0, 1.0], [2.0, 0.0]).to_dict()
    assert d == {"n": 2, "mae": 1.0, "rmse": 1.0, "r2": None}
    json.dumps(d, allow_nan=False)


def test_regression_metrics_length_mismatch() -> None:
    with pytest.raises(ValueError, match=r"length mismatch: y_true has 3 values, y_pred has 2"):
        regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0])


def test_regression_metrics_empty() -> None:
    with pytest.raises(ValueError, match="empty"):
        regression_metrics([], [])


def test_regression_metrics_non_finite_names_argument_and_count() -> None:
    with pytest.raises(ValueError, match=r"y_pred contains 2 non-finite value\(s\)"):
        regression_metrics([1.0, 2.0, 3.0], [np.nan, 2.0, np.inf])
    with pytest.raises(ValueError, match=r"y_true contains 1 non-finite value\(s\)"):
        regression_metrics([1.0, np.nan, 3.0], [1.0, 2.0, 3.0])


def test_regression_metrics_rejects_2d() -> None:
    with pytest.raises(ValueError, match="1-dimensional"):
        regression_metrics([[1.0, 2.0]], [[1.0, 2.0]])


# --------------------------------------------------------------------------------------------------
# naive baseline
# --------------------------------------------------------------------------------------------------


def test_naive_baseline_is_mean_of_earlier_seasons() -> None:
    # (3000 + 4000 + 5000 + 6000) / 4 = 4500
    pred = naive_baseline_predictions(pd.Series([3000.0, 4000.0, 5000.0, 6000.0]), 3)
    assert pred.shape == (3,)
    np.testing.assert_array_equal(pred, [4500.0, 4500.0, 4500.0])


def test_naive_baseline_zero_rows() -> None:
    assert naive_baseline_predictions([1.0], 0).shape == (0,)


def test_naive_baseline_errors() -> None:
    with pytest.raises(ValueError, match="history_target is empty"):
        naive_baseline_predictions([], 3)
    with pytest.raises(ValueError, match="n must be >= 0"):
        naive_baseline_predictions([1.0], -1)
    with pytest.raises(ValueError, match=r"history_target contains 1 non-finite"):
        naive_baseline_predictions([1.0, np.nan], 2)


def test_held_out_season_evaluation_against_naive_baseline() -> None:
    # Model evaluation on held-out season: train seasons 1-2, hold out season 3.
    panel = pd.DataFrame(
        {
            "season": [1, 1, 2, 2, 3, 3],
            "yield_kg_ha": [3000.0, 5000.0, 3400.0, 4600.0, 3200.0, 4800.0],
        }
    )
    history = panel.loc[panel.season < 3, "yield_kg_ha"]
    held_out = panel.loc[panel.season == 3, "yield_kg_ha"]
    # naive = (3000 + 5000 + 3400 + 4600) / 4 = 4000 -> errors 800, 800 -> MAE 800
    naive = regression_metrics(held_out, naive_baseline_predictions(history, len(held_out)))
    assert naive.mae == pytest.approx(800.0)
    # candidate errors 100 and 300 -> MAE 200
    candidate = regression_metrics(held_out, [3300.0, 4500.0])
    assert candidate.mae == pytest.approx(200.0)
    assert compare_models(candidate, naive).beats_naive is True


# --------------------------------------------------------------------------------------------------
# Cobb-Douglas benchmark
# --------------------------------------------------------------------------------------------------


def _synthetic_cd(rows: int = 40, offset: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(20240601)
    x1 = rng.uniform(0.2, 3.0, rows)  # e.g. area (ha)
    x2 = rng.uniform(10.0, 500.0, rows)  # e.g. fertiliser (kg)
    # Q = exp(1.0) * (X1 + offset)^0.6 * (X2 + offset)^0.3, noise free
    q = np.exp(1.0) * (x1 + offset) ** 0.6 * (x2 + offset) ** 0.3
    return pd.DataFrame({"size": x1, "urea": x2, "goutput": q})


def test_cobb_douglas_recovers_known_coefficients() -> None:
    frame = _synthetic_cd()
    model = fit_cobb_douglas(frame, "goutput", ["size", "urea"], log_offset=0.0)
    assert model.inputs == ("size", "urea")
    assert model.log_offset == 0.0
    np.testing.assert_allclose(model.coefficients, (1.0, 0.6, 0.3), atol=1e-6)
    np.testing.assert_allclose(model.predict_output(frame), frame["goutput"], rtol=1e-9)


def test_cobb_douglas_recovers_coefficients_with_default_offset() -> None:
    frame = _synthetic_cd(offset=1.0)
    model = fit_cobb_douglas(frame, "goutput", ["size", "urea"])  # log_offset defaults to 1.0
    np.testing.assert_allclose(model.coefficients, (1.0, 0.6, 0.3), atol=1e-6)


def test_cobb_douglas_predict_hand_computed() -> None:
    # ln Q = 1 + 0.5 ln(3 + 1)  ->  Q = e * 4^0.5 = 2e
    model = CobbDouglasModel(inputs=("labor",), coefficients=(1.0, 0.5), log_offset=1.0)
    pred = model.predict_output(pd.DataFrame({"labor": [3.0, 0.0]}))
    np.testing.assert_allclose(pred, [2.0 * math.e, math.e])


def test_cobb_douglas_to_dict() -> None:
    model = CobbDouglasModel(inputs=("size", "urea"), coefficients=(1.0, 0.6, 0.3), log_offset=0.0)
    d = model.to_dict()
    assert d["elasticities"] == {"size": 0.6, "urea": 0.3}
    assert d["intercept"] == 1.0
    json.dumps(d, allow_nan=False)


def test_cobb_douglas_model_checks_coefficient_count() -> None:
    with pytest.raises(ValueError, match="expected 3 coefficients"):
        CobbDouglasModel(inputs=("a", "b"), coefficients=(1.0, 0.5), log_offset=0.0)


def test_fit_cobb_douglas_missing_column_is_named() -> None:
    with pytest.raises(ValueError, match="'seed'"):
        fit_cobb_douglas(_synthetic_cd(), "goutput", ["size", "seed"])
    with pytest.raises(ValueError, match="'price'"):
        fit_cobb_douglas(_synthetic_cd(), "price", ["size"])


def test_fit_cobb_douglas_non_positive_output_count() -> None:
    frame = _synthetic_cd()
    frame.loc[[0, 5], "goutput"] = [0.0, -3.0]
    with pytest.raises(ValueError, match=r"'goutput' has 2 non-positive value\(s\)"):
        fit_cobb_douglas(frame, "goutput", ["size", "urea"])


def test_fit_cobb_douglas_too_few_rows() -> None:
    with pytest.raises(ValueError, match="need at least 3 rows"):
        fit_cobb_douglas(_synthetic_cd().head(2), "goutput", ["size", "urea"])


def test_fit_cobb_douglas_rank_deficient() -> None:
    frame = _synthetic_cd().assign(const=2.0)
    with pytest.raises(ValueError, match="rank deficient"):
        fit_cobb_douglas(frame, "goutput", ["size", "const"])


def test_fit_cobb_douglas_log_of_zero_input() -> None:
    frame = _synthetic_cd()
    frame.loc[3, "urea"] = 0.0
    with pytest.raises(ValueError, match=r"'urea' has 1 value\(s\) with X \+ log_offset <= 0"):
        fit_cobb_douglas(frame, "goutput", ["size", "urea"], log_offset=0.0)
    # ...but the default offset of 1 admits zero inputs
    fit_cobb_douglas(frame, "goutput", ["size", "urea"])


def test_fit_cobb_douglas_needs_inputs() -> None:
    with pytest.raises(ValueError, match="at least one input"):
        fit_cobb_douglas(_synthetic_cd(), "goutput", [])


# --------------------------------------------------------------------------------------------------
# ModelComparison
# --------------------------------------------------------------------------------------------------

CANDIDATE = RegressionMetrics(n=30, mae=400.0, rmse=520.0, r2=0.61)
CHAMPION = RegressionMetrics(n=30, mae=450.0, rmse=560.0, r2=0.55)
NAIVE = RegressionMetrics(n=30, mae=700.0, rmse=880.0, r2=-0.02)
COBB = RegressionMetrics(n=30, mae=500.0, rmse=640.0, r2=0.45)


def test_compare_models_verdicts() -> None:
    c = compare_models(CANDIDATE, NAIVE, champion=CHAMPION, cobb_douglas=COBB)
    assert c.beats_naive is True  # 400 < 700
    assert c.beats_champion is True  # 400 < 450
    assert c.cobb_douglas_note is None


def test_compare_models_without_champion_or_cobb_douglas() -> None:
    c = compare_models(CANDIDATE, NAIVE, cobb_douglas_note="fewer rows than coefficients")
    assert c.beats_champion is None
    assert c.cobb_douglas is None
    md = c.markdown_table("kg/ha")
    assert "| champion | — | — | — | — | no champion yet |" in md
    assert "| Cobb-Douglas | — | — | — | — | fewer rows than coefficients |" in md
    assert "Beats champion: n/a (no champion)" in md


def test_a_row_with_champion_metrics_never_says_there_is_no_champion() -> None:
    """Issue 10 item 5: the comparison said "no champion yet" on a row holding the champion's metrics."""
    c = compare_models(CANDIDATE, NAIVE, champion=CHAMPION, cobb_douglas=COBB)
    assert "no champion yet" not in c.markdown_table("kg/ha")
    named = c.markdown_table("kg/ha", "champion yield-t/3")
    assert "| champion | 30 | 450.0 | 560.0 | 0.550 | champion yield-t/3 |" in named


def test_compare_models_tie_does_not_beat() -> None:
    c = compare_models(CANDIDATE, NAIVE, champion=CANDIDATE, cobb_douglas=COBB)
    assert c.beats_champion is False
    worse = compare_models(NAIVE, CANDIDATE, cobb_douglas=COBB)
    assert worse.beats_naive is False


def test_model_comparison_rejects_inconsistent_verdicts() -> None:
    with pytest.raises(ValueError, match="beats_naive"):
        ModelComparison(CANDIDATE, None, NAIVE, COBB, None, beats_naive=False, beats_champion=None)
    with pytest.raises(ValueError, match="beats_champion"):
        ModelComparison(CANDIDATE, CHAMPION, NAIVE, COBB, None, beats_naive=True, beats_champion=None)
    with pytest.raises(ValueError, match="cobb_douglas_note"):
        ModelComparison(CANDIDATE, None, NAIVE, None, None, beats_naive=True, beats_champion=None)


def test_model_comparison_markdown_and_dict() -> None:
    c = compare_models(CANDIDATE, NAIVE, champion=CHAMPION, cobb_douglas=COBB)
    md = c.markdown_table("kg/ha")
    lines = md.splitlines()
    assert lines[0] == "| Model | n | MAE (kg/ha) | RMSE (kg/ha) | R² | Note |"
    assert lines[2] == "| candidate | 30 | 400.0 | 520.0 | 0.610 |  |"
    assert lines[3].startswith("| champion | 30 | 450.0 |")
    assert lines[4].startswith("| naive baseline | 30 | 700.0 | 880.0 | -0.020 |")
    assert lines[5].startswith("| Cobb-Douglas | 30 | 500.0 |")
    assert "Beats naive baseline: yes" in md
    d = c.to_dict()
    assert d["candidate"]["mae"] == 400.0
    assert d["beats_champion"] is True
    json.dumps(d, allow_nan=False)
