"""Immutability of the ledger's recorded facts and the hash-chained audit log, on a real Postgres.

T-D1-01: an UPDATE of an immutable field raises. Two layers stop it: the application role has
no privilege on most immutable columns (SQLSTATE 42501, checked before any row is touched), and
the ``*_immutable`` / ``model_versions_guard`` / ``tenants_guard`` triggers raise RA002 for
anyone whose privileges let the statement through — including the schema owner (a superuser).
Each case below asserts exactly which layer answers. (A superuser can still disable triggers;
that is outside the database's own defence and out of scope here.)

GOV-3: every lifecycle transition appends an entry (actor, database role, before/after state,
reason, trace id) to the per-tenant hash chain, and :func:`verify_chain` names the sequence
number where an edited or deleted row breaks it.

REQ: GOV-2, GOV-3, SNAP-2, DRIFT-3, REG-1, OBS-2
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import psycopg
import pytest

from rai_assets.adapters.ledger import audit, models
from rai_assets.adapters.ledger.errors import ImmutableRefused
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets_tests.ledger.ledger_builders import (
    PATH_TO,
    S,
    add_bias_audit,
    assert_sqlstate,
    audit_rows,
    bootstrap,
    drop_ledger_database,
    new_draft,
    new_ledger_database,
    owner_replica,
    populate_tenant,
    setup_tenant,
    walk,
)

PRIVILEGE = "42501"  # insufficient_privilege: the grant stops the statement before any trigger
IMMUTABLE = "RA002"  # the database's own immutability guard

TENANT = "imm-coop"


@pytest.fixture(scope="module")
def world(pg_server_url: str) -> Iterator[tuple[LedgerResource, dict]]:
    """One database for the module: a tenant with rows in every immutable table."""
    ledger = new_ledger_database(pg_server_url)
    keys = populate_tenant(ledger, TENANT)
    yield ledger, keys
    drop_ledger_database(pg_server_url, ledger)


def _fingerprint(ledger: LedgerResource, table: str) -> str:
    """md5 over every row of ``table`` (as the owner: all tenants, no row-level security)."""
    with ledger.connect_owner() as conn:
        row = conn.execute(
            f"SELECT count(*) AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS h FROM {table} t"
        ).fetchone()
    assert row is not None and row["n"] > 0, f"{table} has no rows: the case would pass vacuously"
    return f"{row['n']}:{row['h']}"


# (table, SET clause, what the app role gets). The WHERE clause selects the tenant's rows.
UPDATE_CASES = [
    ("learning_events", "payload = '{\"yield\": 1}'::json", PRIVILEGE),
    ("learning_events", "payload_sha256 = repeat('0', 64)", PRIVILEGE),
    ("dataset_snapshots", "merkle_root = repeat('f', 64)", PRIVILEGE),
    ("dataset_snapshots", "row_count = row_count + 1", PRIVILEGE),
    ("drift_reports", "body = '{\"verdict\": \"drift\"}'::jsonb", PRIVILEGE),
    ("drift_reports", "signature = 'forged'", PRIVILEGE),
    ("bias_audits", "body = '{\"passed\": true}'::jsonb", PRIVILEGE),
    ("bias_audits", "passed = NOT passed", PRIVILEGE),
    ("model_evaluations", "body = '{}'::jsonb", PRIVILEGE),
    ("integrity_checks", "verified = NOT verified", PRIVILEGE),
    ("training_runs", "status = 'failed'", PRIVILEGE),
    ("drift_baselines", "reason = 'edited'", PRIVILEGE),
    ("audit_log", "reason = 'edited'", PRIVILEGE),
    ("tenants", "public_key = 'forged-key'", PRIVILEGE),
    # model_versions: lineage columns are not granted; set-once registry fields are, so the trigger answers
    ("model_versions", "snapshot_root = repeat('f', 64)", PRIVILEGE),
    ("model_versions", "code_version = 'other'", PRIVILEGE),
    ("model_versions", "mlflow_version = mlflow_version + 1", IMMUTABLE),
    ("model_versions", "mlflow_run_id = 'another-run'", IMMUTABLE),
    ("model_versions", "validation_mae = validation_mae + 1", IMMUTABLE),
]


@pytest.mark.parametrize(("table", "set_clause", "app_sqlstate"), UPDATE_CASES,
                         ids=[f"{t}:{c.split(' =')[0]}" for t, c, _ in UPDATE_CASES])
def test_app_role_update_of_immutable_field_raises(world, table, set_clause, app_sqlstate):
    """T-D1-01 (GOV-2): as rai_app in the row's own tenant, the UPDATE raises and nothing changes."""
    ledger, _ = world
    before = _fingerprint(ledger, table)
    with pytest.raises(psycopg.Error) as excinfo, ledger.connect(TENANT) as conn:
        visible = conn.execute(f"SELECT count(*) AS n FROM {table} WHERE tenant_id = %s", (TENANT,)).fetchone()
        assert visible is not None and visible["n"] > 0  # the rows are there and visible to the role
        conn.execute(f"UPDATE {table} SET {set_clause} WHERE tenant_id = %s", (TENANT,))
    assert_sqlstate(excinfo, app_sqlstate)
    assert _fingerprint(ledger, table) == before


