"""The ledger keeps each event's exact canonical bytes and checks them against their digest (ING-2, GOV-2)."""

from __future__ import annotations

import hashlib

import psycopg
import pytest

from rai_assets.adapters.ledger import events as event_store
from rai_assets.adapters.ledger.tenants import register_season, register_tenant
from rai_assets.domain.canonical import canonical_json
from rai_assets.domain.ingestion import AcceptedEvent
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


def test_an_event_needs_its_season_in_its_own_tenants_calendar(ledger, suffix):
    """ING-2, GOV-1 (migration 0013): an event references (tenant_id, season_id) in the season calendar.

    One foreign key instead of two (tenants, seasons) and a stronger one: a season registered only by another
    tenant is refused with the same constraint and state as a season that exists nowhere (nothing is revealed),
    through both write paths (a plain INSERT and ``insert_events``' COPY + INSERT … SELECT). The row-level
    policy's WITH CHECK, now reading the tenant once per statement, still refuses another tenant's rows.
    """
    a, b = f"fk-ev-a-{suffix}", f"fk-ev-b-{suffix}"
    for tenant, season in ((a, "s01"), (b, f"only-b-{suffix}")):
        with ledger.connect(tenant) as conn:
            register_tenant(conn, tenant, KeyPair.generate().public_key_b64, "rice-yield-v1")
            register_season(conn, tenant, season)
    payload = canonical_json({"field_id": "f-1", "yield": 4300.0})
    digest = hashlib.sha256(payload).hexdigest()
    insert = ("INSERT INTO learning_events (tenant_id, season_id, field_id, payload, payload_sha256, source_file,"
              " line_no) VALUES (%s, %s, 'f-1', %s::json, %s, 'x.jsonl', 1)")
    errors = []
    for season in (f"only-b-{suffix}", f"nowhere-{suffix}"):
        with pytest.raises(psycopg.errors.ForeignKeyViolation) as excinfo, ledger.connect(a) as conn:
            conn.execute(insert, (a, season, payload.decode(), digest))
        errors.append((excinfo.value.diag.constraint_name, excinfo.value.sqlstate))
        with pytest.raises(psycopg.errors.ForeignKeyViolation), ledger.connect(a) as conn:
            event_store.insert_events(conn, a, season, [AcceptedEvent("f-1", digest, "x.jsonl", 1, payload)], "run")
    assert errors[0] == errors[1] == ("learning_events_season_fkey", "23503")
    event = AcceptedEvent("f-1", digest, "x.jsonl", 1, payload)
    for session in (a, None):  # the policy's check (the tenant read once per statement) refuses B's rows
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"), \
                ledger.connect(session) as conn:
            event_store.insert_events(conn, b, f"only-b-{suffix}", [event], "run")
    with ledger.connect(a) as conn:  # its own calendar's season: stored
        conn.execute(insert, (a, "s01", payload.decode(), digest))
        assert event_store.count_events(conn, a, "s01") == 1
