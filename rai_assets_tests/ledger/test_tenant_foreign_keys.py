"""Issue 8 item 2: a reference between tenant-owned tables cannot point into another tenant, and its
error does not tell a missing id from another tenant's. REQ: GOV-1, GOV-2."""

from __future__ import annotations

import psycopg
import pytest

from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets_tests.ledger.ledger_builders import SEASON, new_draft, setup_tenant


def test_every_reference_between_tenant_tables_carries_the_tenant(ledger: LedgerResource):
    """The class test: pg_constraint has no foreign key between two tables with a tenant_id column
    that leaves tenant_id out (a new one added without it fails here)."""
    with ledger.connect_owner() as conn:
        offenders = conn.execute(
            "SELECT c.conname, c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent"
            " FROM pg_constraint c WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace"
            " AND EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = c.conrelid AND x.attname = 'tenant_id')"
            " AND EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = c.confrelid AND x.attname = 'tenant_id')"
            " AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.conrelid"
            "                 AND a.attnum = ANY (c.conkey) AND a.attname = 'tenant_id')").fetchall()
        composite = conn.execute(
            "SELECT count(*) AS n FROM pg_constraint WHERE contype = 'f' AND conrelid = 'yield_forecasts'::regclass"
            " AND confrelid = 'model_versions'::regclass AND array_length(conkey, 1) = 2").fetchone()["n"]
    assert offenders == []
    assert composite == 1


def _forecast(conn, tenant: str, model_id: int) -> None:
    conn.execute("INSERT INTO yield_forecasts (tenant_id, season_id, field_id, model_id, predicted_yield_kg_ha)"
                 " VALUES (%s, %s, 'f1', %s, 4000)", (tenant, SEASON, model_id))


def test_a_forecast_cannot_point_at_another_tenants_model_nor_tell_it_exists(ledger, suffix):
    a, b = f"fk-a-{suffix}", f"fk-b-{suffix}"
    root_a, root_b = setup_tenant(ledger, a), setup_tenant(ledger, b)
    with ledger.connect(a) as conn:
        own = new_draft(conn, a, root_a).model_id
    with ledger.connect(b) as conn:
        theirs = new_draft(conn, b, root_b).model_id
    with ledger.connect(a) as conn:
        _forecast(conn, a, own)  # its own model: fine
    errors = []
    for target in (theirs, theirs + 10_000):  # another tenant's existing id, and an id that exists nowhere
        with pytest.raises(psycopg.errors.ForeignKeyViolation) as excinfo, ledger.connect(a, role="app") as conn:
            _forecast(conn, a, target)
        errors.append((excinfo.value.diag.constraint_name, excinfo.value.sqlstate))
    assert errors[0] == errors[1]  # the same constraint and state: existence is not revealed by the kind of error
