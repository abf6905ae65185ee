"""Benchmark of a backfill over every season of many synthetic tenants (issue 12, goal 4): season waves vs one
run per partition, in the same session.

Usage::

    python benchmarks/season_backfill.py [--tenants N] [--seasons S] [--fields F] [--tenants-per-run K]
                                         [--out PATH]

Set-up (not timed): ``N`` synthetic tenants (``rai_assets.demo.synthetic``: ``F`` fields a season resampled
from the RiceFarms panel's rows of a plausible yield, seeded per tenant and season) landed and registered
twice, in two deployments of their own (embedded Postgres databases, MLflow stores, object stores, ephemeral
Dagster instances); a warm-up tenant's first two seasons run before either is timed (imports paid once per
process).

Timed: the **baseline** runs ``tenant_season_job`` once per partition, season by season (``N × S`` runs, the
per-partition policy's count); the **waves** run ``season_wave_job`` through the season-wave driver with at most
``K`` tenants a run (``ceil(N / K)`` runs a season). Both in this process, one run after another (the
machine's 2 cores do not make room for parallel runs; with a webserver a season's waves run side by side).
The benchmark then checks that both deployments hold the same registry history for every tenant (snapshot
roots, model versions and states, champions in order) — exit 1 if not. The last line printed is
``season_backfill_wall_s=<waves' wall time> s``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import pandas as pd  # noqa: E402
import psycopg  # noqa: E402
from dagster import DagsterInstance  # noqa: E402
from report import write_result  # noqa: E402  (benchmarks/ is sys.path[0] when run as a script)

from rai_assets.adapters.ledger.embedded import (  # noqa: E402
    LEDGER_DATABASE,
    start_embedded_postgres,
    stop_embedded_postgres,
)
from rai_assets.adapters.ledger.resource import LedgerResource  # noqa: E402
from rai_assets.adapters.object_store import ObjectStoreResource  # noqa: E402
from rai_assets.adapters.registry import MlflowRegistryResource  # noqa: E402
from rai_assets.adapters.signer import SignerResource  # noqa: E402
from rai_assets.backfill.driver import InProcessLauncher, run_season_backfill  # noqa: E402
from rai_assets.backfill.history import registry_history  # noqa: E402
from rai_assets.backfill.plan import plan_waves  # noqa: E402
from rai_assets.backfill.wave import SEASON_WAVE_JOB  # noqa: E402
from rai_assets.definitions import TENANT_SEASON_JOB, build_definitions  # noqa: E402
from rai_assets.demo.ricefarms import load_panel  # noqa: E402
from rai_assets.demo.runner import land_and_register, materialize_partitions  # noqa: E402
from rai_assets.demo.synthetic import synthetic_season  # noqa: E402

DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "season_backfill.json"
#: Rows resampled for the synthetic tenants: the panel's rows up to this yield (kg/ha; 2 of 1,026 rows are above,
#: one at 27,500). Resampled with jitter, those outliers make some 30-field seasons fail the snapshot suite's
#: "yield ≤ 20,000 for 98 % of rows" — correctly, but this benchmark measures backfills, not refusals.
PLAUSIBLE_YIELD_KG_HA = 15_000
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _deployment(server_url: str, root: Path) -> dict[str, object]:
    name = f"b_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return {"ledger": LedgerResource(owner_url=server_url.replace(f"/{LEDGER_DATABASE}?", f"/{name}?")),
            "object_store": ObjectStoreResource(local_root=str(root / "objects")),
            "mlflow_registry": MlflowRegistryResource(state_dir=str(root / "mlflow")),
            "signer": SignerResource(state_dir=str(root))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--seasons", type=int, default=3)
    parser.add_argument("--fields", type=int, default=30, help="fields a tenant-season (RiceFarms: 19–37)")
    parser.add_argument("--tenants-per-run", type=int, default=250)
    parser.add_argument("--waves-only", action="store_true",
                        help="skip the one-run-per-partition baseline (and the history comparison): for sizes whose "
                        "baseline would take hours")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    logging.getLogger("dagster").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `kill PID`: the finally below stops Postgres

    tenants = [f"synth-{i:05d}" for i in range(args.tenants)]
    seasons = [f"s{j:02d}" for j in range(1, args.seasons + 1)]
    base = load_panel()
    base = base[base["goutput"] / base["size"] <= PLAUSIBLE_YIELD_KG_HA]
    panel = pd.concat([synthetic_season(t, s, args.fields, seed=1000 * i + j, panel=base)
                       for i, t in enumerate(tenants) for j, s in enumerate(seasons)], ignore_index=True)
    with tempfile.TemporaryDirectory(prefix="rai-season-backfill-") as tmp_dir:
        tmp = Path(tmp_dir)
        try:
            server, _pid = start_embedded_postgres(tmp / "pg")
            timings: dict[str, float] = {}
            histories: dict[str, dict[str, object]] = {}
            runs: dict[str, int] = {}
            # warm-up, not timed: the first runs of a process pay imports (Great Expectations, MLflow's flavours)
            warm = _deployment(server, tmp / "warm-up")
            warm_instance = DagsterInstance.ephemeral()
            warm_panel = panel[panel["tenant"] == tenants[0]].assign(tenant="warm-up")
            land_and_register(warm["ledger"], warm["object_store"], warm_instance, warm_panel,  # type: ignore[arg-type]
                              tmp / "keys", bad_uploads=False)
            materialize_partitions(build_definitions(warm).resolve_job_def(TENANT_SEASON_JOB), warm_instance,
                                   ["warm-up"], seasons[:2], progress=lambda _: None)
            for mode in ("waves",) if args.waves_only else ("per_partition", "waves"):
                res = _deployment(server, tmp / mode)
                instance = DagsterInstance.ephemeral()
                started = time.perf_counter()
                land_and_register(res["ledger"], res["object_store"], instance, panel,  # type: ignore[arg-type]
                                  tmp / "keys", bad_uploads=False)
                print(f"{mode}: landed {len(panel)} rows in {time.perf_counter() - started:.1f} s", flush=True)
                defs = build_definitions(res)
                started = time.perf_counter()
                if mode == "per_partition":
                    done = materialize_partitions(defs.resolve_job_def(TENANT_SEASON_JOB), instance, tenants, seasons,
                                                  progress=lambda _: None)
                    ok, runs[mode] = all(r.success for r in done), len(done)
                else:
                    launcher = InProcessLauncher(defs.resolve_job_def(SEASON_WAVE_JOB), instance, QUIET)
                    report = run_season_backfill(launcher, plan_waves(tenants, seasons, args.tenants_per_run),
                                                 progress=lambda line: print(f"  {line}", flush=True))
                    ok, runs[mode] = report.succeeded, len(report.runs)
                timings[mode] = time.perf_counter() - started
                print(f"{mode}: {runs[mode]} runs, {timings[mode]:.1f} s, {'ok' if ok else 'FAILED'}", flush=True)
                if not ok:
                    print(f"{mode}: a run failed", file=sys.stderr)
                    return 1
                histories[mode] = {t: registry_history(res["ledger"], t) for t in tenants}  # type: ignore[arg-type]
        finally:
            print(f"embedded Postgres PID {stop_embedded_postgres(tmp / 'pg')} stopped")
    same = histories["per_partition"] == histories["waves"] if "per_partition" in histories else None
    differing = [t for t in tenants if same is False and histories["per_partition"][t] != histories["waves"][t]]
    for tenant in differing[:3]:
        for part in ("snapshots", "models", "champions"):
            one, other = histories["per_partition"][tenant][part], histories["waves"][tenant][part]  # type: ignore[index]
            if one != other:
                print(f"{tenant} {part}: one run per partition {one} vs waves {other}")
    champions = sum(bool(h["champions"]) for h in histories["waves"].values())  # type: ignore[index]
    partitions = args.tenants * args.seasons
    baseline = (f"one run per partition {runs['per_partition']} runs in {timings['per_partition']:.1f} s "
                f"({timings['per_partition'] / partitions:.2f} s a partition); registry history " +
                (f"identical for all {args.tenants} tenants" if same else f"DIFFERENT for {len(differing)} tenants")
                if same is not None else "baseline not run (--waves-only)")
    print(f"{args.tenants} tenants × {args.seasons} seasons ({partitions} partitions, {args.fields} fields each): "
          f"waves {runs['waves']} runs in {timings['waves']:.1f} s ({timings['waves'] / partitions:.2f} s a "
          f"partition) vs {baseline}; {champions} tenants with a champion")
    expected_runs = args.seasons * math.ceil(args.tenants / args.tenants_per_run)
    doc = {"benchmark": "season_backfill", "tenants": args.tenants, "seasons": args.seasons, "fields": args.fields,
           "tenants_per_run": args.tenants_per_run, "cpu_count": os.cpu_count(), "partitions": partitions,
           "waves": {"runs": runs["waves"], "wall_s": timings["waves"]},
           "baseline_one_run_per_partition": {"runs": runs["per_partition"], "wall_s": timings["per_partition"]}
           if same is not None else None,
           "history_identical": same, "tenants_with_different_history": differing,
           "tenants_with_champion": champions,
           "runs_as_planned": runs["waves"] == expected_runs}
    write_result(args.out, doc, f"season_backfill_wall_s={timings['waves']:.1f} s")
    return 1 if same is False else 0


if __name__ == "__main__":
    raise SystemExit(main())
