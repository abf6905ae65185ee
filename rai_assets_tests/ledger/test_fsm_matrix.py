"""The lifecycle FSM enforced by the database itself: all 81 (from, to) pairs (REG-3).

For every pair a fresh model version is put into ``from`` by the schema owner with triggers
disabled (``session_replication_role = replica``), in a tenant of its own (so "the tenant's
champion" is never another pair's row), and then the role that would take the decision runs
the raw ``UPDATE model_versions SET state = to, state_version = state_version + 1`` — no Python
check in between. Legal pairs (``LEGAL_TRANSITIONS``) succeed with every documented guard met
(a passed, verified bias audit for → SHADOW and for the bootstrap VALIDATED → CHAMPION, which also needs no champion;
rai_manager to leave QUARANTINED); illegal pairs are refused with RA001 — except the nine
self-transitions ``X → X``, which the trigger refuses as a bare state_version bump (RA005).

The guards themselves (RA003 / RA004 / RA005) are checked one by one below the matrix.

REQ: REG-3, REG-4, REG-5, GOV-3, GOV-4
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import product

import psycopg
import pytest

from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.domain.lifecycle import LEGAL_TRANSITIONS, ModelState
from rai_assets_tests.ledger.ledger_builders import (
    SEASON,
    S,
    add_bias_audit,
    assert_sqlstate,
    drop_ledger_database,
    ensure_season,
    insert_model_in_state,
    insert_snapshot,
    new_ledger_database,
    owner_replica,
    sha,
)

ALL_PAIRS = list(product(ModelState, ModelState))
READ_VERSION = 5  # the state_version every arranged row starts at


@pytest.fixture(scope="module")
def fsm_ledger(pg_server_url: str) -> Iterator[LedgerResource]:
    """One database for the whole module; every test case uses its own tenant and rows."""
    ledger = new_ledger_database(pg_server_url)
    ensure_season(ledger)
    yield ledger
    drop_ledger_database(pg_server_url, ledger)


def _tenant(ledger: LedgerResource, tenant: str) -> str:
    """Create ``tenant`` and a snapshot as the owner (fast path for 81+ tenants); returns the root."""
    root = sha(f"root|{tenant}")
    with ledger.connect_owner() as conn:
        conn.execute("INSERT INTO tenants (tenant_id, public_key, model_spec) VALUES (%s, 'pk', 'rice-yield-v1')",
                     (tenant,))
        insert_snapshot(conn, tenant, root)
    return root


def _arrange(ledger: LedgerResource, tenant: str, state: ModelState, *, shadow_audit: bool = False,
             passed: bool | None = None, verified: bool = True) -> int:
    """A fresh model version of ``tenant`` already in ``state`` (FSM bypassed by the owner), with a
    bias audit (``passed``) and its integrity check (``verified``) when asked."""
    root = sha(f"root|{tenant}")
    with owner_replica(ledger) as conn:
        model_id = insert_model_in_state(conn, tenant, root, state, state_version=READ_VERSION)
    if shadow_audit or passed is not None:
        with ledger.connect(tenant) as conn:
            add_bias_audit(conn, tenant, model_id, passed=True if passed is None else passed, verified=verified)
    return model_id


def _attempt(ledger: LedgerResource, tenant: str, model_id: int, target: ModelState, role: str,
             *, bump: int = 1) -> dict:
    """The raw transition UPDATE as ``role``; returns the updated row (raises on refusal)."""
    with ledger.connect(tenant, role=role, actor=f"matrix-{role}", trace_id="trace-matrix") as conn:
        row = conn.execute(
            "UPDATE model_versions SET state = %s, state_version = state_version + %s WHERE model_id = %s"
            " RETURNING state, state_version",
            (target.value, bump, model_id),
        ).fetchone()
    assert row is not None, "the row was not visible to the role"
    return row


def _stored(ledger: LedgerResource, model_id: int) -> dict:
    with ledger.connect_owner() as conn:
        row = conn.execute("SELECT state, state_version FROM model_versions WHERE model_id = %s",
                           (model_id,)).fetchone()
    assert row is not None
    return row


def _transition_entries(ledger: LedgerResource, tenant: str) -> list[dict]:
    with ledger.connect_owner() as conn:
        return list(conn.execute(
            "SELECT model_id, actor, db_role, before, after, trace_id FROM audit_log"
            " WHERE tenant_id = %s AND action = 'lifecycle.transition' ORDER BY seq", (tenant,)).fetchall())


def test_lifecycle_transitions_table_equals_python_table(fsm_ledger: LedgerResource):
    """REG-3: the database's transition table is exactly LEGAL_TRANSITIONS (19 pairs), over the same 9 states."""
    with fsm_ledger.connect() as conn:
        rows = conn.execute("SELECT from_state, to_state FROM lifecycle_transitions").fetchall()
        check = conn.execute(
            "SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint"
            " WHERE conrelid = 'model_versions'::regclass AND contype = 'c'"
            " AND pg_get_constraintdef(oid) LIKE '%state%'"
        ).fetchone()
    db_pairs = {(ModelState(r["from_state"]), ModelState(r["to_state"])) for r in rows}
    assert len(rows) == len(db_pairs) == len(LEGAL_TRANSITIONS) == 19
    assert db_pairs == set(LEGAL_TRANSITIONS)
    assert check is not None
    assert all(f"'{s.value}'" in check["d"] for s in ModelState)


