"""Benchmark of the seven report pictures of one partition run (issue 12, goal 3): render time per picture.

Usage::

    python benchmarks/pictures.py [--rounds R] [--out PATH]

The inputs have the shapes of one RiceFarms village-season (30 fields now, 3 reference seasons of 40 fields,
four drift features of which one categorical — the picture tests' drift report, ``test_plots.drift_report`` —,
two bias subgroups, four evaluation roles) and are drawn from fixed seeds, so every run renders the same
pictures. Each picture is rendered once to warm up (matplotlib's font cache, the kept figures of
:mod:`rai_assets.presentation.plots`), then ``R`` rounds of all seven, in turn; the figure per picture is its
median over the rounds, the headline the sum of those medians.

The JSON result records the matplotlib version, since the text renderer is most of a picture's cost:
``pyproject.toml`` keeps matplotlib below 3.11 because of it. To compare versions, run this script under each
(a second virtual environment with ``pip install matplotlib==3.11.2``) in the same session, alternating.
The last line printed is ``pictures_total_ms=<sum of medians> ms``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
from report import write_result  # noqa: E402  (benchmarks/ is sys.path[0] when run as a script)

from rai_assets.presentation import plots  # noqa: E402
from rai_assets_tests.presentation.test_plots import drift_report  # noqa: E402

DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "pictures.json"


def _inputs() -> dict[str, Callable[[], bytes]]:
    """The seven pictures of a partition run, each as a function returning its PNG bytes."""
    drift, reference, current = drift_report()  # the picture tests' drift report (seed 7, 120 + 30 fields)
    rng = np.random.default_rng(1)
    actual = rng.normal(4000, 800, 30)
    predicted = actual + rng.normal(0, 500, 30)
    subgroups = [
        {"subgroup": "variety", "verdict": "pass",
         "groups": [{"group": g, "n": 10, "mae": 500 + 50 * i, "mae_ci": [400, 700], "status": "ok"}
                    for i, g in enumerate(["ir64", "ciherang", "local"])]},
        {"subgroup": "area", "verdict": "pass",
         "groups": [{"group": g, "n": 15, "mae": 600, "mae_ci": [400, 800], "status": "ok"}
                    for g in ["small", "large"]]},
    ]
    comparison = {"candidate": {"mae": 900}, "champion": {"mae": 950}, "naive": {"mae": 1200},
                  "cobb_douglas": {"mae": 1100}}
    return {
        "psi_bars": lambda: plots.psi_bars(drift["features"], psi_warning=0.1, psi_actionable=0.25),
        "distribution_panels": lambda: plots.distribution_panels(
            reference, current, ["area_ha", "urea_kg", "rice_price", "variety"]),
        "season_covariate_ratios": lambda: plots.season_covariate_ratios(drift["season_level"],
                                                                         season_ratio_actionable=0.2),
        "subgroup_mae": lambda: plots.subgroup_mae(subgroups, unit="kg/ha"),
        "predicted_vs_actual": lambda: plots.predicted_vs_actual(actual, predicted, unit="kg/ha"),
        "residual_histogram": lambda: plots.residual_histogram(actual, predicted, unit="kg/ha"),
        "mae_comparison": lambda: plots.mae_comparison(comparison, unit="kg/ha"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    pictures = _inputs()
    sizes = {name: len(render()) for name, render in pictures.items()}  # warm-up
    times: dict[str, list[float]] = {name: [] for name in pictures}
    for _ in range(args.rounds):
        for name, render in pictures.items():
            started = time.perf_counter()
            render()
            times[name].append((time.perf_counter() - started) * 1000)
    medians = {name: statistics.median(values) for name, values in times.items()}
    total = sum(medians.values())
    for name, value in medians.items():
        print(f"{name:<24} {value:6.1f} ms median  {sizes[name]:>6} bytes")
    doc = {"benchmark": "pictures", "matplotlib": matplotlib.__version__, "rounds": args.rounds,
           "median_ms": medians, "png_bytes": sizes, "total_ms": total}
    return write_result(args.out, doc, f"pictures_total_ms={total:.0f} ms")


if __name__ == "__main__":
    raise SystemExit(main())
