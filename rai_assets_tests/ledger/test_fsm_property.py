"""Property: the Python lifecycle model and the database agree on every step of any walk (REG-3).

Hypothesis draws a role and a sequence of target states; each example gets a fresh tenant and
model version (with a passed, verified bias audit so SHADOW is reachable) and applies the
targets through :func:`models.transition`. A small oracle — ``is_legal`` plus the documented
role guards — predicts each step: a legal step must succeed in the database, a role-guarded one
must be refused with RA004, and an illegal one must be refused by Python *and*, when the same
UPDATE is sent raw, by the database (RA001; RA005 for a self-transition). Afterwards the
stored state is the oracle's, the audit chain verifies and holds exactly one entry per
successful transition (plus the creation).

REQ: REG-3, REG-5, GOV-3, GOV-4
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from rai_assets.adapters.ledger import audit, models
from rai_assets.adapters.ledger.errors import LedgerRefusal, RoleRefused
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.domain.lifecycle import LEGAL_TRANSITIONS, IllegalTransitionError, ModelState, is_legal
from rai_assets_tests.ledger.ledger_builders import (
    S,
    add_bias_audit,
    drop_ledger_database,
    ensure_season,
    insert_snapshot,
    new_draft,
    new_ledger_database,
    sha,
)


@pytest.fixture(scope="module")
def prop_ledger(pg_server_url: str) -> Iterator[LedgerResource]:
    ledger = new_ledger_database(pg_server_url)
    ensure_season(ledger)
    yield ledger
    drop_ledger_database(pg_server_url, ledger)


def expected_refusal(role: str, current: ModelState, target: ModelState) -> str | None:
    """The oracle: None when ``current → target`` succeeds for ``role`` (guards met by the setup),
    else ``"python"`` (illegal, refused before the database) or the SQLSTATE of the database's refusal."""
    if not is_legal(current, target):
        return "python"
    if current is S.QUARANTINED and role == "app":
        return "RA004"  # leaving QUARANTINED is a manager's / admin's decision
    if (current, target) == (S.DEPRECATED, S.CHAMPION) and role == "manager":
        return "RA004"  # a rollback is an admin action for a manager
    return None  # SHADOW: the audit exists; VALIDATED → CHAMPION: the tenant has no other champion


def _fresh_model(ledger: LedgerResource) -> tuple[str, models.ModelVersion]:
    tenant = f"prop-{uuid.uuid4().hex[:10]}"
    root = sha(f"root|{tenant}")
    with ledger.connect(tenant) as conn:
        conn.execute("INSERT INTO tenants (tenant_id, public_key, model_spec) VALUES (%s, 'pk', 'rice-yield-v1')",
                     (tenant,))
        insert_snapshot(conn, tenant, root)
        model = new_draft(conn, tenant, root)
        add_bias_audit(conn, tenant, model.model_id)
    return tenant, model


def _successors(state: ModelState) -> list[ModelState]:
    return sorted((b for a, b in LEGAL_TRANSITIONS if a is state), key=list(ModelState).index)


def _resolve(step: ModelState | int, current: ModelState) -> ModelState:
    """A drawn step: a state, or ``i`` = the i-th legal successor of ``current`` (the first, i.e. the
    forward one, when there are fewer), so that walks get deep."""
    if isinstance(step, ModelState):
        return step
    nxt = _successors(current)
    if not nxt:
        return current
    return nxt[step] if step < len(nxt) else nxt[0]


# half the steps are any state (mostly illegal), half a legal successor: walks reach CANARY, CHAMPION, …
STEPS = st.lists(st.one_of(st.sampled_from(list(ModelState)), st.integers(min_value=0, max_value=3)), max_size=12)


@settings(max_examples=30, deadline=None, database=None)
@given(role=st.sampled_from(["app", "manager", "admin"]), steps=STEPS)
def test_database_agrees_with_the_python_fsm(prop_ledger: LedgerResource, role: str, steps: list[ModelState | int]):
    """REG-3: for any walk, success and refusal of every step are what the Python FSM predicts."""
    tenant, model = _fresh_model(prop_ledger)
    successes = 0
    with prop_ledger.connect(tenant, role=role, actor=f"prop-{role}", trace_id="trace-prop") as conn:
        for step in steps:
            current = model.state
            target = _resolve(step, current)
            expected = expected_refusal(role, current, target)
            if expected is None:
                model = models.transition(conn, model, target, reason=f"{current}->{target}")
                assert (model.state, model.state_version) == (target, successes + 2)
                successes += 1
            elif expected == "python":
                with pytest.raises(IllegalTransitionError):
                    models.transition(conn, model, target, reason="illegal")
                # the database refuses the same step on its own
                with pytest.raises(psycopg.Error) as excinfo, conn.transaction():
                    conn.execute("UPDATE model_versions SET state = %s, state_version = state_version + 1"
                                 " WHERE model_id = %s", (target.value, model.model_id))
                assert excinfo.value.sqlstate == ("RA005" if current is target else "RA001"), excinfo.value
            else:
                with pytest.raises(LedgerRefusal) as refused:
                    models.transition(conn, model, target, reason="guarded")
                assert isinstance(refused.value, RoleRefused) and refused.value.sqlstate == expected
            assert models.get_model(conn, model.model_id) == model  # a refusal changed nothing
    with prop_ledger.connect(tenant) as conn:
        stored = models.get_model(conn, model.model_id)
        check = audit.verify_chain(conn, tenant)
        actions = conn.execute("SELECT action, db_role FROM audit_log WHERE tenant_id = %s ORDER BY seq",
                               (tenant,)).fetchall()
    event(f"ended in {stored.state.value}")
    assert (stored.state, stored.state_version) == (model.state, 1 + successes)
    assert check.ok, check.problems
    assert check.entries == 1 + successes
    assert [a["action"] for a in actions] == ["lifecycle.create"] + ["lifecycle.transition"] * successes
    assert {a["db_role"] for a in actions[1:]} <= {f"rai_{role}"}


def test_oracle_covers_the_role_guards():
    """The oracle itself: the guarded legal pairs are exactly the QUARANTINED exits and the rollback."""
    guarded = {(role, a, b) for role in ("app", "manager", "admin") for a in ModelState for b in ModelState
               if expected_refusal(role, a, b) not in (None, "python")}
    assert guarded == {("app", S.QUARANTINED, S.VALIDATED), ("app", S.QUARANTINED, S.DEPRECATED),
                       ("manager", S.DEPRECATED, S.CHAMPION)}


def test_every_state_has_a_legal_exit_except_failed():
    """The step resolver relies on this: only FAILED is terminal (a resolved step then repeats it)."""
    assert [s for s in ModelState if not _successors(s)] == [S.FAILED]
