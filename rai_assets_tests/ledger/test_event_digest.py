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
