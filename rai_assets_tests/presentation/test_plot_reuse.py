"""Kept figures (issue 12, goal 3): each picture function draws on its thread's kept figure for the picture's
kind and grid, reset before each render, instead of building a new one. The contract tested here: the PNG bytes
are those of a freshly built figure (``plots.fresh_figures()``) for any sequence of inputs — varied sizes, label
lengths, categorical and numeric panels, grids of 1 to 4 panels, empty inputs, NaN intervals, undefined PSI,
hatched groups, negative values — in any order; a render that raises leaves nothing behind; threads keep their
own figures."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes

from rai_assets.domain.bias import BiasThresholds, audit_bias
from rai_assets.domain.evaluation import compare_models, regression_metrics
from rai_assets.presentation import plots
from rai_assets_tests.presentation.test_plots import assert_png, drift_report

Render = Callable[[], bytes]


def _psi_bars() -> list[Render]:
    report, _, _ = drift_report()
    levels = ["stable", "warning", "shift", "stable", "x", "shift"]  # "x": an unknown level, drawn grey
    long = [{"feature": f"a_rather_long_feature_name_{i}", "psi": 0.05 * i - 0.1, "psi_level": level,
             "actionable": i % 2 == 0} for i, level in enumerate(levels)]
    undefined = [{"feature": "area_ha", "psi": None, "psi_level": "stable", "actionable": False},
                 {"feature": "urea_kg", "psi": math.nan, "psi_level": "shift", "actionable": True}]
    return [
        lambda: plots.psi_bars(report["features"], psi_warning=0.1, psi_actionable=0.25),
        lambda: plots.psi_bars(long, psi_warning=0.1),
        lambda: plots.psi_bars([]),
        lambda: plots.psi_bars(undefined, psi_actionable=0.25),
        lambda: plots.psi_bars(report["features"][:1]),
    ]


def _distribution_panels() -> list[Render]:
    _, reference, current = drift_report()
    rng = np.random.default_rng(2)
    words = {"names": rng.choice(["a very long category name", "short", "x", "middling one"], 50)}
    negative = {"delta": rng.normal(-3000, 900, 80), "names": words["names"]}
    negative_now = {"delta": rng.normal(-2500, 900, 30), "names": words["names"][:20]}
    return [
        lambda: plots.distribution_panels(reference, current, ["area_ha", "urea_kg", "rice_price", "variety"]),
        lambda: plots.distribution_panels(reference, current, ["urea_kg"]),
        lambda: plots.distribution_panels(reference, current, ["variety", "area_ha", "urea_kg"]),
        lambda: plots.distribution_panels(words, words, ["names"]),
        lambda: plots.distribution_panels({"x": np.array([np.nan])}, {"x": np.array([np.nan])}, ["x"]),
        lambda: plots.distribution_panels(reference, current, ["not_a_column"]),
        lambda: plots.distribution_panels(negative, negative_now, ["delta", "names"]),
        lambda: plots.distribution_panels(reference, current, ["variety", "urea_kg"]),
    ]


def _season_covariate_ratios() -> list[Render]:
    report, _, _ = drift_report()
    many = [{"feature": f"covariate_{k}", "current_season": "2024-wet-season",
             "current_value": 100.0 + 30 * k,
             "history": [{"season": f"20{20 + s}-dry-season", "value": 100.0 + 5 * s * k - 20, "n": 4}
                         for s in range(4)]} for k in range(7)]
    zero_history = [{"feature": "wage", "history": [{"season": "s01", "value": 0.0, "n": 3}],
                     "current_season": "s02", "current_value": None}]
    return [
        lambda: plots.season_covariate_ratios(report["season_level"], season_ratio_actionable=0.25),
        lambda: plots.season_covariate_ratios(many),
        lambda: plots.season_covariate_ratios([]),
        lambda: plots.season_covariate_ratios(zero_history, season_ratio_actionable=0.25),
        lambda: plots.season_covariate_ratios(many[:2], season_ratio_actionable=0.5),
    ]


def _subgroup_mae() -> list[Render]:
    rng = np.random.default_rng(3)
    n = 90
    actual = rng.normal(5000, 800, n)
    groups = pd.DataFrame({"tenure": rng.choice(["owner", "tenant", "share"], n, p=[0.6, 0.37, 0.03]),
                           "variety": rng.choice(["ir64", "ciherang"], n)})
    predicted = actual + rng.normal(0, 400, n)
    audit = audit_bias(actual, predicted, groups, {"tenure": "tenure", "variety": "variety"},
                       BiasThresholds(n_bootstrap=200), unit="kg/ha").to_dict()
    subgroups = audit["subgroups"]  # a hatched, not assessable "share" group among them
    nan_ci = {"subgroup": "bimas", "verdict": "not_assessable",
              "groups": [{"group": "yes", "n": 2, "mae": 410.0, "mae_ci": [math.nan, math.nan], "status": "ok"},
                         {"group": "no", "n": 1, "mae": None, "mae_ci": None, "status": "not_assessable"}]}
    empty = {"subgroup": "farm_size_class", "verdict": "not_assessable", "groups": []}
    negative = {"subgroup": "a_much_longer_subgroup_name", "verdict": "pass",
                "groups": [{"group": "g", "n": 40, "mae": -5.0, "mae_ci": [-9.0, 2.0], "status": "ok"}]}
    return [
        lambda: plots.subgroup_mae(subgroups, unit="kg/ha"),
        lambda: plots.subgroup_mae([*subgroups, nan_ci, empty], unit="bu/ac"),
        lambda: plots.subgroup_mae([], unit="kg/ha"),
        lambda: plots.subgroup_mae([empty], unit="kg/ha"),
        lambda: plots.subgroup_mae([negative], unit="t/ha"),
    ]


def _pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(11)
    out = []
    for n, centre, spread in ((37, 5200.0, 900.0), (3, 50.0, 5.0), (400, -2000.0, 30000.0), (1, 5000.0, 1.0)):
        actual = rng.normal(centre, spread, n)
        out.append((actual, actual + rng.normal(0, spread / 2, n)))
    out.append((np.array([]), np.array([])))
    out.append((np.array([5000.0, np.nan, 4800.0]), np.array([5100.0, 4900.0, np.inf])))
    return out


def _predicted_vs_actual() -> list[Render]:
    return [lambda a=a, p=p, i=i: plots.predicted_vs_actual(a, p, unit="kg/ha", label=f"model {'x' * 5 * i}")
            for i, (a, p) in enumerate(_pairs())]


def _residual_histogram() -> list[Render]:
    return [lambda a=a, p=p: plots.residual_histogram(a, p, unit="bu/ac") for a, p in _pairs()]


def _mae_comparison() -> list[Render]:
    rng = np.random.default_rng(5)
    actual = rng.normal(5200, 900, 37)
    predicted = actual + rng.normal(0, 450, 37)
    full = compare_models(regression_metrics(actual, predicted), regression_metrics(actual, np.full(37, 5300.0)),
                          champion=regression_metrics(actual, predicted + 150), cobb_douglas=None,
                          cobb_douglas_note="too few rows").to_dict()
    return [
        lambda: plots.mae_comparison(full, unit="kg/ha"),
        lambda: plots.mae_comparison({"candidate": {"mae": 400.0}, "champion": None, "naive": {"mae": math.nan}},
                                     unit="kg/ha"),
        lambda: plots.mae_comparison({}, unit="kg/ha"),
        lambda: plots.mae_comparison({"candidate": {"mae": 123456.0}, "naive": {"mae": -50.0},
                                      "cobb_douglas": {"mae": 99999.0}}, unit="bu/ac"),
    ]


KINDS: dict[str, Callable[[], list[Render]]] = {
    "psi_bars": _psi_bars,
    "distribution_panels": _distribution_panels,
    "season_covariate_ratios": _season_covariate_ratios,
    "subgroup_mae": _subgroup_mae,
    "predicted_vs_actual": _predicted_vs_actual,
    "residual_histogram": _residual_histogram,
    "mae_comparison": _mae_comparison,
}


def _fresh(renders: list[Render]) -> list[bytes]:
    with plots.fresh_figures():
        return [render() for render in renders]


@pytest.mark.parametrize("kind", list(KINDS))
def test_kept_figure_gives_the_fresh_figures_bytes_in_any_order(kind):
    """Issue 12, goal 3: every input drawn on the kept figure, forwards, backwards and shuffled (each render
    after a different predecessor), gives byte for byte the PNG of a newly built figure."""
    renders = KINDS[kind]()
    fresh = _fresh(renders)
    for png in fresh:
        assert_png(png)
    assert len(set(fresh)) == len(fresh), "two inputs gave the same picture: the sequence tests nothing"
    order = list(range(len(renders)))
    shuffled = order[:]
    random.Random(kind).shuffle(shuffled)
    for sequence in (order, order[::-1], shuffled, [i for i in order for _ in range(2)]):
        kept = [renders[i]() for i in sequence]
        mismatched = [i for i, png in zip(sequence, kept, strict=True) if png != fresh[i]]
        assert not mismatched, f"{kind}: inputs {mismatched} differ from a fresh figure after order {sequence}"


def test_all_kinds_interleaved_give_the_fresh_bytes():
    """All seven pictures, interleaved at random, each compared with its fresh figure's bytes."""
    renders = [render for make in KINDS.values() for render in make()]
    fresh = _fresh(renders)
    order = list(range(len(renders))) * 2
    random.Random(12).shuffle(order)
    kept = [renders[i]() for i in order]
    assert [png == fresh[i] for i, png in zip(order, kept, strict=True)] == [True] * len(order)


