"""Helpers shared by the asset functions: the partition's tenant context and the model spec."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from dagster import AssetExecutionContext, Backoff, MaterializeResult, RetryPolicy, TableColumn, TableSchema

from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.ledger.tenants import get_tenant
from rai_assets.assets.partitions import (
    ONE_PARTITION_PER_RUN,
    PartitionStep,
    partition_ids,
    tenant_season_partitions,
)
from rai_assets.domain.model_spec import ModelSpec, load_model_spec
from rai_assets.resource_files import resources_dir

ASSET_GROUP = "tenant_season"
#: Who answers for the tenant × season assets in the Dagster UI (``owners``; a team, as Dagster documents).
ASSET_OWNERS = ["team:ml-platform"]

#: The keyword arguments every tenant × season ``@asset`` shares: the partitions, the backfill policy (one partition
#: a run, see :data:`~rai_assets.assets.partitions.ONE_PARTITION_PER_RUN`), the group and the owners.
TENANT_SEASON_ASSET: dict[str, Any] = {"partitions_def": tenant_season_partitions,
                                       "backfill_policy": ONE_PARTITION_PER_RUN, "group_name": ASSET_GROUP,
                                       "owners": ASSET_OWNERS}

# INF-4: failed steps retry up to 5 times with exponential backoff from 1 s (1, 2, 4, 8, 16 s).
STEP_RETRY = RetryPolicy(max_retries=5, delay=1.0, backoff=Backoff.EXPONENTIAL)


@dataclass(frozen=True)
class PartitionContext:
    """The tenant, season, Dagster run id and model spec of the partition being materialized."""

    tenant: str
    season: str
    run_id: str
    spec: ModelSpec


@cache
def spec_by_id(spec_id: str) -> ModelSpec:
    """The model spec ``resources/model_specs/<spec_id>.json`` (cached per process)."""
    return load_model_spec(resources_dir() / "model_specs", spec_id)


def registrable_spec(spec_id: str) -> ModelSpec:
    """The model spec ``spec_id``, after checking that every file it names is shipped: its contract of the
    accepted major (``resources/contracts/<name>/<major>.*.json``) and its expectations suite
    (``resources/expectations/<suite>.json``) — what registering a tenant with it needs, so a tenant of a
    new crop is configuration only and a missing file fails at registration, not at its first run.

    Raises:
        ModelSpecError: the spec file is missing or invalid.
        ContractError: the spec's contract has no shipped version of its major (or a file is inconsistent).
        ValueError: the spec's expectations suite file is missing (the message names the path).
    """
    from rai_assets.domain.contract import reader_for_major

    spec = spec_by_id(spec_id)
    reader_for_major(resources_dir() / "contracts", spec.contract_name, spec.contract_major)
    suite = resources_dir() / "expectations" / f"{spec.expectations_suite}.json"
    if not suite.is_file():
        raise ValueError(f"model spec {spec_id!r} names expectations suite {spec.expectations_suite!r}, but {suite} "
                         "does not exist")
    return spec


def partition_context(context: PartitionStep, ledger: LedgerResource) -> PartitionContext:
    """Resolve and validate the partition, and load its tenant's model spec.

    Raises:
        InvalidIdentifierError: the partition key holds an invalid id.
        UnknownTenantError: the tenant is not registered in the ledger.
        ModelSpecError: the tenant's spec file is missing or invalid.
    """
    tenant, season = partition_ids(context)
    with ledger.connect(tenant) as conn:
        registered = get_tenant(conn, tenant)
    return PartitionContext(tenant=tenant, season=season, run_id=context.run_id,
                            spec=spec_by_id(registered.model_spec))


def on_materialization_only(context: AssetExecutionContext, result: MaterializeResult) -> MaterializeResult:
    """``result`` as an asset's step returns it, its metadata given to the asset materialization alone.

    Dagster copies the metadata of a returned ``MaterializeResult`` onto the step's output event as well as onto
    the materialization, so every picture (an inline PNG, 15–40 kB of base64) and table of a report was stored
    twice in the event log and sent twice to the run's page. ``context.add_asset_metadata`` (Dagster's public API
    for metadata of the materialization) attaches it to the materialization only: the materialization shows the
    same entries in the same order. Everything else of ``result`` (asset key, check results, data version, tags,
    value) is kept.
    """
    if not result.metadata:
        return result
    context.add_asset_metadata(result.metadata, asset_key=result.asset_key)
    return MaterializeResult(asset_key=result.asset_key, check_results=result.check_results,
                             data_version=result.data_version, tags=result.tags, value=result.value)


def markdown_table(headers: list[str], rows: list[list[object]]) -> str:
    """A Markdown table for Dagster metadata (``MetadataValue.md``)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def column_schema(*columns: tuple[str, str, str]) -> dict[str, TableSchema]:
    """Definition metadata ``dagster/column_schema`` from ``(name, type, description)`` triples."""
    return {"dagster/column_schema": TableSchema(columns=[TableColumn(n, t, description=d) for n, t, d in columns])}
