"""``season_wave_job``: one run materializes one season of the tenant × season graph for many tenants.

For each tenant (in the wave's order) the op calls the assets' bodies in the graph's topological order
(Dagster's own step order for the per-partition job) with a :class:`TenantStep` for the tenant's partition,
then logs what a per-partition run would record: an ``AssetMaterialization`` of each asset for that
partition (with the body's metadata) and an ``AssetCheckEvaluation`` of each of its checks for that
partition. As in a Dagster run, an asset whose body fails, returns nothing or fails a blocking check
skips every asset downstream of it — for that tenant only; the other tenants go on, and the run fails at
the end naming the tenants that did not finish (their later seasons are then not launched by the driver).
"""

# no `from __future__ import annotations`: Dagster resolves the op's Config annotation at decoration time

import time
from dataclasses import dataclass, field
from graphlib import TopologicalSorter

from dagster import (
    AssetCheckEvaluation,
    AssetKey,
    AssetMaterialization,
    AssetsDefinition,
    Config,
    DagsterLogManager,
    Failure,
    MetadataValue,
    MultiPartitionKey,
    OpExecutionContext,
    job,
    op,
)

from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.adapters.signer import SignerResource
from rai_assets.assets.graph import TENANT_SEASON_GRAPH, AssetBody, resource_kwargs
from rai_assets.assets.partitions import partition_key
from rai_assets.deployment import GPU_RUN_TAGS, TRAINING_OP_TAGS

SEASON_WAVE_JOB = "season_wave_job"


@dataclass(frozen=True)
class WaveStep:
    """One asset of the graph as the wave runs it: its key, body, the graph assets it depends on and the
    names of its blocking checks."""

    asset: AssetsDefinition
    body: AssetBody
    upstream: frozenset[AssetKey]
    blocking_checks: frozenset[str]

    @property
    def key(self) -> AssetKey:
        """The asset's key."""
        return self.asset.key


def wave_steps() -> list[WaveStep]:
    """The graph's assets in topological order; assets that are ready together run in key order, which is
    the order Dagster's in-process executor gives the per-partition job's steps."""
    keys = {asset.key for asset, _ in TENANT_SEASON_GRAPH}
    by_key = {asset.key: (asset, body) for asset, body in TENANT_SEASON_GRAPH}
    upstream = {asset.key: frozenset(dep.asset_key for spec in asset.specs for dep in spec.deps) & keys
                for asset, _ in TENANT_SEASON_GRAPH}
    sorter = TopologicalSorter(upstream)
    sorter.prepare()
    ordered: list[AssetKey] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=lambda k: k.to_user_string())
        ordered.extend(ready)
        sorter.done(*ready)
    return [WaveStep(by_key[k][0], by_key[k][1], upstream[k],
                     frozenset(spec.name for spec in by_key[k][0].check_specs if spec.blocking)) for k in ordered]


class TenantStep:
    """A :class:`~rai_assets.assets.partitions.PartitionStep` for one tenant of a wave: the tenant's partition
    key, the wave's run id and the wave's logger."""

    def __init__(self, key: MultiPartitionKey, run_id: str, log: DagsterLogManager) -> None:
        self._key, self._run_id, self._log = key, run_id, log

    @property
    def partition_key(self) -> str:
        """The tenant × season key (a ``MultiPartitionKey``)."""
        return self._key

    @property
    def run_id(self) -> str:
        """The wave's Dagster run."""
        return self._run_id

    @property
    def log(self) -> DagsterLogManager:
        """The wave's logger."""
        return self._log


