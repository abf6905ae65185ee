"""Synthetic tenants, uploads and drift reports at scale, cheaply: for the at-scale sensor tests (CI-sized) and
``benchmarks/landing_sensor.py`` / ``benchmarks/drift_sensor.py`` (10,000 tenants).

Uploads are bare manifests (the landing sensor only lists keys); drift reports are ledger rows plus runless
``drift_report`` materializations (what the drift sensor reads).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from dagster import AssetKey, AssetMaterialization, DagsterInstance
from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph
from psycopg.types.json import Jsonb

from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.ledger.tenants import register_season, register_tenant
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.assets.partitions import add_partitions, partition_key, tenant_season_partitions
from rai_assets.domain.ingestion import MANIFEST_SUFFIX
from rai_assets.domain.signing import KeyPair

T = TypeVar("T")
SPEC = "rice-yield-v1"
NOT_ACTIONABLE = {"verdict": "no_drift", "reasons": [],
                  "assessment": {"n_current": 500, "min_sample": 30, "max_psi": 0.01, "features": []}}


def tenant_ids(n: int, prefix: str = "t") -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(n)]


def register_tenants(ledger: LedgerResource, tenants: Iterable[str], seasons: Iterable[str] = ()) -> None:
    """Register tenants (one shared public key) and seasons, in one transaction."""
    public_key = KeyPair.generate().public_key_b64
    seasons = list(seasons)
    with ledger.connect() as conn:
        for tenant in tenants:
            LedgerResource.switch_tenant(conn, tenant)
            register_tenant(conn, tenant, public_key, SPEC)
            for ordinal, season in enumerate(seasons, start=1):  # each tenant's own calendar
                register_season(conn, tenant, season, ordinal)


def land_manifests(store: ObjectStoreResource, uploads: Iterable[tuple[str, str]], name: str = "batch",
                   mtime: float | None = None) -> list[str]:
    """One manifest per (tenant, season); ``mtime`` (local mode) back-dates the file and its directory."""
    keys = []
    for tenant, season in uploads:
        key = f"tenants/{tenant}/landing/{season}/{name}{MANIFEST_SUFFIX}"
        store.put_bytes(key, b"{}", write_once=True, content_type="application/json")
        keys.append(key)
        path = store.local_path(key)
        if mtime is not None and path is not None:
            os.utime(path, (mtime, mtime))
            os.utime(Path(path).parent, (mtime, mtime))
    return keys


def add_drift_reports(ledger: LedgerResource, instance: DagsterInstance, reports: list[tuple[str, str]],
                      body: dict | None = None) -> list[str]:
    """A drift report (ledger row + runless materialization) per (tenant, season); returns their digests."""
    shas = []
    with ledger.connect() as conn:
        for tenant, season in reports:
            doc = {**(body or NOT_ACTIONABLE), "tenant": tenant, "season": season}
            sha = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
            LedgerResource.switch_tenant(conn, tenant)
            conn.execute(
                "INSERT INTO drift_reports (tenant_id, season_id, body_sha256, signature, signer_public_key,"
                " object_key, verdict, max_psi, body) VALUES (%s, %s, %s, 'x', 'x', 'x', %s, %s, %s)",
                (tenant, season, sha, doc["verdict"], doc["assessment"]["max_psi"], Jsonb(doc)))
            shas.append(sha)
    add_partitions(instance, tenants=sorted({t for t, _ in reports}), seasons=sorted({s for _, s in reports}))
    for (tenant, season), sha in zip(reports, shas, strict=True):
        instance.report_runless_asset_event(AssetMaterialization(
            "drift_report", partition=str(partition_key(tenant, season)), metadata={"sha256": sha}))
    return shas


def module_at_revision(rev: str, path: str, name: str) -> ModuleType:
    """Load ``path`` as it was at git revision ``rev`` (a benchmark's baseline: the code before the change)."""
    root = Path(__file__).resolve().parents[2]
    source = subprocess.run(["git", "-C", str(root), "show", f"{rev}:{path}"], check=True, capture_output=True,
                            text=True).stdout
    module = ModuleType(name)
    module.__file__ = f"{rev}:{path}"
    sys.modules[name] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def timed(figures: dict[str, float], name: str, fn: Callable[[], T]) -> T:
    """Call ``fn``; record its wall time in seconds as ``figures[name]`` and return its result."""
    started = time.perf_counter()
    result = fn()
    figures[name] = time.perf_counter() - started
    return result


def partition_scale_figures(instance: DagsterInstance, asset_graph: BaseAssetGraph, tenants: list[str],
                            seasons: list[str], materialized_season: str,
                            materialized_tenants: int | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    """Register ``tenants`` × ``seasons`` as the tenant × season dynamic partitions of ``instance``, record a
    runless materialization of ``dataset_snapshot`` in ``materialized_season`` for the first
    ``materialized_tenants`` tenants (all by default; stored with ``store_event_batch``, 1,000 a batch — one
    statement a batch on Postgres storage, one event at a time on SQLite), then do what
    the Dagster webserver and daemon do with them, timing each step (seconds, wall clock):

    * ``add_partitions_s``: registering the partitions (``add_partitions``);
    * ``partition_keys_s``: listing every multi-partition key (``MultiPartitionsDefinition.get_partition_keys``
      against the instance, as the UI's partition bar and the backfill dialog do);
    * ``materialize_s``: recording the runless materializations (set-up, reported for scale);
    * ``materialized_partitions_s``: ``DagsterInstance.get_materialized_partitions`` of the asset;
    * ``partition_status_s``: the asset's partition status cache built from scratch
      (``get_and_update_asset_status_cache_value``: what the webserver's ``assetNodes { partitionStats }``
      resolver reads), ``partition_status_cached_s`` the same call again with the cache stored;
    * ``backfill_create_s``: creating and storing a ``PartitionBackfill`` over ``materialized_season`` of every
      tenant for every tenant × season asset (what launching a backfill from the UI does; nothing is run).

    Returns the timings and the observed counts (``partition_keys``, ``first_key``, ``last_key``,
    ``materialized_partitions``, ``status_materialized``, ``status_partitions``, ``backfill_partitions``,
    ``backfill_assets``, ``backfill_id``) for the caller to check.
    """
    from dagster._core.definitions.partitions.context import partition_loading_context
    from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
    from dagster._core.events.log import EventLogEntry
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID
    from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value
    from dagster._core.utils import make_new_backfill_id

    figures: dict[str, float] = {}
    timed(figures, "add_partitions_s", lambda: add_partitions(instance, tenants=tenants, seasons=seasons))
    keys = timed(figures, "partition_keys_s",
                 lambda: tenant_season_partitions.get_partition_keys(dynamic_partitions_store=instance))
    asset = AssetKey("dataset_snapshot")

    def materialize() -> None:
        chosen = tenants[:materialized_tenants] if materialized_tenants is not None else tenants
        for start in range(0, len(chosen), 1000):
            instance.event_log_storage.store_event_batch([EventLogEntry(
                user_message="", level=logging.INFO, job_name=RUNLESS_JOB_NAME, run_id=RUNLESS_RUN_ID,
                error_info=None, timestamp=time.time(), step_key=None,
                dagster_event=DagsterEvent(
                    event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value, job_name=RUNLESS_JOB_NAME,
                    event_specific_data=StepMaterializationData(AssetMaterialization(
                        asset, partition=str(partition_key(tenant, materialized_season))))))
                for tenant in chosen[start:start + 1000]])

    timed(figures, "materialize_s", materialize)
    materialized = timed(figures, "materialized_partitions_s", lambda: instance.get_materialized_partitions(asset))
    status = timed(figures, "partition_status_s", lambda: get_and_update_asset_status_cache_value(
        instance, asset, tenant_season_partitions))
    timed(figures, "partition_status_cached_s", lambda: get_and_update_asset_status_cache_value(
        instance, asset, tenant_season_partitions))
    assert status is not None, "no partition status for dataset_snapshot"
    status_subset = status.deserialize_materialized_partition_subsets(tenant_season_partitions)
    selection = sorted(k for k in asset_graph.materializable_asset_keys
                       if asset_graph.get(k).partitions_def == tenant_season_partitions)

    def create_backfill() -> PartitionBackfill:
        backfill = PartitionBackfill.from_asset_partitions(
            backfill_id=make_new_backfill_id(), asset_graph=asset_graph,
            partition_names=[str(partition_key(t, materialized_season)) for t in tenants],
            asset_selection=selection, backfill_timestamp=time.time(), tags={}, dynamic_partitions_store=instance,
            all_partitions=False, title=f"{materialized_season} of every tenant", description=None, run_config=None)
        instance.add_backfill(backfill)
        return backfill

    backfill = timed(figures, "backfill_create_s", create_backfill)
    stored = instance.get_backfill(backfill.backfill_id)
    assert stored is not None and stored.asset_backfill_data is not None, "the backfill was not stored"
    target = stored.asset_backfill_data.target_subset
    with partition_loading_context(dynamic_partitions_store=instance):
        num_partitions = tenant_season_partitions.get_num_partitions()
    counts: dict[str, Any] = {
        "partition_keys": len(keys), "first_key": keys[0] if keys else None, "last_key": keys[-1] if keys else None,
        "materialized_partitions": len(materialized), "status_materialized": len(status_subset),
        "status_partitions": num_partitions,
        "backfill_partitions": target.num_partitions_and_non_partitioned_assets,
        "backfill_assets": len(target.asset_keys), "backfill_id": backfill.backfill_id,
    }
    return figures, counts
