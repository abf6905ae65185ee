"""Cohort membership and the cohort read path, at the database level (REG-9, GOV-1, GOV-4).

Three tenants of one spec: ``a`` and ``b`` opt in to a cohort, ``c`` does not. The ``rai_cohort``
role, with the cohort set, reads exactly the current members' events and evidence: never ``c``'s,
and no longer ``b``'s once ``b`` has left.
"""

from __future__ import annotations

import pytest

from rai_assets.adapters.ledger import cohorts
from rai_assets.governance import actions
from rai_assets_tests.ledger.ledger_builders import (
    SEASON,
    assert_sqlstate,
    audit_rows,
    ensure_season,
    insert_learning_event,
    setup_tenant,
)

COHORT = "villages"


@pytest.fixture
def world(ledger, suffix):
    tenants = {name: f"{name}-{suffix}" for name in ("a", "b", "c")}
    for tenant in tenants.values():
        setup_tenant(ledger, tenant)
        with ledger.connect(tenant) as conn:
            for i in range(3):
                insert_learning_event(conn, tenant, f"field-{i}")
    for name in ("a", "b"):
        actions.cohort_join(ledger, tenant=tenants[name], cohort=COHORT, actor=f"manager-{name}",
                            reason="pool with the neighbours")
    return ledger, tenants


def _cohort_read(ledger, seasons=(SEASON,)):
    with ledger.connect(role="cohort", cohort=COHORT) as conn:
        return cohorts.member_events(conn, list(seasons)), cohorts.current_members(conn)


def test_cohort_role_reads_exactly_the_members(world):  # REQ: REG-9, GOV-1
    ledger, t = world
    events, members = _cohort_read(ledger)
    assert members == sorted([t["a"], t["b"]])
    assert set(events) == {t["a"], t["b"]}
    assert all(len(v) == 3 for v in events.values())
    with ledger.connect(role="cohort", cohort=COHORT) as conn:
        # even asked by name, the non-member's rows are not there
        row = conn.execute("SELECT count(*) AS n FROM learning_events WHERE tenant_id = %s", (t["c"],)).fetchone()
        assert row["n"] == 0
        # and nothing of the tenant-owned tables the role was not granted
        with pytest.raises(Exception) as excinfo:
            conn.execute("SELECT * FROM model_versions").fetchall()
        assert "permission denied" in str(excinfo.value)


def test_cohort_role_without_a_cohort_reads_nothing(world):  # REQ: GOV-1
    ledger, _t = world
    with ledger.connect(role="cohort") as conn:
        assert conn.execute("SELECT count(*) AS n FROM learning_events").fetchone()["n"] == 0
        assert cohorts.current_members(conn) == []


def test_another_cohort_does_not_see_these_members(world):  # REQ: REG-9
    ledger, _t = world
    with ledger.connect(role="cohort", cohort="other") as conn:
        assert conn.execute("SELECT count(*) AS n FROM learning_events").fetchone()["n"] == 0


def test_a_member_that_leaves_is_never_read_again(world):  # REQ: REG-9
    ledger, t = world
    actions.cohort_leave(ledger, tenant=t["b"], actor="manager-b", reason="leaving the pool")
    events, members = _cohort_read(ledger)
    assert members == [t["a"]] and set(events) == {t["a"]}
    with ledger.connect(t["b"]) as conn:
        assert cohorts.active_membership(conn, t["b"]) is None
        logged = [r["action"] for r in audit_rows(conn, t["b"])]
    assert logged[-2:] == ["governance.cohort-join", "governance.cohort-leave"]


def test_evidence_pools_over_current_members_only(world):  # REQ: RET-10, REG-9
    ledger, t = world
    for name in ("a", "b", "c"):
        with ledger.connect(t[name]) as conn:
            cohorts.record_evidence(conn, tenant=t[name], season=SEASON, cohort=COHORT if name != "c" else None,
                                    candidate_ref="yield-cohort-villages/2", champion_ref="yield-cohort-villages/1",
                                    field_ids=["f1", "f2"], differences=[1.0, 2.0], run_id="r")
    with ledger.connect(role="cohort", cohort=COHORT) as conn:
        rows = cohorts.evidence(conn, "yield-cohort-villages/2", "yield-cohort-villages/1")
    assert sorted(r["tenant_id"] for r in rows) == sorted([t["a"], t["b"]])
    with ledger.connect(t["a"]) as conn:  # a tenant sees only its own evidence
        assert [r["tenant_id"] for r in cohorts.evidence(conn, "yield-cohort-villages/2",
                                                          "yield-cohort-villages/1")] == [t["a"]]


def test_evidence_of_a_lineage_counts_each_tenant_season_once(world):  # REQ: RET-10
    """A refit carries its recipe's evidence on: earlier refits' rows count, and where two refits were
    judged on the same tenant-season only the newest one's row does (no field counted twice)."""
    ledger, t = world
    ensure_season(ledger, "s02", 2)
    lineage = ["yield-lineage/1", "yield-lineage/2"]
    with ledger.connect(t["a"]) as conn:
        for season, ref, d in ((SEASON, lineage[0], [1.0, 1.0]), ("s02", lineage[0], [5.0, 5.0]),
                               ("s02", lineage[1], [3.0, 3.0])):
            cohorts.record_evidence(conn, tenant=t["a"], season=season, cohort=None, candidate_ref=ref,
                                    champion_ref="yield-champ/1", field_ids=["f1", "f2"], differences=d,
                                    run_id="r")
        rows = cohorts.evidence(conn, lineage, "yield-champ/1")
        by_season = cohorts.evidence_tenants_by_season(conn, lineage)
        assert [(r["season_id"], r["candidate_ref"], r["differences"]) for r in rows] == [
            (SEASON, lineage[0], [1.0, 1.0]), ("s02", lineage[1], [3.0, 3.0])]
        assert by_season == {SEASON: {t["a"]}, "s02": {t["a"]}}
        # a single ref still reads only its own rows
        assert [r["season_id"] for r in cohorts.evidence(conn, lineage[0], "yield-champ/1")] == [SEASON, "s02"]


def test_only_a_manager_decides_membership(world):  # REQ: REG-9, GOV-4
    ledger, t = world
    with pytest.raises(actions.GovernanceError):
        actions.cohort_join(ledger, tenant=t["c"], cohort=COHORT, actor="x", reason="r", role="app")
    with pytest.raises(Exception) as excinfo, ledger.connect(t["c"]) as conn:
        cohorts.join(conn, tenant=t["c"], cohort=COHORT, actor="the app itself")
    assert_sqlstate(excinfo, "42501")  # the app role has no write privilege on memberships at all


def test_a_tenant_is_in_one_cohort_at_a_time(world):  # REQ: REG-9
    ledger, t = world
    with pytest.raises(actions.GovernanceError, match="already in cohort"):
        actions.cohort_join(ledger, tenant=t["a"], cohort="second", actor="m", reason="r")
