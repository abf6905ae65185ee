"""What a season-ordered bulk backfill (issue 12, goal 4: a few runs per season, not one per partition) would
rely on in Dagster, pinned on the project's tenant × season partitions so an upgrade that changes it fails here.
The design and why it is not built yet: README, section "Backfills".

Found (dagster 1.13.27): a multi-run backfill policy over tenants × seasons makes one range per season,
chunked by ``max_partitions_per_run`` (ranges hold the dimension with the fewest distinct keys constant,
dagster-io/dagster#27746); the order of those seasons is the iteration order of a Python ``set``
(``DefaultPartitionsSubset.get_partition_key_ranges``), not the season order, so the daemon cannot be trusted
to run a tenant's seasons in order; a ranged run's body sees every key in ``context.partition_keys`` and
``context.partition_key`` raises; and a ranged run carries only the range tags, no
``dagster/partition/tenant``, so ``dagster.yaml``'s one-run-per-tenant queue limit does not order it.
"""

from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    DagsterInstance,
    DagsterInvariantViolationError,
    MaterializeResult,
    asset,
    materialize,
)
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
from dagster._core.definitions.automation_tick_evaluation_context import build_run_requests_with_backfill_policies
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.definitions.partitions.context import partition_loading_context

from rai_assets.assets.partitions import add_partitions, partition_key, tenant_season_partitions
from rai_assets_tests.loop.scale import tenant_ids

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
seen: list[list[str]] = []  # what probe saw, run by run


@asset(partitions_def=tenant_season_partitions, backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=50))
def probe(context: AssetExecutionContext) -> MaterializeResult:
    """Records the partition keys its run covers and whether ``context.partition_key`` answers."""
    seen.append(list(context.partition_keys))
    try:
        seen.append([str(context.partition_key)])
    except DagsterInvariantViolationError:
        seen.append([])
    return MaterializeResult(metadata={"partitions": len(context.partition_keys)})


def _instance(tmp_path: Path, tenants: list[str], seasons: list[str]) -> DagsterInstance:
    (tmp_path / "dagster").mkdir()
    instance = DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster"))
    add_partitions(instance, tenants=tenants, seasons=seasons)
    return instance


def test_multi_run_policy_chunks_each_season_into_tenant_ranges(tmp_path: Path) -> None:
    tenants, seasons = tenant_ids(120), ["s01", "s02", "s03"]
    instance = _instance(tmp_path, tenants, seasons)
    wanted = [AssetKeyPartitionKey(AssetKey("probe"), str(partition_key(t, s))) for s in seasons for t in tenants]
    with partition_loading_context(dynamic_partitions_store=instance):
        requests = build_run_requests_with_backfill_policies(wanted, AssetGraph.from_assets([probe]), instance)
    ranges = sorted((r.tags[RANGE_START], r.tags[RANGE_END]) for r in requests)
    # 3 runs a season (50 + 50 + 20 tenants), not 120 — and none holds two seasons
    assert ranges == [(f"{s}|{tenants[a]}", f"{s}|{tenants[b]}") for s in seasons
                      for a, b in ((0, 49), (50, 99), (100, 119))]
    assert all("dagster/partition/tenant" not in r.tags for r in requests)


def test_a_ranged_run_sees_every_key_of_its_range(tmp_path: Path) -> None:
    tenants = tenant_ids(30)
    instance = _instance(tmp_path, tenants, ["s01", "s02"])
    seen.clear()
    result = materialize([probe], instance=instance,
                         tags={RANGE_START: f"s02|{tenants[0]}", RANGE_END: f"s02|{tenants[-1]}"})
    assert result.success
    assert seen == [[f"s02|{t}" for t in tenants], []]  # every key; partition_key raised
    assert instance.get_materialized_partitions(AssetKey("probe")) == {f"s02|{t}" for t in tenants}
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and "dagster/partition/tenant" not in run.tags
