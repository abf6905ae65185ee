"""Benchmark of the drift sensor at scale (issue 12, goal 2): 10,000 new drift reports → guard decisions.

Usage::

    python benchmarks/drift_sensor.py [--reports N] [--baseline-rev REV] [--out PATH]

Set-up (not timed): a temporary embedded Postgres with ``N`` registered tenants and two seasons, one drift
report per tenant (a ledger row and a ``drift_report`` materialization in an ephemeral Dagster instance; the
reports are not actionable, so each one costs the full guard evaluation and its five recorded decisions, and
no run is requested).

Measured in the same run:

* the **baseline**: one tick of the sensor at git revision ``--baseline-rev`` (before issue 12: 25 reports a
  tick, several ledger connections and a runs query per report), extrapolated to ``N`` reports at one tick
  per ``SENSOR_INTERVAL_S``;
* this version: ticks evaluated until the cursor stops moving; the time until the last report is decided is
  ``(ticks - 1) x interval + the last tick's duration`` with the daemon's interval (reported), and every report
  is checked to have its five guard decisions.

The last line printed is ``drift_sensor_10k_reports_s=<that time> s``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from dagster import DagsterInstance  # noqa: E402
from report import write_result  # noqa: E402  (benchmarks/ is sys.path[0] when run as a script)

from rai_assets.adapters.ledger.embedded import start_embedded_postgres, stop_embedded_postgres  # noqa: E402
from rai_assets.adapters.ledger.resource import LedgerResource  # noqa: E402
from rai_assets.loop import drift_sensor as current  # noqa: E402
from rai_assets.loop.jobs import SENSOR_INTERVAL_S  # noqa: E402
from rai_assets_tests.loop.scale import add_drift_reports, module_at_revision, register_tenants, tenant_ids  # noqa: E402
from rai_assets_tests.sensor_ticks import evaluate_sensor  # noqa: E402

DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "drift_sensor.json"
BASELINE_REV = "5e2d459"  # main before issue 12
TARGET_S = 300.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument("--baseline-rev", default=BASELINE_REV)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    n = args.reports
    logging.getLogger("dagster").setLevel(logging.WARNING)
    baseline = module_at_revision(args.baseline_rev, "rai_assets/loop/drift_sensor.py", "baseline_drift_sensor")

    with tempfile.TemporaryDirectory(prefix="rai-drift-sensor-bench-") as tmp:
        pid = None
        try:
            start = time.perf_counter()
            url, pid = start_embedded_postgres(Path(tmp) / "pg")
            ledger = LedgerResource(owner_url=url)
            resources = {"ledger": ledger}
            tenants = tenant_ids(n)
            register_tenants(ledger, tenants, ["s01", "s02"])
            instance = DagsterInstance.ephemeral()
            shas = add_drift_reports(ledger, instance, [(t, "s01") for t in tenants])
            print(f"set-up: {n:,} tenants and drift reports in {time.perf_counter() - start:.1f} s (not timed)")

            start = time.perf_counter()
            result = evaluate_sensor(baseline.drift_sensor, instance=instance, resources=resources)
            baseline_tick_s = time.perf_counter() - start
            per_tick = baseline.MAX_REPORTS_PER_TICK
            baseline_ticks = -(-n // per_tick)
            baseline_s = (baseline_ticks - 1) * SENSOR_INTERVAL_S + baseline_tick_s
            print(f"baseline ({args.baseline_rev}): one tick of {per_tick} reports in {baseline_tick_s:.2f} s "
                  f"({baseline_tick_s / per_tick * 1000:.0f} ms a report); {n:,} reports = {baseline_ticks} ticks "
                  f"= {baseline_s / 3600:.1f} h at the {SENSOR_INTERVAL_S} s interval")

            cursor, ticks = None, []
            while True:
                start = time.perf_counter()
                result = evaluate_sensor(current.drift_sensor, instance=instance, resources=resources, cursor=cursor)
                seconds = time.perf_counter() - start
                if result.cursor == cursor:
                    break
                cursor = result.cursor
                ticks.append(seconds)
                print(f"tick {len(ticks)}: {seconds:.1f} s", flush=True)
            decided: Counter[str] = Counter()
            with ledger.connect_owner() as conn:  # the schema owner (superuser here): one query, not one per tenant
                decided.update(r["drift_report_sha256"] for r in conn.execute(
                    "SELECT drift_report_sha256 FROM guard_decisions WHERE guard = 'drift'").fetchall())
            missed = [s for s in shas if decided[s] < 1]
            assert not missed, f"{len(missed)} reports without a decision"
            total_s = (len(ticks) - 1) * SENSOR_INTERVAL_S + ticks[-1]
            print(f"this version: {n:,} reports in {len(ticks)} ticks of up to {current.MAX_REPORTS_PER_TICK:,} "
                  f"({statistics.median(ticks):.1f} s median tick, {sum(ticks) / n * 1000:.1f} ms a report); "
                  f"every report decided; last decided {total_s:.0f} s after the first tick with the "
                  f"{SENSOR_INTERVAL_S} s interval")
        finally:
            if pid is not None:
                print(f"embedded Postgres PID {stop_embedded_postgres(Path(tmp) / 'pg')} stopped")

    doc = {
        "benchmark": "drift_sensor", "reports": n, "cpu_count": os.cpu_count(),
        "baseline_rev": args.baseline_rev, "baseline_tick_s": baseline_tick_s,
        "baseline_reports_per_tick": per_tick, "baseline_extrapolated_s": baseline_s,
        "ticks": len(ticks), "tick_s": ticks, "reports_per_tick": current.MAX_REPORTS_PER_TICK,
        "sensor_interval_s": SENSOR_INTERVAL_S, "all_decided_s": total_s,
        "targets": {"seconds": TARGET_S, "met": total_s <= TARGET_S},
    }
    return write_result(args.out, doc, f"drift_sensor_{n // 1000}k_reports_s={total_s:.0f} s")


if __name__ == "__main__":
    raise SystemExit(main())