@dataclass
class WaveOutcome:
    """What a wave did: per tenant the assets materialized, skipped and failed (error text)."""

    materialized: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def run_wave(context: OpExecutionContext, season: str, tenants: list[str], resources: dict[str, object]
             ) -> WaveOutcome:
    """Materialize ``season`` for each of ``tenants`` in turn, logging each partition's materializations and
    check evaluations on ``context``; returns the outcome (never raises for one tenant's failure).

    Raises:
        InvalidIdentifierError: a tenant or the season is not a slug (before anything runs).
        KeyError: an asset body takes a resource missing from ``resources`` (before anything runs).
    """
    keys = [partition_key(tenant, season) for tenant in tenants]
    steps = wave_steps()
    kwargs = {step.key: resource_kwargs(step.body, resources) for step in steps}  # once a wave, not per tenant
    outcome = WaveOutcome()
    for tenant, key in zip(tenants, keys, strict=True):
        started = time.perf_counter()
        step_context = TenantStep(key, context.run_id, context.log)
        stopped: set[AssetKey] = set()
        done: list[str] = []
        for step in steps:
            name = step.key.to_user_string()
            if step.upstream & stopped:
                stopped.add(step.key)
                outcome.skipped.setdefault(tenant, []).append(name)
                continue
            try:
                result = step.body(step_context, **kwargs[step.key])
            except Exception as exc:  # one tenant's failure must not stop the others (reported at the end)
                context.log.error(f"{key}: {name} failed: {type(exc).__name__}: {exc}")
                outcome.failed[tenant] = f"{name}: {type(exc).__name__}: {exc}"[:500]
                stopped.add(step.key)
                continue
            if result is None:  # nothing to materialize for this partition (a first season's snapshot)
                stopped.add(step.key)
                outcome.skipped.setdefault(tenant, []).append(name)
                continue
            context.log_event(AssetMaterialization(asset_key=step.key, partition=str(key),
                                                   metadata=dict(result.metadata or {})))
            done.append(name)
            for check in result.check_results or []:
                check_name = check.check_name or ""
                blocking = check_name in step.blocking_checks
                # log_event records an AssetCheckEvaluation (dagster 1.13), though its annotation omits the type
                context.log_event(AssetCheckEvaluation(  # type: ignore[arg-type]
                    asset_key=check.asset_key or step.key, check_name=check_name, passed=check.passed,
                    metadata=dict(check.metadata), severity=check.severity, description=check.description,
                    blocking=blocking, partition=str(key)))
                if blocking and not check.passed:
                    context.log.error(f"{key}: blocking check {name}:{check_name} failed; downstream skipped")
                    outcome.failed[tenant] = f"{name}: blocking check {check_name} failed"
                    stopped.add(step.key)
        outcome.materialized[tenant] = done
        outcome.seconds[tenant] = time.perf_counter() - started
    return outcome


class SeasonWaveConfig(Config):
    """Run config of ``season_wave_job``: the season and the tenants, in the order they run."""

    season: str
    tenants: list[str]


@op(tags=TRAINING_OP_TAGS,  # it trains: the step pod gets the GPU request on K8s (rai_assets/deployment.py)
    description="Materialize one season of the tenant × season graph for each of the configured tenants, tenant "
    "after tenant; one materialization and check evaluations per partition.")
def season_wave(context: OpExecutionContext, config: SeasonWaveConfig, ledger: LedgerResource,
                object_store: ObjectStoreResource, mlflow_registry: MlflowRegistryResource,
                signer: SignerResource) -> None:
    """Run :func:`run_wave` for the configured season and tenants.

    Raises:
        Failure: one or more tenants did not finish (the description names them and why; no retry — the
            tenants that finished keep their materializations, the others are re-run per partition).
    """
    outcome = run_wave(context, config.season, list(config.tenants),
                       {"ledger": ledger, "object_store": object_store, "mlflow_registry": mlflow_registry,
                        "signer": signer})
    seconds = sorted(outcome.seconds.values())
    context.add_output_metadata({
        "tenants": len(config.tenants),
        "partitions_finished": len(config.tenants) - len(outcome.failed),
        "median_partition_s": round(seconds[len(seconds) // 2], 3) if seconds else 0.0,
    })
    if outcome.failed:
        raise Failure(
            description=f"{len(outcome.failed)} of {len(config.tenants)} tenants did not finish season "
            f"{config.season}: " + "; ".join(f"{t} ({why})" for t, why in sorted(outcome.failed.items()))[:2000],
            metadata={"failed_tenants": MetadataValue.json(sorted(outcome.failed))},
            allow_retries=False,
        )


@job(name=SEASON_WAVE_JOB, tags=GPU_RUN_TAGS,
     description="A season wave of a backfill: one season of the tenant × season graph for many tenants in one "
     "run (launched by `rai-assets backfill`, season after season).")
def season_wave_job() -> None:
    """One op, :func:`season_wave`."""
    season_wave()
