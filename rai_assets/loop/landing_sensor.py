"""Sensor: new tenant uploads in the landing zone → tenant/season partitions and an ingestion run.

The run ingests the season and reports its drift; when a candidate was trained for the season
(by a retraining run), the same run judges it on the new labels: evaluation, bias audit and the
staged promotion.

Work per tick is O(new uploads), not O(stored files) (issue 12, goal 1). The cursor is small and
bounded: a watermark ``w`` (every manifest modified before ``w`` is handled), the short digests of
the manifests handled at or after ``w`` (so the grace window below does not request them twice),
and the tenants whose uploads wait for their registration. Each tick lists only what was modified
since ``w`` (local mode: one ``stat`` per landing season directory, whose mtime changes when a file is
added, and a listing of only the changed ones; S3 mode: the listing filtered on ``LastModified``).
``w`` trails the clock by :data:`GRACE_S` so uploads whose modification time is a little older than
their appearance (atomic renames, clock skew) are still seen. At most :data:`MAX_FILES_PER_TICK`
manifests are requested per tick, oldest first; the watermark never passes one not yet requested.
Each run's ``run_key`` names the files it covers, so the same file never triggers twice. Uploads of
tenants not registered in the ledger wait (their tenant is kept in the cursor, at most
:data:`MAX_WAITING_TENANTS`) until the tenant is registered; keys that are not valid tenant/season
slugs are skipped. Ledger work is batched: one connection per tick. The sensor reads no manifest and
registers no season: the ingestion run adds the season to the tenant's calendar only once a manifest's
signature verified against the tenant's key (issue 8 item 3).

In production the object store's event notifications (S3 → SQS) are the preferred trigger; this
listing is the fallback and what runs in the demo, the tests and the benchmark.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from collections import defaultdict
from pathlib import Path

from dagster import (
    AddDynamicPartitionsRequest,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from rai_assets.adapters import tracing
from rai_assets.adapters.ledger.models import ModelVersion, latest_model_for_partition
from rai_assets.adapters.ledger.resource import Conn, LedgerResource
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.assets.partitions import SEASON_DIMENSION, TENANT_DIMENSION, partition_key
from rai_assets.domain.ids import InvalidIdentifierError, season_id, tenant_id
from rai_assets.domain.ingestion import MANIFEST_SUFFIX
from rai_assets.loop.jobs import LANDING_ONLY, LANDING_WITH_CANDIDATE, SENSOR_INTERVAL_S, ingestion_job

MAX_FILES_PER_TICK = 2000  # 10,000 uploads in 5 ticks (2.5 min at the 30 s interval)
GRACE_S = 120.0  # how far the watermark trails the clock
MAX_WAITING_TENANTS = 1000
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
    """One tick: find unhandled manifests, request one ingestion run per partition.

    The tick is a span; each requested run starts its own trace (a landed file's trace, OBS-2),
    linked to the tick, whose ``traceparent`` goes in the run's tags.
    """
    with tracing.sensor_tick("landing_zone_sensor"):
        return _landing_tick(context, object_store, ledger)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def parse_cursor(cursor: str | None) -> tuple[float, set[str], set[str]]:
    """(watermark, digests of handled keys at/after it, waiting tenants); reads the old list-of-keys cursor too."""
    if not cursor:
        return 0.0, set(), set()
    data = json.loads(cursor)
    if isinstance(data, list):  # the unbounded cursor of earlier versions: every handled key
        return 0.0, {_digest(k) for k in data}, set()
    return float(data["w"]), set(data.get("seen", [])), set(data.get("wait", []))


def _scan_local(root: Path, since: float) -> list[tuple[str, float]]:
    """(key, mtime) of landing manifests modified at/after ``since``: O(landing season dirs) ``stat`` calls."""
    found: list[tuple[str, float]] = []
    tenants_dir = root / "tenants"
    try:
        tenants = list(os.scandir(tenants_dir))
    except FileNotFoundError:
        return found
    for tenant in tenants:
        try:
            seasons = list(os.scandir(os.path.join(tenant.path, "landing")))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for season in seasons:
            try:
                if not season.is_dir(follow_symlinks=False) or season.stat().st_mtime < since:
                    continue  # nothing was added to (or renamed into) this directory since the watermark
                entries = list(os.scandir(season.path))
            except FileNotFoundError:
                continue
            for entry in entries:
                if not entry.name.endswith(MANIFEST_SUFFIX) or not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    mtime = entry.stat().st_mtime
                except FileNotFoundError:
                    continue
                if mtime >= since:
                    found.append((f"tenants/{tenant.name}/landing/{season.name}/{entry.name}", mtime))
    return found


def scan_landing(object_store: ObjectStoreResource, since: float, tenant: str | None = None) -> list[tuple[str, float]]:
    """(key, modified time) of landing manifests modified at/after ``since`` (of one tenant, or of all)."""
    if tenant is not None:
        return object_store.list_keys_modified(f"tenants/{tenant}/landing/", since=since)
    root = object_store.local_path("tenants")
    if root is not None:
        return _scan_local(root.parent, since)
    return [(k, m) for k, m in object_store.list_keys_modified("tenants/", since=since) if _LANDING_KEY.match(k)]


def registered_tenants(conn: Conn, tenants: set[str]) -> set[str]:
    """Which of ``tenants`` are registered: one connection, one statement per tenant (row-level security)."""
    found: set[str] = set()
    for tenant in sorted(tenants):
        LedgerResource.switch_tenant(conn, tenant)
        if conn.execute("SELECT 1 FROM tenants WHERE tenant_id = %s", (tenant,)).fetchone() is not None:
            found.add(tenant)
    return found


def _landing_tick(context: SensorEvaluationContext, object_store: ObjectStoreResource,
                  ledger: LedgerResource) -> SensorResult:
    watermark, seen, waiting = parse_cursor(context.cursor)
    now = time.time()
    listed = dict(scan_landing(object_store, watermark))
    now_registered: set[str] = set()
    if waiting:
        with ledger.connect() as conn:
            now_registered = registered_tenants(conn, waiting)
    for tenant in sorted(now_registered):  # their uploads may be older than the watermark
        listed.update(scan_landing(object_store, 0.0, tenant))
    pending = sorted((m for m in landing_manifests(list(listed)) if _digest(m[0]) not in seen),
                     key=lambda m: (listed[m[0]], m[0]))
    registered: set[str] = set()
    if pending:
        with ledger.connect() as conn:
            registered = registered_tenants(conn, {t for _, t, _ in pending})
    unregistered = [m for m in pending if m[1] not in registered]
    for key, tenant, _ in unregistered:
        if tenant not in waiting:
            context.log.warning(f"upload {key} waits: tenant {tenant!r} is not registered")
    waiting = (waiting - now_registered) | {t for _, t, _ in unregistered}
    if len(waiting) > MAX_WAITING_TENANTS:
        dropped = sorted(waiting)[MAX_WAITING_TENANTS:]
        context.log.warning(f"{len(dropped)} unregistered tenants' uploads no longer waited for: {dropped[:5]}…")
        waiting = set(sorted(waiting)[:MAX_WAITING_TENANTS])
    ready = [m for m in pending if m[1] in registered]
    batch, rest = ready[:MAX_FILES_PER_TICK], ready[MAX_FILES_PER_TICK:]
    waiting |= {t for _, t, _ in rest if t in now_registered}  # a registered tenant's backlog older than w
    # every manifest modified before the new watermark is handled (or its tenant waits)
    new_watermark = max(watermark, min([now - GRACE_S, *(listed[k] for k, _, _ in rest)]))
    handled = seen | {_digest(k) for k, _, _ in batch}
    still_waiting_keys = {k for k in listed if k.split("/")[1] in waiting}
    new_seen = sorted({_digest(k) for k, m in listed.items() if m >= new_watermark or k in still_waiting_keys}
                      & handled)
    # the watermark is floored to the millisecond: never rounded up past a file's mtime
    cursor = json.dumps({"w": math.floor(new_watermark * 1000) / 1000, "seen": new_seen, "wait": sorted(waiting)},
                        separators=(",", ":"))
    if not batch:
        return SensorResult(skip_reason=f"no new uploads ({len(unregistered)} waiting for tenant registration)",
                            cursor=cursor)

    by_partition: dict[tuple[str, str], list[str]] = defaultdict(list)
    for key, tenant, season in batch:
        by_partition[(tenant, season)].append(key)
    candidates: dict[tuple[str, str], ModelVersion | None] = {}
    with ledger.connect() as conn:
        for tenant, season in sorted(by_partition):
            LedgerResource.switch_tenant(conn, tenant)
            candidates[(tenant, season)] = latest_model_for_partition(conn, tenant, season)
    existing_tenants = set(context.instance.get_dynamic_partitions(TENANT_DIMENSION))
    existing_seasons = set(context.instance.get_dynamic_partitions(SEASON_DIMENSION))
    new_tenants = sorted({t for t, _ in by_partition} - existing_tenants)
    new_seasons = sorted({s for _, s in by_partition} - existing_seasons)
    requests = []
    for (tenant, season), keys in sorted(by_partition.items()):
        candidate = candidates[(tenant, season)]
        with tracing.landing_trace(tenant, season, keys) as trace_tags:
            pass
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
        cursor=cursor,
    )
