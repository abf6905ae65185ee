"""Asset: the validated, signature-checked, de-duplicated learning events of a tenant-season.

Every line of every landing object ends accepted, duplicate, conflict or dead letter (ING-4): bad
bytes, short uploads, unknown contract minors and implausible targets become dead letters with
their raw bytes, so a bad file never blocks its partition.
"""

import os
import time
from collections.abc import Iterator

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from rai_assets.adapters import metrics
from rai_assets.adapters.ledger import events as event_store
from rai_assets.adapters.ledger.profiles import upsert_season_profile
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.ledger.tenants import Tenant, UnknownTenantError, get_tenant
from rai_assets.adapters.object_store import ObjectStoreResource, tenant_key
from rai_assets.assets.common import (
    TENANT_SEASON_ASSET,
    column_schema,
    markdown_table,
    on_materialization_only,
    spec_by_id,
)
from rai_assets.assets.ingest_pipeline import Upload, ingest_uploads
from rai_assets.assets.partitions import PartitionStep, partition_ids
from rai_assets.domain.cadence import season_cadence_seconds
from rai_assets.domain.contract import reader_for_major
from rai_assets.domain.features import events_frame
from rai_assets.domain.ingestion import (
    DATA_SUFFIX,
    MANIFEST_SUFFIX,
    BatchOutcome,
    DeadLetter,
    TargetRule,
)
from rai_assets.domain.model_spec import DEFAULT_CONTRACT, DEFAULT_CONTRACT_MAJOR
from rai_assets.domain.profile import season_profile
from rai_assets.resource_files import resources_dir


def landing_prefix(tenant: str, season: str) -> str:
    """Object-store prefix where a tenant uploads the batches of one season."""
    return tenant_key(tenant, "landing", season) + "/"


# the platform default, for a tenant whose own calendar gives no cadence yet (rai_assets.domain.cadence)
SEASON_CADENCE_S = float(os.environ.get("RAI_SEASON_CADENCE_DAYS", "183")) * 86400


def integrity_check_of(reason: str) -> str | None:
    """Which integrity check a dead letter's reason reports (``signature``, ``digest``), or None."""
    lowered = reason.lower()
    if "signature" in lowered:
        return "signature"
    if "sha-256" in lowered or "sha256" in lowered or "digest" in lowered:
        return "digest"
    return None


def record_ingestion_metrics(tenant: str, *, written: int, new_dead: int, reasons: list[str], conflicts: int,
                             cadence_s: float = SEASON_CADENCE_S) -> None:
    """Throughput, new dead letters, integrity failures and freshness of one ingestion (OBS-1), and the
    tenant's own season cadence (``cadence_s``) that its freshness alert compares with (OBS-5)."""
    metrics.ingested_events.labels(tenant=tenant).inc(written)
    metrics.dead_letters_new.labels(tenant=tenant).inc(new_dead)
    if new_dead:
        for check in filter(None, map(integrity_check_of, reasons)):
            metrics.integrity_failures.labels(tenant=tenant, check=check).inc()
        if conflicts:
            metrics.integrity_failures.labels(tenant=tenant, check="conflict").inc(conflicts)
    metrics.ingestion_last_success.labels(tenant=tenant).set(time.time())
    metrics.season_cadence_seconds.labels(tenant=tenant).set(cadence_s)


