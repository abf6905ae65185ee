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
slugs are skipped. Ledger work is batched: one connection per tick. The sensor registers no
season: the ingestion run adds the season to the tenant's calendar only once a manifest's
signature verified against the tenant's key (issue 8 item 3).

Uploads already ingested are not new (issue 10, item 1): a manifest whose data file has every line
accounted for in the ledger — an event or a dead letter with that ``source_file`` (ING-4: every line
ends in exactly one of them) — is skipped and remembered like a requested one. ``make demo`` ingests
its uploads directly, so the first tick on a fresh Dagster instance (empty cursor) finds them all
and requests none. The check costs one ledger statement per tenant with pending uploads (row-level
security scopes a statement to one tenant), in the tick's one connection, and one manifest read per
data file that has any ledger row (a new upload has none, so it costs no read).

In production on AWS the bucket's event notifications (S3 → SQS) are the trigger: when the object
store names a queue (``sqs_queue_url`` or env ``RAI_S3_EVENTS_QUEUE_URL``), a tick receives the
``ObjectCreated`` notifications (up to :data:`MAX_SQS_MESSAGES_PER_TICK`), turns the manifest keys
among them into the same run requests (same ``run_key``) and deletes the messages once the requests
are built; every :data:`LISTING_FALLBACK_S` seconds a tick lists instead, so a lost notification is
caught. Without a queue (local mode, the demo, the tests of the listing, the benchmark) every tick lists.
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
from rai_assets.adapters.object_store import ObjectNotFoundError, ObjectStoreResource
from rai_assets.assets.partitions import SEASON_DIMENSION, TENANT_DIMENSION, partition_key
from rai_assets.domain.ids import InvalidIdentifierError, season_id, tenant_id
from rai_assets.domain.ingestion import DATA_SUFFIX, MANIFEST_SUFFIX
from rai_assets.loop.jobs import LANDING_ONLY, LANDING_WITH_CANDIDATE, SENSOR_INTERVAL_S, ingestion_job

MAX_FILES_PER_TICK = 2000  # 10,000 uploads in 5 ticks (2.5 min at the 30 s interval)
GRACE_S = 120.0  # how far the watermark trails the clock
MAX_WAITING_TENANTS = 1000
LISTING_FALLBACK_S = 300.0  # with an SQS queue: list the landing zone every 5 min (every 10th tick at 30 s)
MAX_SQS_MESSAGES_PER_TICK = 1000  # 100 ReceiveMessage calls of 10
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


def _last_listing(cursor: str | None) -> float:
    """Unix time of the last tick that listed the landing zone (``l`` in the cursor; 0.0: never)."""
    if not cursor:
        return 0.0
    data = json.loads(cursor)
    return float(data.get("l", 0.0)) if isinstance(data, dict) else 0.0


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


def data_key_of(manifest_key: str) -> str:
    """The data file's key of a landing manifest's key (``<batch>.manifest.json`` → ``<batch>.jsonl``)."""
    return manifest_key[: -len(MANIFEST_SUFFIX)] + DATA_SUFFIX


def ledger_line_counts(conn: Conn, manifests: list[tuple[str, str, str]]) -> dict[str, tuple[int, bool]]:
    """Data key → (distinct line numbers in the ledger, whether a batch-level dead letter exists) for ``manifests``.

    Counts the rows of ``learning_events`` and ``dead_letters`` whose ``source_file`` is a manifest's data file:
    one statement per tenant (row-level security scopes a statement to one tenant), on ``conn``. Data files
    with no row are absent.
    """
    by_tenant: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key, tenant, season in manifests:
        by_tenant[tenant].append((data_key_of(key), season))
    found: dict[str, tuple[int, bool]] = {}
    for tenant, files in sorted(by_tenant.items()):
        LedgerResource.switch_tenant(conn, tenant)
        seasons = sorted({s for _, s in files})
        sources = sorted({k for k, _ in files})
        rows = conn.execute(
            "SELECT source_file, count(DISTINCT line_no) AS lines, bool_or(line_no IS NULL) AS batch_level FROM ("
            " SELECT source_file, line_no FROM learning_events"
            "  WHERE tenant_id = %(t)s AND season_id = ANY(%(s)s) AND source_file = ANY(%(f)s)"
            " UNION ALL SELECT source_file, line_no FROM dead_letters"
            "  WHERE tenant_id = %(t)s AND season_id = ANY(%(s)s) AND source_file = ANY(%(f)s)"
            ") AS accounted GROUP BY source_file",
            {"t": tenant, "s": seasons, "f": sources},
        ).fetchall()
        found.update({r["source_file"]: (int(r["lines"]), bool(r["batch_level"])) for r in rows})
    return found