@pytest.mark.parametrize("role", ["app", "manager", "admin"])
@pytest.mark.parametrize("statement", [
    "INSERT INTO lifecycle_transitions VALUES ('FAILED', 'CHAMPION')",
    "DELETE FROM lifecycle_transitions WHERE from_state = 'QUARANTINED'",
    "UPDATE lifecycle_transitions SET to_state = 'CHAMPION' WHERE from_state = 'DRAFT'",
])
def test_no_product_role_can_change_the_transition_table(fsm_ledger: LedgerResource, role: str, statement: str):
    """REG-3: the FSM table is read-only to every product role (42501)."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege), fsm_ledger.connect(None, role=role) as conn:
        conn.execute(statement)
    with fsm_ledger.connect() as conn:
        assert conn.execute("SELECT count(*) AS n FROM lifecycle_transitions").fetchone() == {"n": 19}


@pytest.mark.parametrize(("src", "dst"), ALL_PAIRS, ids=[f"{a.value}->{b.value}" for a, b in ALL_PAIRS])
def test_every_pair_at_the_database(fsm_ledger: LedgerResource, src: ModelState, dst: ModelState):
    """REG-3: the trigger allows exactly the legal pairs (guards met) and refuses the other 62."""
    tenant = f"fsm-{src.value.lower()}-{dst.value.lower()}"
    _tenant(fsm_ledger, tenant)
    model_id = _arrange(fsm_ledger, tenant, src,
                        shadow_audit=dst is S.SHADOW or (src is S.VALIDATED and dst is S.CHAMPION))
    role = "manager" if src is S.QUARANTINED else "app"
    legal = (src, dst) in LEGAL_TRANSITIONS

    if legal:
        row = _attempt(fsm_ledger, tenant, model_id, dst, role)
        assert row == {"state": dst.value, "state_version": READ_VERSION + 1}
        assert _stored(fsm_ledger, model_id) == row
        (entry,) = _transition_entries(fsm_ledger, tenant)
        assert entry == {
            "model_id": model_id, "actor": f"matrix-{role}", "db_role": f"rai_{role}",
            "before": {"state": src.value, "state_version": READ_VERSION},
            "after": {"state": dst.value, "state_version": READ_VERSION + 1}, "trace_id": "trace-matrix",
        }
        return

    with pytest.raises(psycopg.Error) as excinfo:
        _attempt(fsm_ledger, tenant, model_id, dst, role)
    # a self-transition is refused as a bare state_version bump, every other illegal pair by the FSM
    assert_sqlstate(excinfo, "RA005" if src is dst else "RA001")
    if src is not dst:
        assert f"illegal lifecycle transition {src.value} → {dst.value}" in str(excinfo.value)
    assert _stored(fsm_ledger, model_id) == {"state": src.value, "state_version": READ_VERSION}
    assert _transition_entries(fsm_ledger, tenant) == []


@pytest.mark.parametrize("state", list(ModelState), ids=[s.value for s in ModelState])
def test_same_state_without_bump_is_a_silent_no_op(fsm_ledger: LedgerResource, state: ModelState):
    """Not a transition: rewriting the same state without a version bump changes nothing and is not audited."""
    tenant = f"noop-{state.value.lower()}"
    _tenant(fsm_ledger, tenant)
    model_id = _arrange(fsm_ledger, tenant, state)
    row = _attempt(fsm_ledger, tenant, model_id, state, "manager", bump=0)
    assert row == {"state": state.value, "state_version": READ_VERSION}
    assert _transition_entries(fsm_ledger, tenant) == []


# ---------------------------------------------------------------- the guards, one by one


def test_insert_must_start_in_draft(fsm_ledger: LedgerResource):
    """REG-3: a model version cannot be born in a later state (RA001)."""
    tenant = "guard-insert"
    root = _tenant(fsm_ledger, tenant)
    with pytest.raises(psycopg.Error) as excinfo, fsm_ledger.connect(tenant) as conn:
        conn.execute(
            "INSERT INTO model_versions (tenant_id, season_id, snapshot_root, code_version, spec_sha256, state)"
            " VALUES (%s, %s, %s, 'c', %s, 'CHAMPION')", (tenant, SEASON, root, sha("spec")))
    assert_sqlstate(excinfo, "RA001")


def test_bootstrap_promotion_refused_while_a_champion_exists(fsm_ledger: LedgerResource):
    """VALIDATED → CHAMPION is the bootstrap promotion: RA003 once the tenant has a champion."""
    tenant = "guard-bootstrap"
    _tenant(fsm_ledger, tenant)
    champion = _arrange(fsm_ledger, tenant, S.CHAMPION)
    candidate = _arrange(fsm_ledger, tenant, S.VALIDATED)
    with pytest.raises(psycopg.Error) as excinfo:
        _attempt(fsm_ledger, tenant, candidate, S.CHAMPION, "app")
    assert_sqlstate(excinfo, "RA003")
    assert _stored(fsm_ledger, champion)["state"] == "CHAMPION"
    assert _stored(fsm_ledger, candidate)["state"] == "VALIDATED"


@pytest.mark.parametrize("passed", [None, False])
def test_bootstrap_promotion_needs_a_passed_bias_audit(fsm_ledger: LedgerResource, passed: bool | None):
    """REG-5 for the bootstrap: VALIDATED → CHAMPION without a passed, verified bias audit is RA003,
    and a manager's recorded override lets it through."""
    tenant = f"guard-bootstrap-bias-{passed}".lower()
    _tenant(fsm_ledger, tenant)
    candidate = _arrange(fsm_ledger, tenant, S.VALIDATED, passed=passed)
    with pytest.raises(psycopg.Error) as excinfo:
        _attempt(fsm_ledger, tenant, candidate, S.CHAMPION, "app")
    assert_sqlstate(excinfo, "RA003")
    assert "bias audit" in str(excinfo.value)
    with fsm_ledger.connect(tenant, role="manager", actor="manager-1") as conn:
        conn.execute("INSERT INTO bootstrap_overrides (tenant_id, model_id, actor, reason) VALUES (%s, %s, %s, %s)",
                     (tenant, candidate, "manager-1", "audited override"))
    assert _attempt(fsm_ledger, tenant, candidate, S.CHAMPION, "app")["state"] == "CHAMPION"


