"""The pictures of the drift report, bias audit and evaluation (issue 10): each plot function returns a valid
PNG of the documented size from realistic report dicts — built by the domain functions themselves — and from
the edge cases (an empty subgroup, a NaN interval, a single feature, no season-level covariate)."""

from __future__ import annotations

import base64
import io
import math
import time

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from rai_assets.domain.bias import BiasThresholds, audit_bias
from rai_assets.domain.drift import DriftThresholds, assess_drift
from rai_assets.domain.evaluation import compare_models, regression_metrics
from rai_assets.presentation import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WIDTH_PX, HEIGHT_PX = (round(x * plots.DPI) for x in plots.FIGSIZE_IN)


def assert_png(png: bytes) -> np.ndarray:
    """``png`` starts with the PNG signature and decodes to an RGB(A) image of the documented size."""
    assert isinstance(png, bytes) and png.startswith(PNG_SIGNATURE)
    image = mpimg.imread(io.BytesIO(png), format="png")
    assert image.shape[:2] == (HEIGHT_PX, WIDTH_PX), image.shape
    assert image.std() > 0.01, "the picture is blank"
    assert len(png) < 60_000, f"{len(png)} bytes: too large for inline metadata"
    return image


def _frames(rng: np.random.Generator, n_ref: int = 120, n_cur: int = 30) -> tuple[pd.DataFrame, pd.DataFrame]:
    seasons = np.repeat(["s01", "s02", "s03"], n_ref // 3)
    reference = pd.DataFrame({
        "season_id": seasons,
        "area_ha": rng.lognormal(-0.5, 0.5, n_ref),
        "urea_kg": rng.normal(200, 40, n_ref),
        "rice_price": np.select([seasons == "s01", seasons == "s02"], [3000.0, 3200.0], 3100.0),
        "variety": rng.choice(["ir64", "ciherang", "local"], n_ref),
    })
    current = pd.DataFrame({
        "season_id": "s04",
        "area_ha": rng.lognormal(-0.2, 0.5, n_cur),
        "urea_kg": rng.normal(260, 40, n_cur),
        "rice_price": 4500.0,
        "variety": rng.choice(["ir64", "ciherang", "local"], n_cur, p=[0.7, 0.2, 0.1]),
    })
    return reference, current


def drift_report() -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """A drift report dict of :func:`_frames` (seed 7), with its reference and current frames."""
    reference, current = _frames(np.random.default_rng(7))
    assessment = assess_drift(reference, current, numeric=["area_ha", "urea_kg", "rice_price"],
                              categorical=["variety"], thresholds=DriftThresholds(),
                              season_order=["s01", "s02", "s03", "s04"])
    return assessment.to_dict(), reference, current


@pytest.fixture
def drift_report_dict() -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    return drift_report()


def test_drift_psi_bars_per_feature_drift_1(drift_report_dict):
    """DRIFT-1: the PSI of every feature, with the warning / actionable thresholds."""
    report, _, _ = drift_report_dict
    assert len(report["features"]) == 3
    assert_png(plots.psi_bars(report["features"], psi_warning=0.1, psi_actionable=0.25))


def test_drift_psi_bars_single_feature_undefined_psi_and_none():
    one = [{"feature": "area_ha", "psi": 0.4, "psi_level": "shift", "actionable": True}]
    assert_png(plots.psi_bars(one, psi_warning=0.1, psi_actionable=0.25))
    undefined = [{"feature": "area_ha", "psi": None, "psi_level": "stable", "actionable": False}]
    assert_png(plots.psi_bars(undefined))
    assert_png(plots.psi_bars([]))


def test_drift_distributions_numeric_and_categorical(drift_report_dict):
    report, reference, current = drift_report_dict
    top = [f["feature"] for f in sorted(report["features"], key=lambda f: -f["psi"])]
    assert_png(plots.distribution_panels(reference, current, [*top, "urea_kg"]))


def test_drift_distributions_single_feature_missing_values_and_absent_feature():
    reference = {"area_ha": np.array([0.5, 0.7, np.nan, 1.2])}
    current = {"area_ha": np.array([np.nan, 1.5, 1.6])}
    assert_png(plots.distribution_panels(reference, current, ["area_ha", "not_a_column"]))
    assert_png(plots.distribution_panels(reference, current, ["not_a_column"]))
    assert_png(plots.distribution_panels({"x": np.array([np.nan])}, {"x": np.array([np.nan])}, ["x"]))


def test_season_level_covariates_over_seasons_drift_6(drift_report_dict):
    """DRIFT-6: season-level covariates (a price) as ratios to the reference mean, season by season."""
    report, _, _ = drift_report_dict
    assert [c["feature"] for c in report["season_level"]] == ["rice_price"]
    assert_png(plots.season_covariate_ratios(report["season_level"], season_ratio_actionable=0.25))


def test_season_level_covariates_none_or_undefined_values():
    assert_png(plots.season_covariate_ratios([]))
    zero_history = [{"feature": "wage", "history": [{"season": "s01", "value": 0.0, "n": 3}],
                     "current_season": "s02", "current_value": None}]
    assert_png(plots.season_covariate_ratios(zero_history, season_ratio_actionable=0.25))


@pytest.fixture
def bias_audit_dict() -> dict:
    rng = np.random.default_rng(3)
    n = 90
    actual = rng.normal(5000, 800, n)
    groups = pd.DataFrame({
        "tenure": rng.choice(["owner", "tenant", "share"], n, p=[0.6, 0.37, 0.03]),
        "variety": rng.choice(["ir64", "ciherang"], n),
        "season_id": np.repeat(["s01", "s02", "s03"], n // 3),
    })
    predicted = actual + rng.normal(0, 400, n) + np.where(groups["tenure"] == "tenant", 300, 0)
    audit = audit_bias(actual, predicted, groups, {"tenure": "tenure", "variety": "variety"},
                       BiasThresholds(n_bootstrap=1000), unit="kg/ha")
    return audit.to_dict()


def test_bias_subgroup_mae_with_intervals_reg_5(bias_audit_dict):
    """REG-5: per-subgroup MAE with its bootstrap interval; a too-small group is drawn, hatched."""
    subgroups = bias_audit_dict["subgroups"]
    statuses = {g["status"] for s in subgroups for g in s["groups"]}
    assert statuses == {"ok", "not_assessable"}
    assert_png(plots.subgroup_mae(subgroups, unit="kg/ha"))


def test_bias_subgroup_mae_empty_subgroup_nan_interval_and_nothing(bias_audit_dict):
    subgroups = bias_audit_dict["subgroups"]
    nan_ci = {"subgroup": "bimas", "verdict": "not_assessable",
              "groups": [{"group": "yes", "n": 2, "mae": 410.0, "mae_ci": [math.nan, math.nan], "status": "ok"},
                         {"group": "no", "n": 1, "mae": None, "mae_ci": None, "status": "not_assessable"}]}
    empty = {"subgroup": "farm_size_class", "verdict": "not_assessable", "groups": []}
    assert_png(plots.subgroup_mae([*subgroups, nan_ci, empty], unit="kg/ha"))
    assert_png(plots.subgroup_mae([empty], unit="kg/ha"))
    assert_png(plots.subgroup_mae([], unit="kg/ha"))


def test_evaluation_pictures():
    rng = np.random.default_rng(11)
    actual = rng.normal(5200, 900, 37)
    predicted = actual + rng.normal(0, 450, 37)
    assert_png(plots.predicted_vs_actual(actual, predicted, unit="kg/ha"))
    assert_png(plots.residual_histogram(actual, predicted, unit="kg/ha"))
    comparison = compare_models(regression_metrics(actual, predicted),
                                regression_metrics(actual, np.full(37, actual.mean() + 200)),
                                champion=regression_metrics(actual, predicted + 150), cobb_douglas=None,
                                cobb_douglas_note="too few rows").to_dict()
    assert_png(plots.mae_comparison(comparison, unit="kg/ha"))


def test_evaluation_pictures_edge_cases():
    assert_png(plots.predicted_vs_actual([], [], unit="kg/ha"))
    assert_png(plots.residual_histogram([5000.0], [5100.0], unit="kg/ha"))
    assert_png(plots.predicted_vs_actual([5000.0, np.nan, 4800.0], [5100.0, 4900.0, np.inf], unit="kg/ha"))
    assert_png(plots.mae_comparison({"candidate": {"mae": 400.0}, "champion": None, "naive": {"mae": math.nan}},
                                    unit="kg/ha"))
    with pytest.raises(ValueError, match="actual has 2 values but predicted has 3"):
        plots.predicted_vs_actual([1.0, 2.0], [1.0, 2.0, 3.0], unit="kg/ha")


def test_markdown_image_inlines_the_png():
    png = plots.mae_comparison({"candidate": {"mae": 400.0}, "naive": {"mae": 500.0}}, unit="kg/ha")
    md = plots.markdown_image("MAE [kg/ha]", png)
    prefix = "![MAE (kg/ha)](data:image/png;base64,"
    assert md.startswith(prefix) and md.endswith(")")
    assert base64.b64decode(md[len(prefix):-1]) == png


def test_demo_sized_rendering_time(drift_report_dict, bias_audit_dict, capsys):
    """The added wall time of one partition run's pictures on demo-sized inputs (printed with -s)."""
    report, reference, current = drift_report_dict
    rng = np.random.default_rng(5)
    actual = rng.normal(5200, 900, 37)
    predicted = actual + rng.normal(0, 450, 37)
    comparison = compare_models(regression_metrics(actual, predicted),
                                regression_metrics(actual, np.full(37, 5300.0))).to_dict()
    top = [f["feature"] for f in sorted(report["features"], key=lambda f: -f["psi"])]
    renders = {
        "psi": lambda: plots.psi_bars(report["features"], psi_warning=0.1, psi_actionable=0.25),
        "distributions": lambda: plots.distribution_panels(reference, current, top),
        "season_level": lambda: plots.season_covariate_ratios(report["season_level"]),
        "subgroup_mae": lambda: plots.subgroup_mae(bias_audit_dict["subgroups"], unit="kg/ha"),
        "predicted_vs_actual": lambda: plots.predicted_vs_actual(actual, predicted, unit="kg/ha"),
        "residuals": lambda: plots.residual_histogram(actual, predicted, unit="kg/ha"),
        "mae": lambda: plots.mae_comparison(comparison, unit="kg/ha"),
    }
    for render in renders.values():  # warm-up: font cache, first-use imports
        render()
    timings, sizes = {}, {}
    for name, render in renders.items():
        started = time.perf_counter()
        sizes[name] = len(render())
        timings[name] = (time.perf_counter() - started) * 1000
    with capsys.disabled():
        print(f"\nplot ms: { {k: round(v, 1) for k, v in timings.items()} } total {sum(timings.values()):.0f} ms")
        print(f"plot bytes: {sizes} total {sum(sizes.values())}")
    assert sum(timings.values()) < 10_000


def test_yield_and_mae_axes_are_labelled_with_the_specs_unit(bias_audit_dict, monkeypatch):
    """The pictures label yields and MAEs in the unit they are given (a barley spec's bu/ac), never a
    hard-coded kg/ha: every axis label drawn is recorded."""
    from matplotlib.axes import Axes

    labels: list[str] = []
    for method in ("set_xlabel", "set_ylabel"):
        original = getattr(Axes, method)

        def spy(self, label, *args, _original=original, **kwargs):
            labels.append(str(label))
            return _original(self, label, *args, **kwargs)

        monkeypatch.setattr(Axes, method, spy)
    actual, predicted = [50.0, 60.0, 70.0], [52.0, 58.0, 75.0]
    assert_png(plots.subgroup_mae(bias_audit_dict["subgroups"], unit="bu/ac"))
    assert_png(plots.predicted_vs_actual(actual, predicted, unit="bu/ac"))
    assert_png(plots.residual_histogram(actual, predicted, unit="bu/ac"))
    assert_png(plots.mae_comparison({"candidate": {"mae": 4.0}, "naive": {"mae": 6.0}}, unit="bu/ac"))
    unit_labels = [label for label in labels if "MAE" in label or "yield" in label or "residual" in label
                   or "predicted" in label]
    assert len(unit_labels) == 5, labels
    assert all("(bu/ac)" in label for label in unit_labels), labels
    assert not any("kg/ha" in label for label in labels), labels


def test_shared_renderer_gives_the_same_png_as_a_renderer_per_figure(drift_report_dict, bias_audit_dict,
                                                                     monkeypatch):
    """Issue 12, goal 3: the pictures of one thread share an Agg renderer (its text-metrics cache); each PNG is
    byte for byte the one a fresh renderer per figure draws, whatever was drawn on the shared one before."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    report, reference, current = drift_report_dict
    actual, predicted = [5000.0, 5400.0, 4800.0, 6100.0], [5100.0, 5200.0, 5000.0, 5900.0]
    renders = [
        lambda: plots.psi_bars(report["features"], psi_warning=0.1, psi_actionable=0.25),
        lambda: plots.distribution_panels(reference, current, ["urea_kg", "variety", "area_ha"]),
        lambda: plots.season_covariate_ratios(report["season_level"], season_ratio_actionable=0.25),
        lambda: plots.subgroup_mae(bias_audit_dict["subgroups"], unit="kg/ha"),
        lambda: plots.predicted_vs_actual(actual, predicted, unit="kg/ha"),
        lambda: plots.residual_histogram(actual, predicted, unit="kg/ha"),
        lambda: plots.mae_comparison({"candidate": {"mae": 400.0}, "naive": {"mae": 500.0}}, unit="kg/ha"),
    ]
    shared = [render() for render in [*renders, *reversed(renders)]]
    monkeypatch.setattr(plots._SharedRendererCanvas, "get_renderer", FigureCanvasAgg.get_renderer)
    fresh = [render() for render in renders]
    assert shared[:len(renders)] == fresh
    assert shared[len(renders):] == fresh[::-1]