@pytest.mark.parametrize(("table", "set_clause"), [(t, c) for t, c, _ in UPDATE_CASES],
                         ids=[f"{t}:{c.split(' =')[0]}" for t, c, _ in UPDATE_CASES])
def test_owner_update_of_immutable_field_raises_ra002(world, table, set_clause):
    """T-D1-01: the triggers refuse even the schema owner (a superuser, past every grant)."""
    ledger, _ = world
    before = _fingerprint(ledger, table)
    with pytest.raises(psycopg.Error) as excinfo, ledger.connect_owner() as conn:
        conn.execute(f"UPDATE {table} SET {set_clause} WHERE tenant_id = %s", (TENANT,))
    assert_sqlstate(excinfo, IMMUTABLE)
    assert _fingerprint(ledger, table) == before


def test_set_once_fields_can_be_set_once_then_never_changed(world):
    """GOV-2 / REG-1: mlflow_version starts NULL, is set once through a transition, then is frozen."""
    ledger, keys = world
    with ledger.connect(TENANT) as conn:
        model = new_draft(conn, TENANT, keys["root"])
        assert model.mlflow_version is None
        model = models.transition(conn, model, S.TRAINING, reason="register", mlflow_version=7)
        assert model.mlflow_version == 7
        # the same value again is not a change
        conn.execute("UPDATE model_versions SET mlflow_version = 7 WHERE model_id = %s", (model.model_id,))
    with pytest.raises(ImmutableRefused) as excinfo, ledger.connect(TENANT) as conn:
        models.transition(conn, model, S.VALIDATED, reason="re-register", mlflow_version=8)
    assert_sqlstate(excinfo, IMMUTABLE)
    with ledger.connect(TENANT) as conn:
        stored = models.get_model(conn, model.model_id)
    assert (stored.state, stored.mlflow_version) == (S.TRAINING, 7)


def test_mutable_tenant_columns_stay_writable(world):
    """Control: the privilege path is column-exact — display_name is writable, public_key is not."""
    ledger, _ = world
    with ledger.connect(TENANT) as conn:
        cur = conn.execute("UPDATE tenants SET display_name = 'Immutable Coop' WHERE tenant_id = %s", (TENANT,))
        assert cur.rowcount == 1
    with ledger.connect(TENANT) as conn:
        row = conn.execute("SELECT display_name FROM tenants WHERE tenant_id = %s", (TENANT,)).fetchone()
    assert row == {"display_name": "Immutable Coop"}


DELETE_CASES = [
    ("audit_log", PRIVILEGE), ("learning_events", PRIVILEGE), ("dataset_snapshots", PRIVILEGE),
    ("bias_audits", PRIVILEGE), ("drift_reports", PRIVILEGE), ("model_versions", PRIVILEGE), ("tenants", PRIVILEGE),
]


@pytest.mark.parametrize(("table", "app_sqlstate"), DELETE_CASES, ids=[t for t, _ in DELETE_CASES])
def test_delete_is_refused_for_app_and_owner(world, table, app_sqlstate):
    """GOV-2 / GOV-3: DELETE is not granted to rai_app (42501); the owner meets the trigger (RA002)."""
    ledger, _ = world
    before = _fingerprint(ledger, table)
    with pytest.raises(psycopg.Error) as app_exc, ledger.connect(TENANT) as conn:
        conn.execute(f"DELETE FROM {table} WHERE tenant_id = %s", (TENANT,))
    assert_sqlstate(app_exc, app_sqlstate)
    with pytest.raises(psycopg.Error) as owner_exc, ledger.connect_owner() as conn:
        conn.execute(f"DELETE FROM {table} WHERE tenant_id = %s", (TENANT,))
    assert_sqlstate(owner_exc, IMMUTABLE)
    assert _fingerprint(ledger, table) == before


