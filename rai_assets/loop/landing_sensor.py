"""Sensor: new tenant uploads in the landing zone → tenant/season partitions and an ingestion run.

The run ingests the season and reports its drift; when a candidate was trained for the season
(by a retraining run), the same run judges it on the new labels: evaluation, bias audit and the
staged promotion.

Work per tick is bounded (:data:`MAX_FILES_PER_TICK` manifests). The cursor holds the manifest keys
already handled and each run's ``run_key`` names the files it covers, so the same file never
triggers twice. Uploads of tenants not registered in the ledger wait (they are not marked handled)
until the tenant is registered; keys that are not valid tenant/season slugs are logged and skipped.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import defaultdict

from dagster import (
    AddDynamicPartitionsRequest,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from rai_assets.adapters import tracing
from rai_assets.adapters.ledger.models import latest_model_for_partition
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.ledger.tenants import UnknownTenantError, get_tenant, register_season
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.assets.partitions import SEASON_DIMENSION, TENANT_DIMENSION, partition_key
from rai_assets.domain.ids import InvalidIdentifierError, season_id, tenant_id
from rai_assets.domain.ingestion import MANIFEST_SUFFIX
from rai_assets.loop.jobs import LANDING_ONLY, LANDING_WITH_CANDIDATE, SENSOR_INTERVAL_S, ingestion_job

MAX_FILES_PER_TICK = 50
LANDED_AT_TAG = "rai/landed-at"  # Unix time the sensor saw the files: start of the drift-detection latency
_LANDING_KEY = re.compile(r"^tenants/([^/]+)/landing/([^/]+)/[^/]+" + re.escape(MANIFEST_SUFFIX) + "$")


def landing_manifests(keys: list[str]) -> list[tuple[str, str, str]]:
    """(key, tenant, season) of every landing manifest among ``keys``; malformed ids are dropped."""
    found: list[tuple[str, str, str]] = []
    for key in keys:
        m = _LANDING_KEY.match(key)
        if not m:
            continue
        try:
            found.append((key, tenant_id(m[1]), season_id(m[2])))
        except InvalidIdentifierError:
            continue
    return found


@sensor(job=ingestion_job, minimum_interval_seconds=SENSOR_INTERVAL_S, default_status=DefaultSensorStatus.RUNNING,
        description="New signed uploads in the landing zone → add tenant/season partitions, request ingestion.")
def landing_zone_sensor(context: SensorEvaluationContext, object_store: ObjectStoreResource,
                        ledger: LedgerResource) -> SensorResult:
    """One tick: find unhandled manifests, register seasons, request one ingestion run per partition.

    The tick is a span; each requested run starts its own trace (a landed file's trace, OBS-2),
    linked to the tick, whose ``traceparent`` goes in the run's tags.
    """
    with tracing.sensor_tick("landing_zone_sensor"):
        return _landing_tick(context, object_store, ledger)


def _landing_tick(context: SensorEvaluationContext, object_store: ObjectStoreResource,
                  ledger: LedgerResource) -> SensorResult:
    handled: set[str] = set(json.loads(context.cursor)) if context.cursor else set()
    pending = [m for m in landing_manifests(object_store.list_keys("tenants/")) if m[0] not in handled]
    registered: dict[str, bool] = {}
    batch: list[tuple[str, str, str]] = []
    for key, tenant, season in pending:
        if tenant not in registered:
            try:
                with ledger.connect(tenant) as conn:
                    get_tenant(conn, tenant)
                registered[tenant] = True
            except UnknownTenantError:
                registered[tenant] = False
                context.log.warning(f"upload {key} waits: tenant {tenant!r} is not registered")
        if registered[tenant]:
            batch.append((key, tenant, season))
        if len(batch) >= MAX_FILES_PER_TICK:
            break
    if not batch:
        return SensorResult(skip_reason=f"no new uploads ({len(pending)} waiting for tenant registration)",
                            cursor=context.cursor)

    by_partition: dict[tuple[str, str], list[str]] = defaultdict(list)
    for key, tenant, season in batch:
        by_partition[(tenant, season)].append(key)
    with ledger.connect() as conn:
        for season in sorted({s for _, s in by_partition}):
            register_season(conn, season)
    existing_tenants = set(context.instance.get_dynamic_partitions(TENANT_DIMENSION))
    existing_seasons = set(context.instance.get_dynamic_partitions(SEASON_DIMENSION))
    new_tenants = sorted({t for t, _ in by_partition} - existing_tenants)
    new_seasons = sorted({s for _, s in by_partition} - existing_seasons)
    requests = []
    for (tenant, season), keys in sorted(by_partition.items()):
        with tracing.landing_trace(tenant, season, keys) as trace_tags, ledger.connect(tenant) as conn:
            candidate = latest_model_for_partition(conn, tenant, season)
        selection = LANDING_WITH_CANDIDATE if candidate is not None else LANDING_ONLY
        tracing.log_json(context.log, "ingestion requested", tenant=tenant, season=season,
                         trace_id=trace_tags.get(tracing.TRACE_ID_TAG, ""), files=len(keys))
        requests.append(RunRequest(
            run_key="landing:" + hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:24],
            partition_key=partition_key(tenant, season),
            asset_selection=[a.key for a in selection],
            tags={"rai/trigger": "landing", "rai/tenant": tenant, "rai/season": season,
                  "rai/landed-files": str(len(keys)), LANDED_AT_TAG: f"{time.time():.3f}",
                  "rai/candidate": str(candidate.model_id) if candidate is not None else "none", **trace_tags},
        ))
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[
            *([AddDynamicPartitionsRequest(TENANT_DIMENSION, new_tenants)] if new_tenants else []),
            *([AddDynamicPartitionsRequest(SEASON_DIMENSION, new_seasons)] if new_seasons else []),
        ],
        cursor=json.dumps(sorted(handled | {k for k, _, _ in batch})),
    )
