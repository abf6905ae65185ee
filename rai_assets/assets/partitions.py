"""Tenant × season partitions: both dimensions dynamic, so tenants and seasons are added at run time.

Partition semantics (see README): partition ``(tenant, season)`` is *the season being forecast*.
Its dataset snapshot holds the tenant's events of all earlier seasons; the model trained on it
serves that season and is judged on that season's events, which it never saw.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from dagster import (
    BackfillPolicy,
    DagsterInstance,
    DagsterLogManager,
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
)

from rai_assets.domain.ids import SeasonId, TenantId, season_id, tenant_id

TENANT_DIMENSION = "tenant"
SEASON_DIMENSION = "season"

tenant_partitions = DynamicPartitionsDefinition(name=TENANT_DIMENSION)
season_partitions = DynamicPartitionsDefinition(name=SEASON_DIMENSION)
tenant_season_partitions = MultiPartitionsDefinition(
    {TENANT_DIMENSION: tenant_partitions, SEASON_DIMENSION: season_partitions}
)

# Backfill policy of every tenant × season asset, chosen deliberately: one partition per run. A
# season's models depend on the champion that earlier seasons decided, so a tenant's seasons must
# run in order; Dagster cannot express "the previous season" on a dynamic dimension, so the order
# comes from the run queue instead (dagster.yaml limits runs tagged dagster/partition/tenant to one
# per tenant, dequeued in submission order). A single-run policy would materialize each asset for
# all seasons before the next asset and break that order.
ONE_PARTITION_PER_RUN = BackfillPolicy.multi_run(max_partitions_per_run=1)


def partition_key(tenant: str, season: str) -> MultiPartitionKey:
    """The multi-partition key of (tenant, season), validating both ids.

    Raises:
        InvalidIdentifierError: either id is not a slug.
    """
    return MultiPartitionKey({TENANT_DIMENSION: tenant_id(tenant), SEASON_DIMENSION: season_id(season)})


class PartitionStep(Protocol):
    """What the body of a tenant × season asset needs from Dagster: the partition it materializes, the run it
    belongs to (recorded in the ledger and on MLflow runs as provenance) and the run's logger.

    A Dagster ``AssetExecutionContext`` is one (the asset runs for its run's partition); a season wave
    (:mod:`rai_assets.backfill`) gives each tenant's bodies one for that tenant's partition in the wave's run.
    """

    @property
    def partition_key(self) -> str:
        """The tenant × season key (a ``MultiPartitionKey``)."""
        ...

    @property
    def run_id(self) -> str:
        """The Dagster run materializing the partition."""
        ...

    @property
    def log(self) -> DagsterLogManager:
        """The Dagster run's logger."""
        ...


def partition_ids(context: PartitionStep) -> tuple[TenantId, SeasonId]:
    """(tenant, season) of the partition being materialized, validated.

    Raises:
        InvalidIdentifierError: the partition key holds an invalid id.
    """
    key = context.partition_key
    if not isinstance(key, MultiPartitionKey):
        raise ValueError(f"partition key {key!r} is not a tenant × season key")
    dims = key.keys_by_dimension
    return tenant_id(dims[TENANT_DIMENSION]), season_id(dims[SEASON_DIMENSION])


def add_partitions(instance: DagsterInstance, tenants: Iterable[str] = (), seasons: Iterable[str] = ()) -> None:
    """Add tenant and season partitions (validated; existing ones are left as they are).

    Seasons are added in the order given, which is the order the Dagster UI shows them in.

    Raises:
        InvalidIdentifierError: an id is not a slug — nothing is added then.
    """
    new_tenants = [tenant_id(t) for t in tenants]
    new_seasons = [season_id(s) for s in seasons]
    for name, keys in ((TENANT_DIMENSION, new_tenants), (SEASON_DIMENSION, new_seasons)):
        existing = set(instance.get_dynamic_partitions(name))
        missing = [k for k in keys if k not in existing]
        if missing:
            instance.add_dynamic_partitions(name, missing)
