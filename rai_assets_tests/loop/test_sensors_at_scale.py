"""The sensors at a CI-sized scale (issue 12, goals 1-2): no upload and no drift report missed or requested
twice, the landing cursor bounded by recent uploads (not by every file ever seen), ledger work batched.

The 10,000-tenant figures are measured by ``benchmarks/landing_sensor.py`` and ``benchmarks/drift_sensor.py``.
"""

from __future__ import annotations

import json
import time
from collections import Counter

from dagster import DagsterInstance

from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.loop import drift_sensor as drift_module
from rai_assets.loop import landing_sensor as landing_module
from rai_assets.loop.drift_sensor import drift_sensor
from rai_assets.loop.landing_sensor import landing_zone_sensor, parse_cursor
from rai_assets_tests.loop.scale import add_drift_reports, land_manifests, register_tenants, tenant_ids
from rai_assets_tests.sensor_ticks import evaluate_sensor


def _drain(sensor, instance, resources, cursor, max_ticks=50):
    """Tick until a tick requests nothing; (all run requests, cursor, ticks)."""
    requests = []
    for tick in range(max_ticks):
        result = evaluate_sensor(sensor, instance=instance, resources=resources, cursor=cursor)
        cursor = result.cursor
        if not result.run_requests:
            return requests, cursor, tick + 1
        requests += result.run_requests
    raise AssertionError("the sensor did not drain")


def test_landing_sensor_at_scale_misses_nothing_and_keeps_its_cursor_bounded(resources, monkeypatch):
    monkeypatch.setattr(landing_module, "MAX_FILES_PER_TICK", 70)
    instance = DagsterInstance.ephemeral()
    store = resources["object_store"]
    tenants = tenant_ids(200)
    register_tenants(resources["ledger"], tenants, ["s01", "s02", "s03"])
    an_hour_ago = time.time() - 3600
    old = land_manifests(store, [(t, "s01") for t in tenants], mtime=an_hour_ago)
    stranger = land_manifests(store, [("late-tenant", "s01")], mtime=an_hour_ago)  # registered later

    requests, cursor, ticks = _drain(landing_zone_sensor, instance, resources, None)
    assert ticks == 4  # 200 uploads, 70 a tick
    assert Counter(r.partition_key for r in requests) == Counter(f"s01|{t}" for t in tenants)
    assert len({r.run_key for r in requests}) == len(old)
    _, seen, waiting = parse_cursor(cursor)
    assert seen == set() and waiting == {"late-tenant"}  # all of them older than the watermark's grace
    assert len(cursor) < 200, "the cursor must not grow with the files already handled"

    # fresh uploads: requested once, remembered only while inside the grace window
    fresh = land_manifests(store, [(t, "s02") for t in tenants[:50]])
    requests, cursor, _ = _drain(landing_zone_sensor, instance, resources, cursor)
    assert sorted(r.partition_key for r in requests) == sorted(f"s02|{t}" for t in tenants[:50])
    assert len(parse_cursor(cursor)[1]) == len(fresh)

    # the waiting tenant registers: its upload, older than the watermark, is requested after all
    register_tenants(resources["ledger"], ["late-tenant"])
    requests, cursor, _ = _drain(landing_zone_sensor, instance, resources, cursor)
    assert [r.partition_key for r in requests] == ["s01|late-tenant"] and len(stranger) == 1
    assert parse_cursor(cursor)[2] == set()

    # the cursor of earlier versions (every handled key) is read, and replaced by the bounded one
    legacy = json.dumps(sorted(old + fresh + stranger))
    requests, cursor, _ = _drain(landing_zone_sensor, instance, resources, legacy)
    assert requests == [] and len(cursor) < len(legacy) / 10


def test_drift_sensor_at_scale_decides_every_report_once(resources, monkeypatch):
    monkeypatch.setattr(drift_module, "MAX_REPORTS_PER_TICK", 40)
    instance = DagsterInstance.ephemeral()
    tenants = tenant_ids(50, prefix="d")
    seasons = ["s01", "s02", "s03"]
    register_tenants(resources["ledger"], tenants, seasons)
    shas = add_drift_reports(resources["ledger"], instance, [(t, s) for s in seasons for t in tenants])

    cursor, ticks = None, 0
    while True:  # nothing is actionable, so no tick requests a run: tick until the cursor stops moving
        result = evaluate_sensor(drift_sensor, instance=instance, resources=resources, cursor=cursor)
        if result.cursor == cursor:
            break
        cursor, ticks = result.cursor, ticks + 1
    assert ticks == 4  # 150 reports, 40 a tick
    decided: Counter[str] = Counter()
    with resources["ledger"].connect() as conn:
        for tenant in tenants:
            resources["ledger"].switch_tenant(conn, tenant)
            rows = conn.execute("SELECT drift_report_sha256, count(*) AS n FROM guard_decisions"
                                " GROUP BY drift_report_sha256").fetchall()
            decided.update({r["drift_report_sha256"]: r["n"] for r in rows})
    assert decided == Counter({sha: 5 for sha in shas})  # five guards, once per report, none missed


def test_landing_sensor_lists_s3_by_last_modified(resources, s3_endpoint):
    """The listing fallback on S3 (the moto server): new uploads requested once, the cursor bounded."""
    import uuid

    import boto3

    bucket = f"landing-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    store = ObjectStoreResource(s3_bucket=bucket, s3_endpoint_url=s3_endpoint)
    resources = {**resources, "object_store": store}
    instance = DagsterInstance.ephemeral()
    tenants = tenant_ids(30, prefix="s")
    register_tenants(resources["ledger"], tenants, ["s01"])
    keys = land_manifests(store, [(t, "s01") for t in tenants])
    store.put_bytes("tenants/s00000/snapshots/s01/data.parquet", b"x")  # not a landing manifest

    requests, cursor, _ = _drain(landing_zone_sensor, instance, resources, None)
    assert sorted(r.partition_key for r in requests) == sorted(f"s01|{t}" for t in tenants)
    assert len(parse_cursor(cursor)[1]) == len(keys)  # inside the grace window: remembered, not re-requested
    again = evaluate_sensor(landing_zone_sensor, instance=instance, resources=resources, cursor=cursor)
    assert again.run_requests == []