def test_manager_and_admin_cannot_delete_audit_entries(world):
    """GOV-3 / GOV-4: the governance roles may append to the audit log, never remove from it."""
    ledger, _ = world
    for role in ("manager", "admin"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), ledger.connect(TENANT, role=role) as conn:
            conn.execute("DELETE FROM audit_log WHERE tenant_id = %s", (TENANT,))


@pytest.mark.parametrize("table", ["audit_log", "learning_events", "bias_audits", "drift_reports"])
def test_truncate_is_refused(world, table):
    """GOV-3: TRUNCATE (which skips row triggers) is not granted to rai_app, and its statement
    trigger refuses the owner with RA002."""
    ledger, _ = world
    before = _fingerprint(ledger, table)
    with pytest.raises(psycopg.Error) as app_exc, ledger.connect(TENANT) as conn:
        conn.execute(f"TRUNCATE {table}")
    assert_sqlstate(app_exc, PRIVILEGE)
    with pytest.raises(psycopg.Error) as owner_exc, ledger.connect_owner() as conn:
        conn.execute(f"TRUNCATE {table}")
    assert_sqlstate(owner_exc, IMMUTABLE)
    assert _fingerprint(ledger, table) == before


def test_app_cannot_forge_audit_chain_fields(world):
    """GOV-3: a hand-written audit INSERT cannot choose its seq, hashes or database role — the
    chain trigger fills them — so the chain still verifies."""
    ledger, _ = world
    with ledger.connect(TENANT, actor="mallory") as conn:
        last = conn.execute("SELECT max(seq) AS s FROM audit_log WHERE tenant_id = %s", (TENANT,)).fetchone()
        row = conn.execute(
            "INSERT INTO audit_log (tenant_id, seq, action, actor, db_role, reason, trace_id, at, prev_hash, entry,"
            " entry_hash) VALUES (%s, 1, 'governance.note', 'mallory', 'rai_admin', 'forged', 't', '2000-01-01',"
            " repeat('a', 64), '{}', repeat('b', 64)) RETURNING seq, db_role, prev_hash, entry_hash, at",
            (TENANT,),
        ).fetchone()
        assert row is not None and last is not None
        assert row["seq"] == last["s"] + 1
        assert row["db_role"] == "rai_app"
        assert row["prev_hash"] != "a" * 64 and row["entry_hash"] != "b" * 64
        assert row["at"].year > 2000
        check = audit.verify_chain(conn, TENANT)
    assert check.ok, check.problems


def test_app_cannot_forge_lifecycle_entries(world):
    """GOV-3: lifecycle entries should come only from the model_versions trigger, never from a direct INSERT."""
    ledger, keys = world
    forged = False
    with ledger.connect(TENANT) as conn:
        try:
            with conn.transaction():
                audit.append(conn, tenant=TENANT, action="lifecycle.transition", actor="pipeline",
                             reason="approved by the board", model_id=keys["model_id"],
                             before={"state": "TRAINING", "state_version": 2},
                             after={"state": "CHAMPION", "state_version": 3})
            forged = True
        except psycopg.Error:
            pass
        history = models.state_history(conn, keys["model_id"])
        real = models.get_model(conn, keys["model_id"])
        conn.rollback()  # leave the module's chain as it was
    assert real.state is S.TRAINING
    assert not forged, f"forged entry accepted; state_history now ends with {history[-1]}"


# ---------------------------------------------------------------- the chain over transitions (fresh DB each)


def _history(ledger: LedgerResource, tenant: str) -> tuple[int, int]:
    """A champion and a CANARY promoted over it; returns (old champion id, new champion id)."""
    root = setup_tenant(ledger, tenant)
    with ledger.connect(tenant, actor="pipeline", trace_id="trace-build") as conn:
        first = walk(conn, new_draft(conn, tenant, root), PATH_TO[S.VALIDATED], reason="trained")
        first = bootstrap(conn, first)
        second = walk(conn, new_draft(conn, tenant, root), PATH_TO[S.CANARY], reason="trained")
    with ledger.connect(tenant, role="manager", actor="maria", trace_id="trace-promote") as conn:
        models.transition(conn, second, S.CHAMPION, reason="canary significantly better")
    return first.model_id, second.model_id


