"""Benchmark of the drift engine (``rai_assets.domain.drift.assess_drift``) against a naive baseline.

Usage::

    python benchmarks/drift.py [--rows N] [--cols K] [--out PATH] [--repeats R] [--seed S]

Data (seeded): a reference frame of ``N`` rows x ``K`` float64 columns drawn from N(0, 1), and a
current frame of the same shape where column ``j`` is drawn from N(shift_j, 1) with ``shift_j``
spread evenly over [0, 0.5] -- a mix of undrifted, borderline and clearly drifted columns, so that
the KS p-values fall in every regime of ``scipy.stats.kstwo`` (including its slow exact-sum branch).

In the same run it measures

* the **baseline**: a naive per-column implementation (``np.quantile`` edges, ``np.searchsorted`` +
  ``np.bincount`` bin counts on the unsorted columns, ``scipy.stats.ks_2samp(method="asymp")``,
  Benjamini-Hochberg), sequential, as one would write it without tuning;
* the **engine**: ``assess_drift`` on the same frames, ``--repeats`` times;
* agreement of the two (PSI, KS statistic, p-values) as a sanity check;
* memory: the peak of Python-visible allocations (``tracemalloc``, which numpy reports to) during a
  separate run of each implementation, and the growth of the process's peak resident set size
  (``resource.getrusage(...).ru_maxrss``) over the engine runs, which come first so that the
  high-water mark is not already raised by the baseline. The absolute process peak RSS (input
  frames, interpreter and libraries included) is reported as well.

Timings are wall-clock (``time.perf_counter``); the headline figure is the median engine run.
Results go to ``--out`` (default ``benchmarks/results/drift.json``); the last line printed is
``drift_seconds=<median engine seconds> s``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy
from scipy import stats

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from rai_assets.domain.drift import DriftAssessment, assess_drift  # noqa: E402

DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "drift.json"
TARGET_SECONDS = 3.0
TARGET_PEAK_BYTES = 1 << 30  # 1 GiB
MIB = 1 << 20


def make_frames(rows: int, cols: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Reference N(0,1) and current N(shift_j,1) frames, generated in place (no temporaries)."""
    rng = np.random.default_rng(seed)
    names = [f"x{j:02d}" for j in range(cols)]
    shifts = np.linspace(0.0, 0.5, cols) if cols > 1 else np.array([0.5])
    reference = np.empty((rows, cols), dtype=np.float64, order="F")
    current = np.empty((rows, cols), dtype=np.float64, order="F")
    for j in range(cols):
        rng.standard_normal(out=reference[:, j])
        rng.standard_normal(out=current[:, j])
        current[:, j] += shifts[j]
    # copy=False: one float block per frame, each column a contiguous view of the arrays above.
    return (
        pd.DataFrame(reference, columns=names, copy=False),
        pd.DataFrame(current, columns=names, copy=False),
        names,
    )


def naive_drift(reference: pd.DataFrame, current: pd.DataFrame, names: list[str]) -> dict[str, Any]:
    """The straightforward implementation the engine is measured against (same formulas)."""
    quantiles = np.arange(1, 10) / 10
    psi: list[float] = []
    ks_d: list[float] = []
    ks_p: list[float] = []
    for name in names:
        ref = reference[name].to_numpy()
        cur = current[name].to_numpy()
        ref = ref[~np.isnan(ref)]
        cur = cur[~np.isnan(cur)]
        edges = np.unique(np.quantile(ref, quantiles))
        # searchsorted(edges, x, "left") = index of the right-closed bin (e_{i-1}, e_i] holding x
        ref_counts = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=edges.size + 1)
        cur_counts = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=edges.size + 1)
        r = np.maximum(ref_counts / ref.size, 1e-4)
        c = np.maximum(cur_counts / cur.size, 1e-4)
        psi.append(float(np.sum((c - r) * np.log(c / r))))
        result = stats.ks_2samp(ref, cur, method="asymp")
        ks_d.append(float(result.statistic))
        ks_p.append(float(result.pvalue))
    adjusted = stats.false_discovery_control(ks_p, method="bh")
    return {"psi": psi, "ks_d": ks_d, "ks_p": ks_p, "p_adj": [float(p) for p in adjusted]}


