"""Every tenant-owned ledger row carries the trace id of the transaction that wrote it (migration 0007).

REQ: OBS-2, GOV-2
"""

from __future__ import annotations

import psycopg
import pytest

from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets_tests.ledger.ledger_builders import (
    S,
    assert_sqlstate,
    insert_learning_event,
    new_draft,
    setup_tenant,
    walk,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
LATER = "0af7651916cd43dd8448eb211c80319c"


def test_every_tenant_owned_table_has_a_trace_id_from_the_transaction(ledger: LedgerResource):
    with ledger.connect_owner() as conn:
        tables = {r["table_name"] for r in conn.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public'"
            " AND column_name = 'tenant_id'").fetchall()}
        traced = {r["table_name"]: r["column_default"] for r in conn.execute(
            "SELECT table_name, column_default FROM information_schema.columns WHERE table_schema = 'public'"
            " AND column_name = 'trace_id'").fetchall()}
    # tenants is the registry itself; audit_log's trace_id is written by the application and its trigger
    assert tables - {"tenants"} <= set(traced), sorted(tables - set(traced))
    assert all("rai.trace_id" in (default or "") for table, default in traced.items() if table != "audit_log")


def test_rows_take_the_trace_id_and_a_model_keeps_the_trace_that_created_it(ledger: LedgerResource, suffix: str):
    tenant = f"trace-ids-{suffix}"
    root = setup_tenant(ledger, tenant)
    with ledger.connect(tenant, trace_id=TRACE) as conn:
        insert_learning_event(conn, tenant, "field-1")
        model = new_draft(conn, tenant, root)
    with ledger.connect(tenant) as conn:  # no span: the row records no trace
        insert_learning_event(conn, tenant, "field-2")
    with ledger.connect(tenant, trace_id=LATER) as conn:
        walk(conn, model, (S.TRAINING,))  # a later trace moves the model; its audit entry says so
        audit = conn.execute("SELECT trace_id FROM audit_log WHERE model_id = %s ORDER BY seq DESC LIMIT 1",
                             (model.model_id,)).fetchone()
        events = {
            r["field_id"]: r["trace_id"] for r in conn.execute(
                "SELECT field_id, trace_id FROM learning_events WHERE tenant_id = %s", (tenant,)).fetchall()}
        row = conn.execute("SELECT trace_id, state FROM model_versions WHERE model_id = %s",
                           (model.model_id,)).fetchone()
        snapshot = conn.execute("SELECT trace_id FROM dataset_snapshots WHERE tenant_id = %s", (tenant,)).fetchone()
    assert events == {"field-1": TRACE, "field-2": ""}
    assert row == {"trace_id": TRACE, "state": S.TRAINING.value} and audit == {"trace_id": LATER}
    assert snapshot == {"trace_id": ""}  # setup_tenant wrote it outside a trace

    # the app role holds no UPDATE on the column (42501); the owner, who does, meets the trigger (RA002)
    for connect, sqlstate in ((lambda: ledger.connect(tenant, trace_id=LATER), "42501"),
                              (ledger.connect_owner, "RA002")):
        with pytest.raises(psycopg.Error) as excinfo, connect() as conn:
            conn.execute("UPDATE model_versions SET trace_id = %s WHERE model_id = %s", (LATER, model.model_id))
        assert_sqlstate(excinfo, sqlstate)
