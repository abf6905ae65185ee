"""Benchmark of the landing sensor at scale (issue 12, goal 1): idle tick and draining new uploads.

Usage::

    python benchmarks/landing_sensor.py [--tenants N] [--repeats R] [--baseline-rev REV] [--out PATH]

Set-up (not timed): a temporary embedded Postgres with ``N`` registered tenants, a local object store holding
one season of history per tenant (manifest + data file, back-dated an hour, already handled), an ephemeral
Dagster instance with the tenant partitions.

Measured in the same run:

* **idle tick** (no new upload), median of ``R`` ticks, this version, and the **baseline**: the sensor at git
  revision ``--baseline-rev`` (the version before issue 12: lists every key, parses a cursor of every manifest
  ever handled), with that version's cursor for the same history;
* **drain**: ``N`` fresh uploads (a new season for every tenant) are landed, then ticks are evaluated until one
  requests nothing. Ticks run back to back here; the daemon runs one every ``SENSOR_INTERVAL_S`` seconds, so the
  time until the last upload is requested is ``(ticks - 1) x interval + that tick's duration`` at worst
  (reported), and the cursor's size after the drain and after the grace window.

The last line printed is ``landing_tick_idle_10k_s=<median idle tick> s``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from dagster import DagsterInstance  # noqa: E402
from report import write_result  # noqa: E402  (benchmarks/ is sys.path[0] when run as a script)

from rai_assets.adapters.ledger.embedded import start_embedded_postgres, stop_embedded_postgres  # noqa: E402
from rai_assets.adapters.ledger.resource import LedgerResource  # noqa: E402
from rai_assets.adapters.object_store import ObjectStoreResource  # noqa: E402
from rai_assets.assets.partitions import add_partitions  # noqa: E402
from rai_assets.loop import landing_sensor as current  # noqa: E402
from rai_assets.loop.jobs import SENSOR_INTERVAL_S  # noqa: E402
from rai_assets_tests.loop.scale import land_manifests, module_at_revision, register_tenants, tenant_ids  # noqa: E402
from rai_assets_tests.sensor_ticks import evaluate_sensor  # noqa: E402

DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "landing_sensor.json"
BASELINE_REV = "5e2d459"  # main before issue 12
TARGET_IDLE_S = 0.5
TARGET_DRAIN_S = 300.0


def timed_tick(sensor, instance, resources, cursor):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = evaluate_sensor(sensor, instance=instance, resources=resources, cursor=cursor)
    return time.perf_counter() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline-rev", default=BASELINE_REV)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    n = args.tenants
    logging.getLogger("dagster").setLevel(logging.WARNING)  # one INFO line per requested run otherwise
    baseline = module_at_revision(args.baseline_rev, "rai_assets/loop/landing_sensor.py", "baseline_landing_sensor")

    with tempfile.TemporaryDirectory(prefix="rai-landing-bench-") as tmp:
        pid = None
        try:
            start = time.perf_counter()
            url, pid = start_embedded_postgres(Path(tmp) / "pg")
            ledger = LedgerResource(owner_url=url)
            store = ObjectStoreResource(local_root=str(Path(tmp) / "objects"))
            resources = {"ledger": ledger, "object_store": store}
            tenants = tenant_ids(n)
            register_tenants(ledger, tenants, ["s01", "s02"])
            instance = DagsterInstance.ephemeral()
            add_partitions(instance, tenants=tenants, seasons=["s01", "s02"])
            an_hour_ago = time.time() - 3600
            history = land_manifests(store, [(t, "s01") for t in tenants], mtime=an_hour_ago)
            for key in history:  # each upload's data file, stored next to its manifest
                store.put_bytes(key.replace(".manifest.json", ".jsonl"), b"{}\n")
                os.utime(store.local_path(key).parent, (an_hour_ago, an_hour_ago))  # type: ignore[union-attr]
            print(f"set-up: {n:,} tenants, {2 * n:,} stored files in {time.perf_counter() - start:.1f} s "
                  "(not timed)")

            # idle ticks: this version (cursor: history handled), and the baseline with its own cursor
            cursor = json.dumps({"w": an_hour_ago + 1, "seen": [], "wait": []})
            idle = []
            for _ in range(args.repeats):
                seconds, result = timed_tick(current.landing_zone_sensor, instance, resources, cursor)
                assert not result.run_requests, "idle tick requested runs"
                idle.append(seconds)
            baseline_cursor = json.dumps(sorted(history))
            baseline_idle = []
            for _ in range(max(1, min(args.repeats, 3))):
                seconds, result = timed_tick(baseline.landing_zone_sensor, instance, resources, baseline_cursor)
                assert not result.run_requests
                baseline_idle.append(seconds)
            idle_s, baseline_idle_s = statistics.median(idle), statistics.median(baseline_idle)
            print(f"idle tick: {idle_s:.3f} s median ({min(idle):.3f}-{max(idle):.3f}); baseline "
                  f"{baseline_idle_s:.2f} s ({len(baseline_cursor) / 1e6:.1f} MB cursor); "
                  f"cursor now {len(cursor)} bytes")

            # drain: N fresh uploads
            land_manifests(store, [(t, "s02") for t in tenants])
            landed_at = time.time()
            ticks, requested = [], set()
            while True:
                seconds, result = timed_tick(current.landing_zone_sensor, instance, resources, cursor)
                cursor = result.cursor
                if not result.run_requests:
                    break
                ticks.append(seconds)
                requested.update(r.partition_key for r in result.run_requests)
            assert requested == {f"s02|{t}" for t in tenants}, f"{len(requested)} of {n} uploads requested"
            back_to_back_s = time.time() - landed_at
            daemon_s = (len(ticks) - 1) * SENSOR_INTERVAL_S + ticks[-1]
            cursor_after_drain = len(cursor)
            print(f"drain: {n:,} uploads in {len(ticks)} ticks of up to {current.MAX_FILES_PER_TICK:,} "
                  f"({statistics.median(ticks):.2f} s median tick, {back_to_back_s:.1f} s back to back); "
                  f"with the daemon's {SENSOR_INTERVAL_S} s interval: last requested {daemon_s:.0f} s after landing; "
                  f"baseline: {baseline.MAX_FILES_PER_TICK} a tick = {n // baseline.MAX_FILES_PER_TICK} ticks, "
                  f">= {n // baseline.MAX_FILES_PER_TICK * SENSOR_INTERVAL_S / 60:.0f} min")
            print(f"cursor: {cursor_after_drain:,} bytes right after the drain (digests of the uploads inside the "
                  f"{current.GRACE_S:.0f} s grace window), {len(cursor):,} bytes in the idle tick after")
        finally:
            if pid is not None:
                stopped = stop_embedded_postgres(Path(tmp) / "pg")
                print(f"embedded Postgres PID {stopped} stopped")

    result_doc = {
        "benchmark": "landing_sensor", "tenants": n, "cpu_count": os.cpu_count(),
        "idle_tick_s": idle, "idle_tick_median_s": idle_s,
        "baseline_rev": args.baseline_rev, "baseline_idle_tick_s": baseline_idle,
        "baseline_idle_tick_median_s": baseline_idle_s, "baseline_cursor_bytes": len(baseline_cursor),
        "drain_uploads": n, "drain_ticks": len(ticks), "drain_tick_s": ticks, "drain_back_to_back_s": back_to_back_s,
        "sensor_interval_s": SENSOR_INTERVAL_S, "drain_with_daemon_interval_s": daemon_s,
        "baseline_drain_ticks": n // baseline.MAX_FILES_PER_TICK,
        "cursor_bytes_after_drain": cursor_after_drain,
        "targets": {"idle_tick_s": TARGET_IDLE_S, "idle_met": idle_s <= TARGET_IDLE_S,
                    "drain_s": TARGET_DRAIN_S, "drain_met": daemon_s <= TARGET_DRAIN_S},
    }
    return write_result(args.out, result_doc, f"landing_tick_idle_{n // 1000}k_s={idle_s:.3f} s")


if __name__ == "__main__":
    raise SystemExit(main())
