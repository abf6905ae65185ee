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

import pandas as pd
from dagster import DagsterInstance, JobDefinition

from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.ledger.tenants import register_season, register_tenant
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.demo.ricefarms import LandedBatch, land_panel, load_panel, tenant_key_pair
from rai_assets.demo.summary import TenantSummary, summarize

SPEC_ID = "rice-yield-v1"
COHORT = "ricefarms"


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


def land_and_register(ledger: LedgerResource, store: ObjectStoreResource, instance: DagsterInstance,
                      panel: pd.DataFrame, keys_dir: Path, bad_uploads: bool = True
                      ) -> tuple[list[str], list[str], list[LandedBatch]]:
    """Write the panel's signed uploads, register its tenants and seasons (ledger + Dagster partitions).

    Returns:
        (tenants, seasons in time order, landed batches).
    """
    from rai_assets.assets.partitions import add_partitions

    tenants = sorted(panel["tenant"].unique())
    seasons = sorted(panel["season"].unique())
    batches = land_panel(store, panel, keys_dir, bad_uploads)
    for tenant in tenants:
        with ledger.connect(tenant) as conn:
            register_tenant(conn, tenant, tenant_key_pair(keys_dir, tenant).public_key_b64, SPEC_ID,
                            display_name=f"{tenant.title()} village")
            for season in seasons:  # each village's own calendar (issue 8 item 3)
                register_season(conn, tenant, season, ordinal=int(season.lstrip("s")),
                                label=f"RiceFarms season {season}")
    add_partitions(instance, tenants=tenants, seasons=seasons)
    return tenants, seasons, batches


def opt_in_cohort(ledger: LedgerResource, tenants: list[str], cohort: str = COHORT) -> list[str]:
    """Each village's manager opts it in to the pooled cohort (REG-9; audited). Returns the new members."""
    from rai_assets.adapters.ledger.cohorts import active_membership
    from rai_assets.governance.actions import cohort_join

    joined = []
    for tenant in tenants:
        with ledger.connect(tenant) as conn:
            current = active_membership(conn, tenant)
        if current is None:
            cohort_join(ledger, tenant=tenant, cohort=cohort, actor=f"manager@{tenant}",
                        reason="demo: pool the RiceFarms villages of spec rice-yield-v1")
            joined.append(tenant)
    return joined


def materialize_partitions(job: JobDefinition, instance: DagsterInstance, tenants: list[str], seasons: list[str],
                           progress: Callable[[str], None] = print) -> list[PartitionRun]:
    """Run ``job`` for every (tenant, season), season by season (a season needs the earlier ones)."""
    from rai_assets.assets.partitions import partition_key

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
    return runs


def run_demo(
    state_dir: Path,
    *,
    max_tenants: int | None = None,
    max_seasons: int | None = None,
    cohort: bool = True,
    unfair_tenant: bool = False,
    progress: Callable[[str], None] = print,
) -> tuple[list[PartitionRun], list[TenantSummary]]:
    """Land the panel, register tenants and seasons, and materialize all partitions in season order.

    ``RAI_LEDGER_URL`` etc. must already be set (the CLI starts the embedded ledger first). ``unfair_tenant``
    adds the synthetic tenant of :mod:`rai_assets.demo.unfair_tenant` (outside the cohort), whose last
    season's bias audit fails.
    Returns the per-partition runs and the per-tenant summaries.
    """
    from rai_assets.definitions import TENANT_SEASON_JOB, build_definitions, build_resources, resolved_stores

    defs = build_definitions(build_resources())

    stores = resolved_stores()
    ledger, store = stores.ledger, stores.object_store

    panel = load_panel()
    panel = panel[panel["tenant"].isin(sorted(panel["tenant"].unique())[:max_tenants])
                  & panel["season"].isin(sorted(panel["season"].unique())[:max_seasons])]
    instance = DagsterInstance.get()
    tenants, seasons, batches = land_and_register(ledger, store, instance, panel, state_dir / "demo" / "tenant-keys")
    progress(f"RiceFarms panel: {len(panel)} rows, {len(tenants)} tenants (villages) × {len(seasons)} seasons")
    progress(f"landing zone: {len(batches)} signed batches ({sum(b.lines for b in batches)} lines) "
             f"at {store.uri('tenants')}")
    progress(f"registered {len(tenants)} tenants and {len(seasons)} seasons (ledger + Dagster partitions)")
    if cohort:
        joined = opt_in_cohort(ledger, tenants)
        progress(f"cohort {COHORT!r}: {len(tenants)} members ({len(joined)} opted in now by their managers)")
    job = defs.resolve_job_def(TENANT_SEASON_JOB)
    runs = materialize_partitions(job, instance, tenants, seasons, progress)
    if unfair_tenant:
        from rai_assets.demo.unfair_tenant import unfair_tenant_panel

        extra = unfair_tenant_panel(n_seasons=len(seasons))
        extra_tenants, extra_seasons, _ = land_and_register(ledger, store, instance, extra,
                                                            state_dir / "demo" / "tenant-keys", bad_uploads=False)
        progress(f"synthetic tenant {extra_tenants[0]}: {len(extra)} rows; in {extra_seasons[-1]} a planthopper "
                 "outbreak hits the high-yielding variety only (its bias audit should fail)")
        runs += materialize_partitions(job, instance, extra_tenants, extra_seasons, progress)
        tenants = [*tenants, *extra_tenants]
    return runs, [summarize(ledger, t) for t in tenants]
