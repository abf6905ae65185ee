"""The ledger keeps each event's exact canonical bytes and checks them against their digest (ING-2, GOV-2)."""

from __future__ import annotations

import hashlib

import psycopg
import pytest

from rai_assets.adapters.ledger import events as event_store
from rai_assets.adapters.ledger.tenants import register_season, register_tenant
from rai_assets.domain.canonical import canonical_json
from rai_assets.domain.signing import KeyPair


def test_payload_must_match_its_digest_and_is_stored_byte_for_byte(ledger, suffix):
    tenant = f"dig-{suffix}"
    with ledger.connect(tenant) as conn:
        register_tenant(conn, tenant, KeyPair.generate().public_key_b64, "rice-yield-v1")
        register_season(conn, tenant, "s01", 1)
    payload = canonical_json({"field_id": "f-1", "b": 2.5, "a": [1, 2]})
    insert = ("INSERT INTO learning_events (tenant_id, season_id, field_id, payload, payload_sha256, source_file,"
              " line_no) VALUES (%s, 's01', 'f-1', %s::json, %s, 'x.jsonl', 1)")
    with pytest.raises(psycopg.errors.CheckViolation), ledger.connect(tenant) as conn:
        conn.execute(insert, (tenant, payload.decode(), "0" * 64))
    with ledger.connect(tenant) as conn:
        conn.execute(insert, (tenant, payload.decode(), hashlib.sha256(payload).hexdigest()))
        text = conn.execute("SELECT payload::text AS t FROM learning_events WHERE tenant_id = %s",
                            (tenant,)).fetchone()["t"]
        assert text.encode() == payload
        assert event_store.load_events(conn, tenant, ["s01"]) == [{"field_id": "f-1", "b": 2.5, "a": [1, 2]}]


def test_insert_events_escapes_copy_text_and_the_database_checks_the_digest(ledger, suffix):
    """ING-2, GOV-2: ``insert_events`` writes COPY's text format itself; a payload with backslash escapes and a
    source key with a tab, a newline and a backslash arrive byte for byte (the table's digest CHECK agrees)."""
    from rai_assets.domain.ingestion import AcceptedEvent

    tenant = f"esc-{suffix}"
    with ledger.connect(tenant) as conn:
        register_tenant(conn, tenant, KeyPair.generate().public_key_b64, "rice-yield-v1")
        register_season(conn, tenant, "s01", 1)
    payloads = [canonical_json({"field_id": "f-1", "note": 'tab\there "q" back\\slash \\n é'}),
                canonical_json({"field_id": "f-2", "n": 1})]
    source = "tenants/x/odd\tname\\with\nnewline.jsonl"
    events = [AcceptedEvent(f"f-{i}", hashlib.sha256(p).hexdigest(), source, i, p) for i, p in enumerate(payloads, 1)]
    assert b"\\\\" in payloads[0]  # the canonical bytes themselves hold backslashes
    with ledger.connect(tenant) as conn:
        assert event_store.insert_events(conn, tenant, "s01", events, "run\t1") == 2
        rows = conn.execute("SELECT payload::text AS t, source_file, line_no, dagster_run_id FROM learning_events"
                            " WHERE tenant_id = %s ORDER BY field_id", (tenant,)).fetchall()
    assert [r["t"].encode() for r in rows] == payloads
    assert {(r["source_file"], r["dagster_run_id"]) for r in rows} == {(source, "run\t1")}
    assert [r["line_no"] for r in rows] == [1, 2]