def run_engine(reference: pd.DataFrame, current: pd.DataFrame, names: list[str]) -> DriftAssessment:
    return assess_drift(reference, current, numeric=names, categorical=[])


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def traced_peak(fn: Any, *args: Any) -> int:
    """Peak bytes of Python-visible allocations (numpy arrays included) during ``fn(*args)``."""
    tracemalloc.start()
    try:
        fn(*args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def max_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value if sys.platform == "darwin" else value * 1024


def relative_difference(a: float, b: float) -> float:
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per frame (default 1,000,000)")
    parser.add_argument("--cols", type=int, default=20, help="numeric columns (default 20)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON result (default {DEFAULT_OUT})")
    parser.add_argument("--repeats", type=int, default=3, help="timed engine runs (default 3)")
    parser.add_argument("--seed", type=int, default=20240601, help="RNG seed")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.cols < 1 or args.repeats < 1:
        parser.error("--rows, --cols and --repeats must be >= 1")

    cpu_count = os.cpu_count() or 1
    print(
        f"drift benchmark: {args.rows:,} rows x {args.cols} numeric columns, reference + current, "
        f"{cpu_count} CPU(s), python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, pandas {pd.__version__}"
    )
    reference, current, names = make_frames(args.rows, args.cols, args.seed)
    input_bytes = int(reference.memory_usage(index=False).sum() + current.memory_usage(index=False).sum())
    print(f"input frames: {input_bytes / MIB:.0f} MiB")

    # --- engine first: its ru_maxrss growth is measured before anything else raises the high-water mark
    rss_before = max_rss_bytes()
    engine_seconds: list[float] = []
    assessment: DriftAssessment | None = None
    for _ in range(args.repeats):
        seconds, assessment = timed(run_engine, reference, current, names)
        engine_seconds.append(seconds)
    assert assessment is not None
    rss_after_engine = max_rss_bytes()
    engine_rss_growth = max(0, rss_after_engine - rss_before)
    engine_traced_peak = traced_peak(run_engine, reference, current, names)
    drift_seconds = statistics.median(engine_seconds)
    print(
        "engine runs: "
        + ", ".join(f"{s:.3f} s" for s in engine_seconds)
        + f" (median {drift_seconds:.3f} s, best {min(engine_seconds):.3f} s)"
    )

    # --- baseline
    baseline_seconds, baseline = timed(naive_drift, reference, current, names)
    baseline_traced_peak = traced_peak(naive_drift, reference, current, names)
    print(f"naive scipy baseline: {baseline_seconds:.3f} s")

    # --- agreement
    psi_engine = [f.psi for f in assessment.features]
    d_engine = [f.statistic for f in assessment.features]
    p_engine = [f.p_value for f in assessment.features]
    padj_engine = [f.p_value_adjusted for f in assessment.features]
    agreement = {
        "max_abs_psi_diff": max(abs(a - b) for a, b in zip(psi_engine, baseline["psi"], strict=True)),
        "max_abs_ks_statistic_diff": max(abs(a - b) for a, b in zip(d_engine, baseline["ks_d"], strict=True)),
        "max_rel_p_value_diff": max(
            relative_difference(a, b) for a, b in zip(p_engine, baseline["ks_p"], strict=True)
        ),
        "max_rel_p_adjusted_diff": max(
            relative_difference(a, b) for a, b in zip(padj_engine, baseline["p_adj"], strict=True)
        ),
    }

    speedup = baseline_seconds / drift_seconds
    result = {
        "benchmark": "drift",
        "rows": args.rows,
        "cols": args.cols,
        "seed": args.seed,
        "cpu_count": cpu_count,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "input_frames_mib": input_bytes / MIB,
        "engine_seconds": engine_seconds,
        "drift_seconds": drift_seconds,
        "engine_best_seconds": min(engine_seconds),
        "baseline_seconds": baseline_seconds,
        "speedup_vs_naive": speedup,
        "engine_tracemalloc_peak_mib": engine_traced_peak / MIB,
        "baseline_tracemalloc_peak_mib": baseline_traced_peak / MIB,
        "engine_tracemalloc_peak_ratio_vs_naive": engine_traced_peak / baseline_traced_peak,
        "engine_ru_maxrss_growth_mib": engine_rss_growth / MIB,
        "process_peak_rss_after_engine_mib": rss_after_engine / MIB,
        "process_peak_rss_end_mib": max_rss_bytes() / MIB,
        "agreement": agreement,
        "verdict": assessment.verdict,
        "max_psi": assessment.max_psi,
        "targets": {
            "seconds": TARGET_SECONDS,
            "peak_bytes": TARGET_PEAK_BYTES,
            "seconds_met": drift_seconds <= TARGET_SECONDS,
            "engine_peak_met": max(engine_traced_peak, engine_rss_growth) < TARGET_PEAK_BYTES,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    print(f"speedup vs naive scipy: {speedup:.1f}x ({baseline_seconds:.2f} s -> {drift_seconds:.2f} s)")
    print(
        f"peak memory (tracemalloc): engine {engine_traced_peak / MIB:.0f} MiB, naive "
        f"{baseline_traced_peak / MIB:.0f} MiB "
        f"(engine/naive {engine_traced_peak / baseline_traced_peak:.2f}x)"
    )
    print(
        f"peak RSS (ru_maxrss): engine growth {engine_rss_growth / MIB:.0f} MiB; process peak "
        f"{rss_after_engine / MIB:.0f} MiB after engine (incl. {input_bytes / MIB:.0f} MiB input), "
        f"{max_rss_bytes() / MIB:.0f} MiB at end"
    )
    print("agreement with naive: " + ", ".join(f"{key}={value:.3g}" for key, value in agreement.items()))
    print(f"verdict: {assessment.verdict}, max PSI {assessment.max_psi:.3f}; results: {args.out}")
    print(
        f"targets: <= {TARGET_SECONDS:g} s {'met' if result['targets']['seconds_met'] else 'MISSED'}, "
        f"< 1 GiB engine peak {'met' if result['targets']['engine_peak_met'] else 'MISSED'}"
    )
    print(f"drift_seconds={drift_seconds:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
