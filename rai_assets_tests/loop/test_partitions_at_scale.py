"""Tenant × season partitions at a CI-sized scale (issue 12, goal 4): 2,000 tenants × 6 seasons registered as
dynamic partitions; the key list, the materialized partitions and partition status the webserver reads, and a
backfill of one season over every tenant (created, not run) are all correct. Counts and keys only, never times:
the 20,000-tenant figures are measured by ``benchmarks/partitions_scale.py``.
"""

from __future__ import annotations

from pathlib import Path

from dagster import DagsterInstance
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph

from rai_assets.assets.partitions import tenant_season_partitions
from rai_assets.definitions import ALL_ASSETS
from rai_assets_tests.loop.scale import partition_scale_figures, tenant_ids

TENANTS = 2_000
SEASONS = [f"s{i:02d}" for i in range(1, 7)]
MATERIALIZED = 200  # SQLite stores runless events one at a time (~10 ms each)
# downstream of learning_events through _EARLIER_SEASONS_OF_TENANT (season dimension: AllPartitionMapping), so a
# backfill of one season reaches every season of these three for the tenants selected
ALL_SEASON_ASSETS = {"dataset_snapshot", "trained_model", "serving_model"}


def test_2000_tenants_by_6_seasons_list_report_status_and_backfill(tmp_path: Path) -> None:
    (tmp_path / "dagster").mkdir()
    instance = DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster"))
    tenants = tenant_ids(TENANTS)
    asset_graph = AssetGraph.from_assets(ALL_ASSETS)
    figures, counts = partition_scale_figures(instance, asset_graph, tenants, SEASONS, "s03", MATERIALIZED)

    assert set(figures) == {"add_partitions_s", "partition_keys_s", "materialize_s", "materialized_partitions_s",
                            "partition_status_s", "partition_status_cached_s", "backfill_create_s"}
    assert counts["partition_keys"] == counts["status_partitions"] == TENANTS * len(SEASONS)
    # MultiPartitionKey strings list the dimensions alphabetically (season|tenant), seasons in the order added
    assert (counts["first_key"], counts["last_key"]) == ("s01|t00000", "s06|t01999")
    assert counts["materialized_partitions"] == counts["status_materialized"] == MATERIALIZED
    assert instance.get_dynamic_partitions("tenant") == tenants
    assert instance.get_dynamic_partitions("season") == SEASONS

    backfill = instance.get_backfill(counts["backfill_id"])
    assert backfill is not None and backfill.asset_backfill_data is not None
    target = backfill.asset_backfill_data.target_subset
    partitioned = {k.to_user_string() for k in asset_graph.materializable_asset_keys
                   if asset_graph.get(k).partitions_def == tenant_season_partitions}
    assert {k.to_user_string() for k in target.asset_keys} == partitioned
    for key in target.asset_keys:
        subset = {str(p) for p in target.get_partitions_subset(key).get_partition_keys()}
        if key.to_user_string() in ALL_SEASON_ASSETS:
            assert len(subset) == TENANTS * len(SEASONS), key
        else:
            assert subset == {f"s03|{t}" for t in tenants}, key
    assert counts["backfill_partitions"] == (
        TENANTS * len(SEASONS) * len(ALL_SEASON_ASSETS) + TENANTS * (len(partitioned) - len(ALL_SEASON_ASSETS)))
