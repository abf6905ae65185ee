"""The landing sensor does not request uploads the ledger already holds (issue 10, item 1; ING-2, ING-4).

``make demo`` lands its uploads and ingests them directly, not through the sensor; the first ``make dagster``
then starts the sensor on a fresh Dagster instance (empty cursor). Every line of those uploads is an event or
a dead letter in the ledger, so none of them is new; a new upload, or a re-upload under a new key, still is.
"""

from __future__ import annotations

from dagster import DagsterInstance, materialize

from rai_assets.adapters.ledger import events as event_store
from rai_assets.assets.learning_events import learning_events
from rai_assets.assets.partitions import partition_key
from rai_assets.demo.ricefarms import tenant_key_pair, write_batch
from rai_assets.demo.runner import land_and_register
from rai_assets.domain.canonical import canonical_json
from rai_assets.loop.landing_sensor import landing_zone_sensor, parse_cursor
from rai_assets_tests.assets.test_ingestion_bad_input import _event
from rai_assets_tests.helpers import panel_slice
from rai_assets_tests.sensor_ticks import evaluate_sensor


def test_ing4_demo_ingested_uploads_are_not_requested_again_on_a_fresh_instance(resources, suffix, tmp_path):
    """Demo-style landing + ingestion (bad uploads included: a forged batch and a malformed line, all dead
    letters), then the sensor with an empty cursor on a fresh instance: nothing requested, and the skip says
    why; a new upload and a re-upload under a new key are requested, once."""
    ledger, store = resources["ledger"], resources["object_store"]
    demo_instance = DagsterInstance.ephemeral()
    panel = panel_slice(["gunungwangi", "langan"], seasons=3, suffix=suffix)
    tenants, seasons, batches = land_and_register(ledger, store, demo_instance, panel, tmp_path / "keys")
    assert len(batches) == len(tenants) * len(seasons) + 2  # the forged and the malformed upload
    for season in seasons:  # ingested the way the demo does: the learning_events asset per partition
        for tenant in tenants:
            result = materialize([learning_events], partition_key=partition_key(tenant, season),
                                 resources=resources, instance=demo_instance)
            assert result.success
    with ledger.connect(tenants[0]) as conn:
        forged = [d for d in event_store.dead_letters(conn, tenants[0]) if "late-corrections" in d["source_file"]]
    assert len(forged) == 2, "the forged upload is accounted for by dead letters only"

    fresh = DagsterInstance.ephemeral()  # `make dagster`: a new instance, the sensor's cursor empty
    first = evaluate_sensor(landing_zone_sensor, instance=fresh, resources=resources)
    assert first.run_requests == []
    assert f"{len(batches)} already ingested" in first.skip_reason.skip_message
    watermark, seen, _ = parse_cursor(first.cursor)
    assert len(seen) == len(batches)  # inside the grace window: remembered, not checked again
    again = evaluate_sensor(landing_zone_sensor, instance=fresh, resources=resources, cursor=first.cursor)
    assert again.run_requests == [] and "0 already ingested" in again.skip_reason.skip_message

    # a new upload (new events) and a re-upload of an ingested batch's lines under a new key
    tenant, season = tenants[1], seasons[1]
    write_batch(store, tenant, season, "late-news", [canonical_json(_event(tenant, "f-new"))],
                tenant_key_pair(tmp_path / "keys", tenant))
    ingested = next(b for b in batches if b.tenant == tenants[0] and b.season == seasons[0])
    lines = store.get_bytes(ingested.data_key).splitlines()
    write_batch(store, tenants[0], seasons[0], "ricefarms-again", lines, tenant_key_pair(tmp_path / "keys",
                                                                                       tenants[0]))
    for cursor in (None, again.cursor):  # from an empty cursor too: still nothing old requested
        result = evaluate_sensor(landing_zone_sensor, instance=fresh, resources=resources, cursor=cursor)
        assert sorted(r.partition_key for r in result.run_requests) == sorted(
            [str(partition_key(tenant, season)), str(partition_key(tenants[0], seasons[0]))])
        assert sorted(r.tags["rai/landed-files"] for r in result.run_requests) == ["1", "1"]
    after = evaluate_sensor(landing_zone_sensor, instance=fresh, resources=resources, cursor=result.cursor)
    assert after.run_requests == []
    assert watermark <= parse_cursor(after.cursor)[0]
