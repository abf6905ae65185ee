"""``make demo``: land the RiceFarms uploads and materialize every tenant × season partition.

Runs are executed in-process against the Dagster instance in ``<state_dir>/dagster`` so they
show up in the Dagster UI (``make dagster``) afterwards; MLflow runs and model versions show up
in the MLflow UI (``make mlflow``).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.ledger.tenants import register_season, register_tenant
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.demo.ricefarms import land_panel, load_panel, tenant_key_pair
from rai_assets.demo.summary import TenantSummary, summarize

SPEC_ID = "rice-yield-v1"


@dataclass(frozen=True)
class PartitionRun:
    """Outcome of one partition's run."""

    tenant: str
    season: str
    success: bool
    seconds: float
    run_id: str


def prepare_dagster_home(state_dir: Path, repo_root: Path) -> Path:
    """``<state_dir>/dagster`` with the repository's ``dagster.yaml``; sets ``DAGSTER_HOME``."""
    home = state_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    source = repo_root / "dagster.yaml"
    if source.is_file():
        shutil.copyfile(source, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def run_demo(
    state_dir: Path,
    *,
    max_tenants: int | None = None,
    max_seasons: int | None = None,
    progress: Callable[[str], None] = print,
) -> tuple[list[PartitionRun], list[TenantSummary]]:
    """Land the panel, register tenants and seasons, and materialize all partitions in season order.

    ``RAI_LEDGER_URL`` etc. must already be set (the CLI starts the embedded ledger first).
    Returns the per-partition runs and the per-tenant summaries.
    """
    from dagster import DagsterInstance

    from rai_assets.assets.partitions import add_partitions, partition_key
    from rai_assets.definitions import TENANT_SEASON_JOB, build_resources, defs

    resources = build_resources(resolve_env=True)
    ledger = resources["ledger"]
    store = resources["object_store"]
    assert isinstance(ledger, LedgerResource) and isinstance(store, ObjectStoreResource)

    panel = load_panel()
    tenants = sorted(panel["tenant"].unique())[:max_tenants]
    seasons = sorted(panel["season"].unique())[:max_seasons]
    panel = panel[panel["tenant"].isin(tenants) & panel["season"].isin(seasons)]
    progress(f"RiceFarms panel: {len(panel)} rows, {len(tenants)} tenants (villages) × {len(seasons)} seasons")

    keys_dir = state_dir / "demo" / "tenant-keys"
    batches = land_panel(store, panel, keys_dir)
    progress(f"landing zone: {len(batches)} signed batches ({sum(b.lines for b in batches)} lines) "
             f"at {store.uri('tenants')}")
    with ledger.connect() as conn:
        for i, season in enumerate(seasons, start=1):
            register_season(conn, season, ordinal=i, label=f"RiceFarms season {i}")
        for tenant in tenants:
            register_tenant(conn, tenant, tenant_key_pair(keys_dir, tenant).public_key_b64, SPEC_ID,
                            display_name=f"{tenant.title()} village")
    instance = DagsterInstance.get()
    add_partitions(instance, tenants=tenants, seasons=seasons)
    progress(f"registered {len(tenants)} tenants and {len(seasons)} seasons (ledger + Dagster partitions)")

    job = defs.resolve_job_def(TENANT_SEASON_JOB)
    runs: list[PartitionRun] = []
    total = len(tenants) * len(seasons)
    for season in seasons:
        for tenant in tenants:
            started = time.perf_counter()
            result = job.execute_in_process(
                instance=instance, partition_key=partition_key(tenant, season), raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                tags={"rai/tenant": tenant, "rai/season": season, "rai/trigger": "demo"},
            )
            run = PartitionRun(tenant, season, result.success, time.perf_counter() - started, result.run_id)
            runs.append(run)
            progress(f"[{len(runs):>2}/{total}] {season} {tenant:<14} {'ok  ' if run.success else 'FAIL'} "
                     f"{run.seconds:5.1f} s  run {run.run_id[:8]}")
    return runs, [summarize(ledger, t) for t in tenants]