@pytest.mark.parametrize(
    ("case", "audit"),
    [("no-audit", None), ("failed-audit", {"passed": False, "verified": True}),
     ("unverified-signature", {"passed": True, "verified": False}),
     ("failed-and-unverified", {"passed": False, "verified": False})],
)
def test_shadow_needs_a_passed_verified_bias_audit(fsm_ledger: LedgerResource, case: str, audit: dict | None):
    """REG-5: VALIDATED → SHADOW is refused with RA003 unless the model has a passed bias audit whose
    integrity check verified."""
    tenant = f"guard-shadow-{case}"
    _tenant(fsm_ledger, tenant)
    model_id = _arrange(fsm_ledger, tenant, S.VALIDATED, **(audit or {}))
    with pytest.raises(psycopg.Error) as excinfo:
        _attempt(fsm_ledger, tenant, model_id, S.SHADOW, "app")
    assert_sqlstate(excinfo, "RA003")
    assert _stored(fsm_ledger, model_id)["state"] == "VALIDATED"


def test_shadow_audit_must_be_the_models_own(fsm_ledger: LedgerResource):
    """REG-5: another model's passed audit does not open SHADOW for this one."""
    tenant = "guard-shadow-other"
    _tenant(fsm_ledger, tenant)
    _arrange(fsm_ledger, tenant, S.VALIDATED, passed=True, verified=True)
    model_id = _arrange(fsm_ledger, tenant, S.VALIDATED)
    with pytest.raises(psycopg.Error) as excinfo:
        _attempt(fsm_ledger, tenant, model_id, S.SHADOW, "app")
    assert_sqlstate(excinfo, "RA003")


