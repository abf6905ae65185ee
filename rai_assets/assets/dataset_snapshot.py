"""Asset: the content-addressed training snapshot of a partition, with its blocking GX check."""


from collections.abc import Iterator

from dagster import (
    AllPartitionMapping,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetSpec,
    DimensionPartitionMapping,
    IdentityPartitionMapping,
    MaterializeResult,
    MetadataValue,
    MultiPartitionMapping,
    multi_asset,
)

from rai_assets.adapters.expectations import validate_frame
from rai_assets.adapters.ledger import artifacts
from rai_assets.adapters.ledger import events as event_store
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.ledger.tenants import seasons_before
from rai_assets.adapters.object_store import ObjectStoreResource, tenant_key
from rai_assets.assets.common import ASSET_GROUP, ASSET_OWNERS, on_materialization_only, partition_context
from rai_assets.assets.learning_events import learning_events
from rai_assets.assets.partitions import (
    ONE_PARTITION_PER_RUN,
    SEASON_DIMENSION,
    TENANT_DIMENSION,
    PartitionStep,
    tenant_season_partitions,
)
from rai_assets.domain.profile import season_profile
from rai_assets.domain.snapshot import build_snapshot

SNAPSHOT_ASSET = "dataset_snapshot"
CHECK = "snapshot_expectations"

# A snapshot of (tenant, season) reads the tenant's events of the earlier seasons; Dagster cannot
# express "earlier" on a dynamic dimension, so the dependency is declared on all seasons of the
# same tenant (a superset). Backfills therefore ingest before they snapshot.
_EARLIER_SEASONS_OF_TENANT = MultiPartitionMapping(
    {
        TENANT_DIMENSION: DimensionPartitionMapping(TENANT_DIMENSION, IdentityPartitionMapping()),
        SEASON_DIMENSION: DimensionPartitionMapping(SEASON_DIMENSION, AllPartitionMapping()),
    }
)


def snapshot_key(tenant: str, season: str, merkle_root: str) -> str:
    """Object key of a snapshot: named by its Merkle root under the tenant's prefix (GOV-6)."""
    return tenant_key(tenant, "snapshots", season, f"{merkle_root}.parquet")


def materialize_dataset_snapshot(
    context: PartitionStep, ledger: LedgerResource, object_store: ObjectStoreResource
) -> MaterializeResult | None:
    """Build, validate, store and record the snapshot; ``None`` for a tenant's first season (nothing to
    train on, so no snapshot)."""
    part = partition_context(context, ledger)
    with ledger.connect(part.tenant) as conn:
        earlier = seasons_before(conn, part.tenant, part.season)
        payloads = event_store.load_events(conn, part.tenant, earlier)
    if not payloads:
        context.log.info(
            f"no events of seasons before {part.season} for tenant {part.tenant}: nothing to train on, "
            "so no snapshot (and no model) for this partition"
        )
        return None
    snap = build_snapshot(payloads, earlier, part.spec)
    outcome = validate_frame(snap.frame, part.spec.expectations_suite)
    key = snapshot_key(part.tenant, part.season, snap.merkle_root)
    if not object_store.exists(key):
        object_store.put_bytes(key, snap.to_parquet(), write_once=True, content_type="application/vnd.apache.parquet")
    with ledger.connect(part.tenant) as conn:
        created = artifacts.record_snapshot(
            conn, tenant=part.tenant, season=part.season, merkle_root=snap.merkle_root, object_key=key,
            row_count=snap.row_count, source_seasons=earlier, validation_passed=outcome.success,
            validation_summary=outcome.to_dict(),
            profile=season_profile(snap.frame, part.spec.numeric_features), run_id=part.run_id,
        )
    return MaterializeResult(
        metadata={
            "merkle_root": snap.merkle_root,
            "row_count": snap.row_count,
            "dagster/row_count": snap.row_count,
            "source_seasons": ", ".join(earlier),
            "new_snapshot": created,
            "object": MetadataValue.path(object_store.uri(key)),
        },
        check_results=[
            AssetCheckResult(
                check_name=CHECK,
                passed=outcome.success,
                severity=AssetCheckSeverity.ERROR,
                metadata={"suite": outcome.suite, "evaluated": outcome.evaluated,
                          "failed": MetadataValue.json(list(outcome.failed)),
                          "merkle_root": snap.merkle_root},
            )
        ],
    )


@multi_asset(
    specs=[
        AssetSpec(
            SNAPSHOT_ASSET,
            deps=[AssetDep(learning_events, partition_mapping=_EARLIER_SEASONS_OF_TENANT)],
            skippable=True,
            group_name=ASSET_GROUP,
            owners=ASSET_OWNERS,
            kinds={"parquet", "s3"},
            partitions_def=tenant_season_partitions,
            description="Training window of the partition: the tenant's events of all seasons before it, as "
            "write-once Parquet named by the Merkle root of its rows (SNAP-1, SNAP-2); validated by a blocking GX "
            "check (SNAP-3). A tenant's first season has no training window and is skipped.",
        )
    ],
    check_specs=[AssetCheckSpec(CHECK, asset=SNAPSHOT_ASSET, blocking=True, partitions_def=tenant_season_partitions,
                                description="The Great Expectations suite the tenant's model spec names (SNAP-3)")],
    partitions_def=tenant_season_partitions,
    backfill_policy=ONE_PARTITION_PER_RUN,
    can_subset=True,  # makes the check output optional, so a skipped first season is not an error
)
def dataset_snapshot(
    context: AssetExecutionContext, ledger: LedgerResource, object_store: ObjectStoreResource
) -> Iterator[MaterializeResult]:
    """The asset: :func:`materialize_dataset_snapshot` for the run's partition; yields nothing for a tenant's
    first season."""
    result = materialize_dataset_snapshot(context, ledger, object_store)
    if result is not None:
        yield on_materialization_only(context, result)