def test_transitions_build_a_verifiable_chain_with_full_entries(ledger: LedgerResource, suffix: str):
    """GOV-3 / OBS-2: one entry per create and per transition (the superseded champion's
    deprecation included), each with actor, db_role, before/after state, reason and trace id; the
    chain links and hashes recompute independently of :func:`verify_chain`."""
    tenant = f"chain-{suffix}"
    old_id, new_id = _history(ledger, tenant)
    with ledger.connect(tenant) as conn:
        rows = audit_rows(conn, tenant)
        check = audit.verify_chain(conn, tenant)
    assert check.ok and check.problems == ()
    # create + 3 transitions (first), create + 4 transitions (second), deprecation of first, promotion of second
    assert check.entries == len(rows) == 11
    assert [r["seq"] for r in rows] == list(range(1, 12))
    prev = "0" * 64
    for r in rows:
        assert r["prev_hash"] == prev
        assert r["entry_hash"] == hashlib.sha256((r["prev_hash"] + r["entry"]).encode()).hexdigest()
        assert json.loads(r["entry"])["reason"] == r["reason"]
        prev = r["entry_hash"]

    transitions = [r for r in rows if r["action"] == "lifecycle.transition"]
    assert len(transitions) == 9
    pipeline = [r for r in transitions if r["trace_id"] == "trace-build"]
    assert {(r["actor"], r["db_role"]) for r in pipeline} == {("pipeline", "rai_app")}
    assert [(r["model_id"], r["before"]["state"], r["after"]["state"]) for r in pipeline] == [
        (old_id, "DRAFT", "TRAINING"), (old_id, "TRAINING", "VALIDATED"), (old_id, "VALIDATED", "CHAMPION"),
        (new_id, "DRAFT", "TRAINING"), (new_id, "TRAINING", "VALIDATED"), (new_id, "VALIDATED", "SHADOW"),
        (new_id, "SHADOW", "CANARY"),
    ]
    for r in pipeline:
        assert r["after"]["state_version"] == r["before"]["state_version"] + 1
    assert pipeline[2]["reason"] == "bootstrap promotion: first model"

    deprecation, promotion = transitions[-2:]
    assert (deprecation["model_id"], deprecation["before"], deprecation["after"]) == (
        old_id, {"state": "CHAMPION", "state_version": 4}, {"state": "DEPRECATED", "state_version": 5})
    assert (promotion["model_id"], promotion["before"], promotion["after"]) == (
        new_id, {"state": "CANARY", "state_version": 5}, {"state": "CHAMPION", "state_version": 6})
    for r in (deprecation, promotion):
        assert (r["actor"], r["db_role"], r["trace_id"]) == ("maria", "rai_manager", "trace-promote")
    assert promotion["reason"] == "canary significantly better"
    # the promotion's rai.reason carries over to the superseded champion's entry (the trigger's fallback text,
    # 'superseded by a new champion', is only used when no reason is set)
    assert deprecation["reason"] == "canary significantly better"

    creates = [r for r in rows if r["action"] == "lifecycle.create"]
    assert [(r["model_id"], r["before"], r["after"]["state"]) for r in creates] == [
        (old_id, None, "DRAFT"), (new_id, None, "DRAFT")]


def test_state_history_reads_the_audit_log(ledger: LedgerResource, suffix: str):
    """GOV-3: models.state_history is the audit log's view of one model version."""
    tenant = f"hist-{suffix}"
    old_id, _ = _history(ledger, tenant)
    with ledger.connect(tenant) as conn:
        history = models.state_history(conn, old_id)
    assert [(f, t) for f, t, _ in history] == [
        (None, "DRAFT"), ("DRAFT", "TRAINING"), ("TRAINING", "VALIDATED"), ("VALIDATED", "CHAMPION"),
        ("CHAMPION", "DEPRECATED")]