def test_a_render_that_raises_does_not_poison_the_next(monkeypatch):
    """A render that raises half-way (artists drawn, title not set) re-raises, its figure is not kept, and the
    next render of that kind gives the fresh bytes."""
    actual, predicted = _pairs()[0]
    fresh = _fresh([lambda: plots.residual_histogram(actual, predicted, unit="kg/ha")])[0]
    plots.residual_histogram(actual, predicted, unit="kg/ha")  # a kept figure for the kind
    original = Axes.set_title

    def failing(self, *args, **kwargs):
        raise RuntimeError("set_title failed")

    monkeypatch.setattr(Axes, "set_title", failing)
    with pytest.raises(RuntimeError, match="set_title failed"):
        plots.residual_histogram(actual[::-1], predicted, unit="kg/ha")
    assert ("residual_histogram", 1, 1) not in plots._kept.figures
    monkeypatch.setattr(Axes, "set_title", original)
    assert plots.residual_histogram(actual, predicted, unit="kg/ha") == fresh
    assert plots.residual_histogram(actual, predicted, unit="kg/ha") == fresh  # kept again, still the same


def test_malformed_input_raises_and_the_kind_still_draws():
    """A ValueError on malformed input (arrays of different lengths) leaves the kept figures usable."""
    actual, predicted = _pairs()[0]
    fresh = _fresh([lambda: plots.predicted_vs_actual(actual, predicted, unit="kg/ha")])[0]
    with pytest.raises(ValueError, match="actual has 2 values but predicted has 3"):
        plots.predicted_vs_actual([1.0, 2.0], [1.0, 2.0, 3.0], unit="kg/ha")
    assert plots.predicted_vs_actual(actual, predicted, unit="kg/ha") == fresh


def test_two_threads_drawing_at_once_give_the_bytes_of_one():
    """Each thread keeps its own figures: two threads rendering every input at the same time give the bytes
    one thread gives alone."""
    renders = [render for make in KINDS.values() for render in make()]
    alone = [render() for render in renders]
    barrier = threading.Barrier(2)
    results: dict[int, list[bytes]] = {}
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = [render() for render in (renders if index == 0 else renders[::-1])]
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert results[0] == alone
    assert results[1] == alone[::-1]


def test_fresh_figures_keeps_nothing():
    """Within ``fresh_figures()`` no figure is kept; afterwards the thread keeps figures again."""
    renders = _mae_comparison()
    plots._kept.__dict__.get("figures", {}).pop(("mae_comparison", 1, 1), None)
    with plots.fresh_figures():
        renders[0]()
    assert ("mae_comparison", 1, 1) not in plots._kept.figures
    renders[0]()
    assert ("mae_comparison", 1, 1) in plots._kept.figures
