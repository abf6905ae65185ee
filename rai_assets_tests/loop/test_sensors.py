"""Sensors with real instances and stores, evaluated with build_sensor_context. REQ: RET-1..6, DRIFT-2, ING-3."""

from __future__ import annotations

import json

from dagster import DagsterInstance, materialize

from rai_assets.adapters.ledger import audit
from rai_assets.adapters.ledger.tenants import register_season, season_order
from rai_assets.assets.learning_events import learning_events
from rai_assets.assets.partitions import add_partitions, partition_key
from rai_assets.definitions import build_definitions
from rai_assets.demo.ricefarms import tenant_key_pair, write_batch
from rai_assets.demo.runner import land_and_register
from rai_assets.demo.synthetic import SeasonShape
from rai_assets.domain.canonical import canonical_json
from rai_assets.loop.drift_sensor import drift_sensor
from rai_assets.loop.jobs import INGESTION_JOB, LANDING_ONLY, RETRAIN_TENANT_TAG
from rai_assets.loop.landing_sensor import landing_zone_sensor
from rai_assets_tests.assets.test_ingestion_bad_input import _event
from rai_assets_tests.helpers import panel_slice
from rai_assets_tests.loop.synthetic_tenant import land_synthetic_tenant, run_seasons
from rai_assets_tests.sensor_ticks import evaluate_sensor


def test_landing_sensor_requests_each_upload_once_and_waits_for_unknown_tenants(resources, suffix, tmp_path):
    instance = DagsterInstance.ephemeral()
    panel = panel_slice(["langan"], seasons=2, suffix=suffix)
    tenant = panel["tenant"].iloc[0]
    land_and_register(resources["ledger"], resources["object_store"], instance, panel, tmp_path / "keys",
                      bad_uploads=False)
    # an upload for a tenant nobody registered, and a brand-new season of the known tenant
    stranger = f"nobody-{suffix}"
    write_batch(resources["object_store"], stranger, "s01", "x", [canonical_json(_event(stranger, "f-1"))],
                tenant_key_pair(tmp_path / "other", stranger))
    write_batch(resources["object_store"], tenant, "s09", "late", [canonical_json(_event(tenant, "f-1"))],
                tenant_key_pair(tmp_path / "keys", tenant))

    result = evaluate_sensor(landing_zone_sensor, instance=instance, resources=resources)
    requested = sorted(r.partition_key for r in result.run_requests)
    assert requested == sorted(str(partition_key(tenant, s)) for s in ("s01", "s02", "s09"))
    assert all(r.run_key.startswith("landing:") for r in result.run_requests)
    added = {req.partitions_def_name: list(req.partition_keys) for req in result.dynamic_partitions_requests}
    assert added == {"season": ["s09"]}  # the tenant and s01/s02 were registered already
    handled = json.loads(result.cursor)
    assert not any(stranger in key for key in handled), "an unregistered tenant's upload must wait, not vanish"

    again = evaluate_sensor(landing_zone_sensor, instance=instance, resources=resources, cursor=result.cursor)
    assert again.run_requests == [] and "1 waiting for tenant registration" in again.skip_reason.skip_message
    # the sensor read no manifest and registered nothing; the ingestion run adds s09 to the tenant's calendar
    # once its manifest verified (issue 8 item 3)
    with resources["ledger"].connect(tenant) as conn:
        assert season_order(conn, tenant) == ["s01", "s02"]
    add_partitions(instance, seasons=["s09"])
    assert materialize([learning_events], partition_key=partition_key(tenant, "s09"), resources=resources,
                       instance=instance).success
    with resources["ledger"].connect(tenant) as conn:
        assert season_order(conn, tenant) == ["s01", "s02", "s09"]


def test_drift_sensor_requests_guarded_retraining_and_shows_refusals(resources, suffix, tmp_path):
    """RET-1, RET-3, RET-4, DRIFT-2: actionable drift → one retraining run for the next season, keyed by the
    report; the cooldown refuses it visibly."""
    instance = DagsterInstance.ephemeral()
    tenant = f"loop-{suffix}"
    shift = SeasonShape(inputs={"urea": 1.8, "pseed": 1.5, "seed": 1.4}, yield_factor=0.75)
    seasons = land_synthetic_tenant(resources, instance, tenant, [SeasonShape(), SeasonShape(), shift],
                                    n_fields=1100, keys_dir=tmp_path / "keys")
    run_seasons(resources, instance, tenant, seasons[:2])
    defs = build_definitions(resources)
    ingest = defs.resolve_job_def(INGESTION_JOB).execute_in_process(
        instance=instance, partition_key=partition_key(tenant, seasons[2]),
        asset_selection=[a.key for a in LANDING_ONLY])  # what the landing sensor asks for without a candidate
    assert ingest.success
    verdicts = {str(m.partition): m.metadata["verdict"].value
                for m in ingest.asset_materializations_for_node("drift_report")}
    assert verdicts == {str(partition_key(tenant, seasons[2])): "drift"}

    no_next = evaluate_sensor(drift_sensor, instance=instance, resources=resources)
    assert no_next.run_requests == [] and "no later season is registered" in no_next.skip_reason.skip_message
    with resources["ledger"].connect(tenant) as conn:
        register_season(conn, tenant, "s04", 4)  # the calendar's next season: the retrained candidate will serve it
    add_partitions(instance, seasons=["s04"])

    result = evaluate_sensor(drift_sensor, instance=instance, resources=resources)
    assert [r.partition_key for r in result.run_requests] == [str(partition_key(tenant, "s04"))]
    request = result.run_requests[0]
    assert request.run_key.startswith("retrain:") and request.tags[RETRAIN_TENANT_TAG] == tenant
    # the s02 report (no drift against s01) was read too, and refused by the drift guard
    with resources["ledger"].connect(tenant) as conn:
        drift_rows = conn.execute("SELECT season_id, allowed FROM guard_decisions WHERE guard = 'drift'"
                                  " ORDER BY guard_decision_id").fetchall()
    assert [(r["season_id"], r["allowed"]) for r in drift_rows] == [(seasons[1], False), (seasons[2], True)] * 2

    quiet = evaluate_sensor(drift_sensor, instance=instance, resources=resources, cursor=result.cursor)
    assert quiet.run_requests == [] and quiet.skip_reason.skip_message == "no new drift reports"

    # a rollback yesterday: the same report is now refused by the cooldown (RET-4), visibly
    with resources["ledger"].connect(tenant, role="admin") as conn:
        audit.append(conn, tenant=tenant, action="governance.rollback", actor="boss", reason="test rollback")
    refused = evaluate_sensor(drift_sensor, instance=instance, resources=resources)
    assert refused.run_requests == []
    assert "cooldown" in refused.skip_reason.skip_message and "RET-4" in refused.skip_reason.skip_message
    with resources["ledger"].connect(tenant) as conn:
        row = conn.execute("SELECT allowed, reason FROM guard_decisions WHERE guard = 'cooldown'"
                           " ORDER BY guard_decision_id DESC LIMIT 1").fetchone()
    assert row["allowed"] is False and "cooldown" in row["reason"]