def test_edited_reason_is_reported_at_its_seq(ledger: LedgerResource, suffix: str):
    """GOV-3: an owner who disables triggers and rewrites an entry's reason is caught at that seq."""
    tenant = f"edit-{suffix}"
    _history(ledger, tenant)
    with owner_replica(ledger) as conn:
        cur = conn.execute(
            "UPDATE audit_log SET reason = 'nothing to see here' WHERE tenant_id = %s AND seq = 4", (tenant,))
        assert cur.rowcount == 1
    with ledger.connect(tenant) as conn:
        check = audit.verify_chain(conn, tenant)
    assert not check.ok
    assert check.problems and all(p.startswith("entry seq 4:") for p in check.problems), check.problems
    assert any("reason" in p for p in check.problems)


def test_rehashed_forgery_breaks_the_next_link(ledger: LedgerResource, suffix: str):
    """GOV-3: rewriting an entry *and* its hash consistently still breaks the link to the next seq."""
    tenant = f"forge-{suffix}"
    _history(ledger, tenant)
    with owner_replica(ledger) as conn:
        row = conn.execute("SELECT prev_hash, entry FROM audit_log WHERE tenant_id = %s AND seq = 5",
                           (tenant,)).fetchone()
        assert row is not None
        entry = json.loads(row["entry"])
        entry["reason"] = "forged"
        text = json.dumps(entry)
        conn.execute(
            "UPDATE audit_log SET reason = 'forged', entry = %s, entry_hash = %s WHERE tenant_id = %s AND seq = 5",
            (text, hashlib.sha256((row["prev_hash"] + text).encode()).hexdigest(), tenant),
        )
    with ledger.connect(tenant) as conn:
        check = audit.verify_chain(conn, tenant)
    assert not check.ok
    assert check.problems == ("entry seq 6: prev_hash does not match the previous entry's hash",)


def test_deleted_middle_row_is_reported(ledger: LedgerResource, suffix: str):
    """GOV-3: deleting a middle entry (triggers disabled by the owner) is reported at the next seq."""
    tenant = f"gap-{suffix}"
    _history(ledger, tenant)
    with owner_replica(ledger) as conn:
        assert conn.execute("DELETE FROM audit_log WHERE tenant_id = %s AND seq = 6", (tenant,)).rowcount == 1
    with ledger.connect(tenant) as conn:
        check = audit.verify_chain(conn, tenant)
    assert not check.ok and check.entries == 10
    assert check.problems[0] == "entry seq 7: expected seq 6 (a row is missing or out of order)"
    assert "entry seq 7: prev_hash does not match the previous entry's hash" in check.problems
    assert not any(p.startswith(("entry seq 5:", "entry seq 4:")) for p in check.problems)


def test_chains_are_per_tenant(ledger: LedgerResource, suffix: str):
    """GOV-1 / GOV-3: each tenant's chain starts at seq 1 from the genesis hash; tampering with one
    tenant's chain leaves the other's intact."""
    a, b = f"ca-{suffix}", f"cb-{suffix}"
    _history(ledger, a)
    root_b = setup_tenant(ledger, b)
    with ledger.connect(b) as conn:
        walk(conn, new_draft(conn, b, root_b), PATH_TO[S.VALIDATED])
    with owner_replica(ledger) as conn:
        conn.execute("UPDATE audit_log SET actor = 'someone-else' WHERE tenant_id = %s AND seq = 2", (a,))
    with ledger.connect(b) as conn:
        rows = audit_rows(conn, b)
        check_b = audit.verify_chain(conn, b)
    assert [r["seq"] for r in rows] == [1, 2, 3] and rows[0]["prev_hash"] == "0" * 64
    assert check_b.ok
    with ledger.connect(a) as conn:
        check_a = audit.verify_chain(conn, a)
    assert not check_a.ok and all(p.startswith("entry seq 2:") for p in check_a.problems)


def test_bias_audit_helper_rows_are_immutable_too(ledger: LedgerResource, suffix: str):
    """REG-5 / GOV-2: the verified integrity check that gates SHADOW cannot be flipped afterwards."""
    tenant = f"gate-{suffix}"
    root = setup_tenant(ledger, tenant)
    with ledger.connect(tenant) as conn:
        model = new_draft(conn, tenant, root)
        digest = add_bias_audit(conn, tenant, model.model_id, verified=False)
    with pytest.raises(psycopg.Error) as excinfo, ledger.connect_owner() as conn:
        conn.execute("UPDATE integrity_checks SET verified = true WHERE artifact_sha256 = %s", (digest,))
    assert_sqlstate(excinfo, IMMUTABLE)
