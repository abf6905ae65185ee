"""Benchmark of tenant × season partitions at scale (issue 12, goal 4): what the Dagster UI and daemon do with
20,000 tenants × 6 seasons (120,000 partitions per asset, past the ~100,000 Dagster documents).

Usage::

    python benchmarks/partitions_scale.py [--tenants N] [--seasons S] [--storage postgres|sqlite] [--out PATH]

Set-up: a temporary Dagster instance whose run, event log and schedule storage is Postgres (an embedded
pgserver database, as production's Helm values use Postgres storage) or SQLite (``dagster.yaml``'s local
default, ``--storage sqlite``). The steps, each timed (``rai_assets_tests.loop.scale.partition_scale_figures``):
register the tenant and season dynamic partitions; list every multi-partition key; record a runless
``dataset_snapshot`` materialization for every tenant in the middle season; read the asset's materialized
partitions and build its partition status (what the webserver's ``partitionStats`` reads), then again from the
stored cache; create and store a backfill of that season over every tenant for every tenant × season asset
(not run). The last line printed is ``partition_status_<N/1000>k_s=<seconds> s``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path
from urllib.parse import urlsplit

warnings.filterwarnings("ignore", message=".*currently in (beta|preview)")  # from the definitions, at import
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import psycopg  # noqa: E402
from dagster import DagsterInstance  # noqa: E402
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph  # noqa: E402
from report import write_result  # noqa: E402  (benchmarks/ is sys.path[0] when run as a script)

from rai_assets.adapters.ledger.embedded import start_embedded_postgres, stop_embedded_postgres  # noqa: E402
from rai_assets.definitions import ALL_ASSETS  # noqa: E402
from rai_assets_tests.loop.scale import partition_scale_figures, tenant_ids  # noqa: E402

DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "partitions_scale.json"
DAGSTER_DOCUMENTED_LIMIT = 100_000  # partitions per asset (Dagster's partitioning docs)


def postgres_instance(home: Path, url: str) -> DagsterInstance:
    """A Dagster instance in ``home`` with run, event log and schedule storage in database ``dagster`` at ``url``."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE dagster")
    dagster_url = urlsplit(url)._replace(path="/dagster").geturl()
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(
        f"telemetry:\n  enabled: false\nstorage:\n  postgres:\n    postgres_url: \"{dagster_url}\"\n",
        encoding="utf-8")
    return DagsterInstance.from_config(str(home))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=20_000)
    parser.add_argument("--seasons", type=int, default=6)
    parser.add_argument("--storage", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    logging.getLogger("dagster").setLevel(logging.WARNING)
    asset_graph = AssetGraph.from_assets(ALL_ASSETS)  # what the daemon plans with; no resources needed
    tenants = tenant_ids(args.tenants)
    seasons = [f"s{i:02d}" for i in range(1, args.seasons + 1)]
    season = seasons[len(seasons) // 2]
    with tempfile.TemporaryDirectory(prefix="rai-partitions-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        pid = None
        try:
            if args.storage == "postgres":
                url, pid = start_embedded_postgres(tmp / "pg")
                instance = postgres_instance(tmp / "dagster", url)
            else:
                (tmp / "dagster").mkdir()
                instance = DagsterInstance.local_temp(tempdir=str(tmp / "dagster"))
            figures, counts = partition_scale_figures(instance, asset_graph, tenants, seasons, season)
            instance.dispose()
        finally:
            if pid is not None:
                print(f"embedded Postgres PID {stop_embedded_postgres(tmp / 'pg')} stopped")
    partitions = args.tenants * args.seasons
    assert counts["partition_keys"] == partitions, counts
    assert counts["status_materialized"] == args.tenants, counts
    for name, seconds in figures.items():
        print(f"{name:28s} {seconds:8.3f} s")
    print(f"{partitions} partitions per asset ({args.tenants} tenants × {args.seasons} seasons, "
          f"{args.storage} storage); backfill of {season} over every tenant targets "
          f"{counts['backfill_partitions']} asset partitions ({counts['backfill_assets']} assets)")
    doc = {"benchmark": "partitions_scale", "tenants": args.tenants, "seasons": args.seasons,
           "storage": args.storage, "cpu_count": os.cpu_count(), "partitions_per_asset": partitions,
           "dagster_documented_limit": DAGSTER_DOCUMENTED_LIMIT, "seconds": figures, "counts": counts}
    headline = f"partition_status_{args.tenants // 1000}k_s={figures['partition_status_s']:.3f} s"
    return write_result(args.out, doc, headline)


if __name__ == "__main__":
    raise SystemExit(main())