def manifest_line_count(object_store: ObjectStoreResource, manifest_key: str) -> int | None:
    """The ``line_count`` a landing manifest declares; None when it is missing, unreadable or not a count."""
    try:
        manifest = json.loads(object_store.get_bytes(manifest_key))
    except (ObjectNotFoundError, ValueError):
        return None
    count = manifest.get("line_count") if isinstance(manifest, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None


def already_ingested(object_store: ObjectStoreResource, manifests: list[tuple[str, str, str]],
                     counts: dict[str, tuple[int, bool]]) -> set[str]:
    """Manifest keys among ``manifests`` whose upload is fully ingested, given :func:`ledger_line_counts`.

    Fully ingested: its data file has a ledger row for each of the manifest's ``line_count`` lines, or a
    batch-level dead letter (a data file shorter than its manifest). The manifest is read only for data files
    with ledger rows; one that cannot be read is not skipped (its ingestion dead-letters it).
    """
    done: set[str] = set()
    for key, _, _ in manifests:
        lines, batch_level = counts.get(data_key_of(key), (0, False))
        if lines == 0 and not batch_level:
            continue
        expected = manifest_line_count(object_store, key)
        if expected is not None and (batch_level or lines >= expected):
            done.add(key)
    return done


def _landing_tick(context: SensorEvaluationContext, object_store: ObjectStoreResource,
                  ledger: LedgerResource) -> SensorResult:
    watermark, seen, waiting = parse_cursor(context.cursor)
    last_listing = _last_listing(context.cursor)
    now = time.time()
    queue = object_store.events_queue_url()
    use_listing = not queue or now - last_listing >= LISTING_FALLBACK_S
    receipts: list[str] = []
    if use_listing:
        listed = dict(scan_landing(object_store, watermark))
        source = "listing" if not queue else f"listing (the fallback every {LISTING_FALLBACK_S:.0f} s)"
    else:
        notified, receipts = object_store.receive_created_keys(max_messages=MAX_SQS_MESSAGES_PER_TICK)
        listed = {}
        for key, when in notified:
            if _LANDING_KEY.match(key):
                listed[key] = max(when, listed.get(key, 0.0))
        source = f"S3 event notifications ({len(receipts)} messages)"
    now_registered: set[str] = set()
    if waiting:
        with ledger.connect() as conn:
            now_registered = registered_tenants(conn, waiting)
    for tenant in sorted(now_registered):  # their uploads may be older than the watermark
        listed.update(scan_landing(object_store, 0.0, tenant))
    pending = sorted((m for m in landing_manifests(list(listed)) if _digest(m[0]) not in seen),
                     key=lambda m: (listed[m[0]], m[0]))
    registered: set[str] = set()
    counts: dict[str, tuple[int, bool]] = {}
    if pending:
        with ledger.connect() as conn:
            registered = registered_tenants(conn, {t for _, t, _ in pending})
            counts = ledger_line_counts(conn, [m for m in pending if m[1] in registered])
    ingested = already_ingested(object_store, [m for m in pending if m[1] in registered], counts)
    if ingested:
        context.log.info(f"{len(ingested)} uploads already ingested (every line an event or a dead letter in the "
                         f"ledger): not requested, e.g. {sorted(ingested)[:3]}")
    pending = [m for m in pending if m[0] not in ingested]
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
    handled = seen | {_digest(k) for k, _, _ in batch} | {_digest(k) for k in ingested}
    if use_listing:
        # every manifest modified before the new watermark is handled (or its tenant waits)
        new_watermark = max(watermark, min([now - GRACE_S, *(listed[k] for k, _, _ in rest)]))
        still_waiting_keys = {k for k in listed if k.split("/")[1] in waiting}
        new_seen = sorted({_digest(k) for k, m in listed.items() if m >= new_watermark or k in still_waiting_keys}
                          & handled)
    else:
        # notifications move no watermark: the next listing starts where the last one ended, and skips the
        # files handled here (kept in "seen" until that listing's watermark passes them); files beyond this
        # tick's batch are left to it
        new_watermark, new_seen = watermark, sorted(handled)
        if rest:
            context.log.warning(f"{len(rest)} notified uploads beyond this tick's {MAX_FILES_PER_TICK}: left to the "
                                f"next listing")
    # the watermark is floored to the millisecond: never rounded up past a file's mtime
    state: dict[str, object] = {"w": math.floor(new_watermark * 1000) / 1000, "seen": new_seen,
                                "wait": sorted(waiting)}
    if queue:
        state["l"] = round(now if use_listing else last_listing, 3)
    cursor = json.dumps(state, separators=(",", ":"))
    if not batch:
        object_store.delete_messages(receipts)
        return SensorResult(skip_reason=f"no new uploads via {source} ({len(ingested)} already ingested, "
                                        f"{len(unregistered)} waiting for tenant registration)", cursor=cursor)

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
    object_store.delete_messages(receipts)  # the run requests are built: the notifications are handled
    context.log.info(f"{len(requests)} ingestion runs requested for {len(batch)} uploads via {source}"
                     + (f"; {len(ingested)} already ingested, not requested" if ingested else ""))
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[
            *([AddDynamicPartitionsRequest(TENANT_DIMENSION, new_tenants)] if new_tenants else []),
            *([AddDynamicPartitionsRequest(SEASON_DIMENSION, new_seasons)] if new_seasons else []),
        ],
        cursor=cursor,
    )