def materialize_learning_events(
    context: PartitionStep, ledger: LedgerResource, object_store: ObjectStoreResource
) -> MaterializeResult:
    """Ingest every landing batch of the partition into the ledger."""
    tenant, season = partition_ids(context)
    prefix = landing_prefix(tenant, season)
    keys = object_store.list_keys(prefix)
    data_keys = [k for k in keys if k.endswith(DATA_SUFFIX)]
    manifests = {k for k in keys if k.endswith(MANIFEST_SUFFIX)}
    outcome = BatchOutcome()
    for key in keys:
        if key not in manifests and key not in data_keys:
            outcome.dead_letters.append(DeadLetter(key, None, "unexpected file in the landing zone", b""))
    for manifest in sorted(manifests):
        if manifest[: -len(MANIFEST_SUFFIX)] + DATA_SUFFIX not in data_keys:
            outcome.dead_letters.append(DeadLetter(manifest, None, "manifest without its data file",
                                                   object_store.get_bytes(manifest)))

    with ledger.connect(tenant) as conn:
        try:
            registered: Tenant | None = get_tenant(conn, tenant)
        except UnknownTenantError:
            registered = None
        public_key = registered.public_key if registered else None
        spec = spec_by_id(registered.model_spec) if registered else None
        target = TargetRule.of_spec(spec) if spec else None
        # the tenant's spec names its contract; an unregistered tenant's lines are all dead-lettered before any
        # contract check, so the reader it gets is only a placeholder
        contract = reader_for_major(resources_dir() / "contracts",
                                    spec.contract_name if spec else DEFAULT_CONTRACT,
                                    spec.contract_major if spec else DEFAULT_CONTRACT_MAJOR)

        def uploads() -> Iterator[Upload]:  # read one after the other, while the previous one is being written
            for data_key in data_keys:
                manifest_key = data_key[: -len(DATA_SUFFIX)] + MANIFEST_SUFFIX
                yield Upload(data_key, object_store.get_bytes(data_key),
                             object_store.get_bytes(manifest_key) if manifest_key in manifests else None)

        ingested = ingest_uploads(conn, tenant=tenant, season=season, uploads=uploads(), public_key_b64=public_key,
                                  contract=contract, target=target, run_id=context.run_id)
        outcome.events.extend(ingested.outcome.events)
        outcome.dead_letters.extend(ingested.outcome.dead_letters)
        dedup = ingested.dedup
        conflicts = [
            DeadLetter(e.source, e.line_no,
                       f"conflicting duplicate of ({tenant}, {season}, {e.field_id}): payload sha256 "
                       f"{e.payload_sha256[:12]}… differs from the stored {stored[:12]}…",
                       e.canonical)
            for e, stored in dedup.conflicts
        ]
        written = ingested.written
        new_dead = event_store.insert_dead_letters(conn, tenant, season, [*outcome.dead_letters, *conflicts],
                                                   context.run_id)
        total = event_store.count_events(conn, tenant, season)
        dead_total = event_store.count_dead_letters(conn, tenant, season)
        cadence_s, cadence_source = season_cadence_seconds(event_store.season_dates(conn, tenant), SEASON_CADENCE_S)
        if spec is not None and total:
            season_events = events_frame(event_store.load_events(conn, tenant, [season]), spec)
            upsert_season_profile(conn, tenant, season, season_profile(season_events, spec.numeric_features), total)

    metrics.set_season_gauge(metrics.dead_letters, tenant, season, dead_total)
    metrics.pipeline_status.labels(stage="ingestion", status="dead_letters" if new_dead else "clean").inc()
    record_ingestion_metrics(tenant, written=written, new_dead=new_dead,
                             reasons=[d.reason for d in outcome.dead_letters], conflicts=len(conflicts),
                             cadence_s=cadence_s)
    metrics.export()
    if new_dead:
        context.log.warning(f"{new_dead} new dead letters for {tenant}/{season} (ING-4)")
    if public_key is None:
        context.log.error(f"tenant {tenant!r} is not registered: all {len(outcome.dead_letters)} lines dead-lettered")
    reasons: dict[str, int] = {}
    for d in [*outcome.dead_letters, *conflicts]:
        reasons[d.reason.split(":")[0]] = reasons.get(d.reason.split(":")[0], 0) + 1
    return MaterializeResult(
        metadata={
            "accepted": written,
            "duplicate": len(dedup.duplicates),
            "conflicting": len(conflicts),
            "rejected": len(outcome.dead_letters),
            "dead_letters_new": new_dead,
            "dead_letters_total": dead_total,
            "events_stored": total,
            "dagster/row_count": total,
            "landing_files": len(keys),
            "season_cadence_days": round(cadence_s / 86400, 1),
            "season_cadence_source": cadence_source,
            "landing_prefix": MetadataValue.path(object_store.uri(prefix.rstrip("/"))),
            "rejection_reasons": MetadataValue.md(
                markdown_table(["reason", "lines"], [[r, n] for r, n in sorted(reasons.items())]) if reasons else "none"
            ),
        }
    )


@asset(
    **TENANT_SEASON_ASSET,
    kinds={"postgres"},
    metadata=column_schema(
        ("tenant_id", "text", "the tenant (row-level security key)"),
        ("season_id", "text", "the season, in the tenant's calendar"),
        ("field_id", "text", "the field; one event per (tenant, season, field)"),
        ("payload", "jsonb", "the event as the contract named by the tenant's model spec defines it"),
        ("payload_sha256", "char(64)", "SHA-256 of the canonical payload, checked by the database"),
        ("source_file", "text", "object key of the upload the event came from"),
        ("line_no", "integer", "line of the event in that upload"),
    ),
    description="Learning events of one tenant-season: checked against the contract its model spec names "
    "(ING-1), Ed25519-verified (ING-3), de-duplicated on (tenant, season, field) (ING-2); rejects go to the "
    "dead-letter table (ING-4).",
)
def learning_events(
    context: AssetExecutionContext, ledger: LedgerResource, object_store: ObjectStoreResource
) -> MaterializeResult:
    """The asset: :func:`materialize_learning_events` for the run's partition."""
    return on_materialization_only(context, materialize_learning_events(context, ledger, object_store))