@pytest.mark.parametrize("target", [S.VALIDATED, S.DEPRECATED])
@pytest.mark.parametrize(("role", "expected"), [("app", "RA004"), ("manager", None), ("admin", None)])
def test_leaving_quarantine_needs_manager_or_admin(fsm_ledger: LedgerResource, target, role, expected):
    """GOV-4: a quarantined model leaves QUARANTINED only by a manager's or admin's decision."""
    tenant = f"guard-q-{role}-{target.value.lower()}"
    _tenant(fsm_ledger, tenant)
    model_id = _arrange(fsm_ledger, tenant, S.QUARANTINED)
    if expected is None:
        assert _attempt(fsm_ledger, tenant, model_id, target, role)["state"] == target.value
        return
    with pytest.raises(psycopg.Error) as excinfo:
        _attempt(fsm_ledger, tenant, model_id, target, role)
    assert_sqlstate(excinfo, expected)
    assert _stored(fsm_ledger, model_id)["state"] == "QUARANTINED"


@pytest.mark.parametrize(("role", "expected"), [("manager", "RA004"), ("admin", None), ("app", None)])
def test_rollback_to_a_previous_champion(fsm_ledger: LedgerResource, role: str, expected: str | None):
    """GOV-4 / RET-8: DEPRECATED → CHAMPION is refused for a pure manager (RA004); the admin (forced
    rollback) and the application (automatic rollback) may, and the current champion is deprecated
    in the same statement."""
    tenant = f"guard-rollback-{role}"
    _tenant(fsm_ledger, tenant)
    current = _arrange(fsm_ledger, tenant, S.CHAMPION)
    previous = _arrange(fsm_ledger, tenant, S.DEPRECATED)
    if expected is not None:
        with pytest.raises(psycopg.Error) as excinfo:
            _attempt(fsm_ledger, tenant, previous, S.CHAMPION, role)
        assert_sqlstate(excinfo, expected)
        assert _stored(fsm_ledger, current)["state"] == "CHAMPION"
        assert _stored(fsm_ledger, previous)["state"] == "DEPRECATED"
        return
    assert _attempt(fsm_ledger, tenant, previous, S.CHAMPION, role)["state"] == "CHAMPION"
    assert _stored(fsm_ledger, current) == {"state": "DEPRECATED", "state_version": READ_VERSION + 1}
    entries = _transition_entries(fsm_ledger, tenant)
    assert [(e["model_id"], e["after"]["state"], e["db_role"]) for e in entries] == [
        (current, "DEPRECATED", f"rai_{role}"), (previous, "CHAMPION", f"rai_{role}")]


def test_canary_promotion_deprecates_the_champion(fsm_ledger: LedgerResource):
    """REG-3: CANARY → CHAMPION keeps one champion per tenant by deprecating the previous one."""
    tenant = "guard-canary"
    _tenant(fsm_ledger, tenant)
    champion = _arrange(fsm_ledger, tenant, S.CHAMPION)
    canary = _arrange(fsm_ledger, tenant, S.CANARY)
    assert _attempt(fsm_ledger, tenant, canary, S.CHAMPION, "manager")["state"] == "CHAMPION"
    assert _stored(fsm_ledger, champion)["state"] == "DEPRECATED"
    with fsm_ledger.connect_owner() as conn:
        n = conn.execute("SELECT count(*) AS n FROM model_versions WHERE tenant_id = %s AND state = 'CHAMPION'",
                         (tenant,)).fetchone()
    assert n == {"n": 1}


@pytest.mark.parametrize("bump", [0, 2, -1])
def test_transition_must_state_the_version_it_read(fsm_ledger: LedgerResource, bump: int):
    """REG-4: a legal transition whose state_version is not exactly read + 1 is refused (RA005)."""
    tenant = f"guard-version-{bump + 1}"
    _tenant(fsm_ledger, tenant)
    model_id = _arrange(fsm_ledger, tenant, S.DRAFT)
    with pytest.raises(psycopg.Error) as excinfo:
        _attempt(fsm_ledger, tenant, model_id, S.TRAINING, "app", bump=bump)
    assert_sqlstate(excinfo, "RA005")


def test_agronomist_cannot_touch_lifecycle_state(fsm_ledger: LedgerResource):
    """GOV-4: the agronomist role views forecasts only; it has no privilege on model_versions."""
    tenant = "guard-agronomist"
    _tenant(fsm_ledger, tenant)
    model_id = _arrange(fsm_ledger, tenant, S.DRAFT)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _attempt(fsm_ledger, tenant, model_id, S.TRAINING, "agronomist")
    assert _stored(fsm_ledger, model_id)["state"] == "DRAFT"
