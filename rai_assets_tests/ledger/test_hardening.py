"""The ledger's functions against a session's temporary tables (issue 8, item 1).

Threat model: a hostile session logged in as ``rai_app``, ``rai_manager`` or ``rai_admin`` — the
roles that may move a model version through its lifecycle — creates TEMP tables named like the
ledger's own (``lifecycle_transitions``, ``bias_audits``, ``integrity_checks``, ``audit_log``).
A role's temporary schema is searched *first* for relations unless ``pg_temp`` is named in the
search_path, so a trigger that looks a table up by unqualified name would read the attacker's
copy: an illegal DRAFT → CHAMPION would commit, the REG-5 gate would pass without an audit, and
the lifecycle entry would land in a table nobody verifies.

Two independent defences are tested: no ledger role but ``rai_app`` (which stages ingestion COPYs
in a temp table) may create temporary objects, and — for rai_app, and for a server where a DBA
granted TEMP again — every function of the ledger's schema pins
``search_path = pg_catalog, public, pg_temp``; :func:`functions_without_pinned_path` enumerates
``pg_proc`` so that a new function without it fails CI.

REQ: GOV-1, GOV-3, GOV-4, REG-3, REG-5
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from rai_assets.adapters.ledger import audit
from rai_assets.adapters.ledger.resource import Conn, LedgerResource
from rai_assets_tests.ledger.ledger_builders import (
    S,
    assert_sqlstate,
    drop_ledger_database,
    new_draft,
    new_ledger_database,
    setup_tenant,
    walk,
)

PINNED = ["pg_catalog", "public", "pg_temp"]
LIFECYCLE_ROLES = ("app", "manager", "admin")
ALL_ROLES = ("app", "agronomist", "manager", "admin", "cohort")


def functions_without_pinned_path(conn: Conn, schema: str = "public") -> list[str]:
    """Functions of ``schema`` (not an extension's) whose ``search_path`` is not pinned to
    :data:`PINNED` — in particular any that leave ``pg_temp`` implicit (searched first).

    Returns ``"name(args): config"`` for each offender; empty when all are pinned.
    """
    rows = conn.execute(
        "SELECT p.oid::regprocedure::text AS fn, p.proconfig FROM pg_proc p"
        " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s"
        " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid"
        "                 AND d.deptype = 'e')",
        (schema,),
    ).fetchall()
    offenders = []
    for row in rows:
        paths = [c.split("=", 1)[1] for c in row["proconfig"] or [] if c.startswith("search_path=")]
        pinned = bool(paths) and [p.strip().strip('"') for p in paths[0].split(",")] == PINNED
        if not pinned:
            offenders.append(f"{row['fn']}: {row['proconfig']}")
    return offenders


def ledger_functions(conn: Conn) -> set[str]:
    """Names of the (non-extension) functions of the ledger's schema."""
    rows = conn.execute(
        "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'"
        " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid"
        "                 AND d.deptype = 'e')"
    ).fetchall()
    return {r["proname"] for r in rows}


@pytest.fixture(scope="module")
def world(pg_server_url: str) -> Iterator[LedgerResource]:
    """One migrated database in which rai_manager and rai_admin were granted TEMP again (as a careless
    DBA might; rai_app holds it), so that the pinned search_path is tested on its own."""
    ledger = new_ledger_database(pg_server_url)
    with ledger.connect_owner() as conn:
        db = conn.execute("SELECT current_database() AS d").fetchone()
        assert db is not None
        conn.execute(f'GRANT TEMPORARY ON DATABASE "{db["d"]}" TO rai_manager, rai_admin')
    yield ledger
    drop_ledger_database(pg_server_url, ledger)


def test_every_ledger_function_pins_its_search_path(ledger: LedgerResource):
    """A function of the ledger's schema without ``search_path = pg_catalog, public, pg_temp`` fails."""
    with ledger.connect_owner() as conn:
        names = ledger_functions(conn)
        # not vacuous: the trigger functions of 0002..0005 are all there
        assert {"rai_current_tenant", "rai_forbid_change", "tenants_guard", "model_versions_guard",
                "audit_log_chain", "model_versions_audit", "rai_current_cohort", "cohort_memberships_guard",
                "model_versions_lineage_guard", "model_versions_bootstrap_gate"} <= names, names
        assert functions_without_pinned_path(conn) == []


def test_the_check_catches_a_new_function_without_a_pinned_path(ledger: LedgerResource):
    """The enumeration flags a function with no search_path, and one with pg_temp left implicit."""
    with ledger.connect_owner() as conn:
        conn.execute("CREATE FUNCTION unpinned() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        conn.execute("CREATE FUNCTION half_pinned() RETURNS int LANGUAGE sql"
                     " SET search_path = pg_catalog, public AS 'SELECT 1'")
        offenders = functions_without_pinned_path(conn)
        conn.rollback()
    assert sorted(o.split(":")[0] for o in offenders) == ["half_pinned()", "unpinned()"]


@pytest.mark.parametrize("role", [r for r in ALL_ROLES if r != "app"])
def test_ledger_roles_cannot_create_temporary_tables(ledger: LedgerResource, role: str):
    """GOV-4: only rai_app (whose ingestion COPYs through a temp staging table) holds TEMP on the
    ledger's database; the other ledger roles do not."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as excinfo, ledger.connect("t", role=role) as conn:
        conn.execute("CREATE TEMP TABLE lifecycle_transitions (from_state text, to_state text)")
    assert_sqlstate(excinfo, "42501")


def _tenant(ledger: LedgerResource, role: str, attack: str) -> tuple[str, str]:
    tenant = f"tmp-{role}-{attack}"
    return tenant, setup_tenant(ledger, tenant)


@pytest.mark.parametrize("role", LIFECYCLE_ROLES)
def test_temp_lifecycle_transitions_cannot_allow_draft_to_champion(world: LedgerResource, role: str):
    """REG-3: a TEMP lifecycle_transitions that lists DRAFT → CHAMPION does not make it legal."""
    tenant, root = _tenant(world, role, "fsm")
    with world.connect(tenant) as conn:
        model = new_draft(conn, tenant, root)
    with pytest.raises(psycopg.Error) as excinfo, world.connect(tenant, role=role, actor="attacker") as conn:
        conn.execute("CREATE TEMP TABLE lifecycle_transitions (from_state text, to_state text)")
        conn.execute("INSERT INTO lifecycle_transitions VALUES ('DRAFT', 'CHAMPION')")
        conn.execute("UPDATE model_versions SET state = 'CHAMPION', state_version = 2 WHERE model_id = %s",
                     (model.model_id,))
    assert_sqlstate(excinfo, "RA001")
    with world.connect(tenant) as conn:
        row = conn.execute("SELECT state FROM model_versions WHERE model_id = %s", (model.model_id,)).fetchone()
    assert row == {"state": "DRAFT"}


@pytest.mark.parametrize("role", LIFECYCLE_ROLES)
@pytest.mark.parametrize("target", ["SHADOW", "CHAMPION"])
def test_temp_bias_audits_cannot_pass_the_bias_gate(world: LedgerResource, role: str, target: str):
    """REG-5: TEMP bias_audits / integrity_checks holding a 'passed, verified' audit do not open the
    gate to SHADOW, nor the bootstrap VALIDATED → CHAMPION."""
    tenant, root = _tenant(world, role, f"bias-{target.lower()}")
    with world.connect(tenant) as conn:
        model = walk(conn, new_draft(conn, tenant, root), (S.TRAINING, S.VALIDATED))
    with pytest.raises(psycopg.Error) as excinfo, world.connect(tenant, role=role, actor="attacker") as conn:
        conn.execute("CREATE TEMP TABLE bias_audits (tenant_id text, model_id bigint, body_sha256 text,"
                     " passed boolean)")
        conn.execute("CREATE TEMP TABLE integrity_checks (tenant_id text, artifact_kind text,"
                     " artifact_sha256 text, verified boolean)")
        conn.execute("INSERT INTO bias_audits VALUES (%s, %s, 'x', true)", (tenant, model.model_id))
        conn.execute("INSERT INTO integrity_checks VALUES (%s, 'bias_audit', 'x', true)", (tenant,))
        conn.execute("UPDATE model_versions SET state = %s, state_version = state_version + 1 WHERE model_id = %s",
                     (target, model.model_id))
    assert_sqlstate(excinfo, "RA003")


@pytest.mark.parametrize("role", LIFECYCLE_ROLES)
def test_temp_audit_log_cannot_swallow_the_lifecycle_entry(world: LedgerResource, role: str):
    """GOV-3: with a TEMP audit_log in the session, a transition is still logged in the ledger's
    chain (which verifies), and nothing lands in the attacker's table."""
    tenant, root = _tenant(world, role, "audit")
    with world.connect(tenant) as conn:
        model = new_draft(conn, tenant, root)
    with world.connect(tenant, role=role, actor="attacker") as conn:
        conn.execute("CREATE TEMP TABLE audit_log (LIKE public.audit_log)")
        conn.execute("UPDATE model_versions SET state = 'TRAINING', state_version = 2 WHERE model_id = %s",
                     (model.model_id,))
        swallowed = conn.execute("SELECT count(*) AS n FROM pg_temp.audit_log").fetchone()
    assert swallowed == {"n": 0}
    with world.connect(tenant, role="manager") as conn:
        entries = conn.execute("SELECT action, db_role, after FROM public.audit_log WHERE tenant_id = %s"
                               " AND model_id = %s ORDER BY seq", (tenant, model.model_id)).fetchall()
        chain = audit.verify_chain(conn, tenant)
    assert [e["action"] for e in entries] == ["lifecycle.create", "lifecycle.transition"]
    assert entries[-1]["after"]["state"] == "TRAINING" and entries[-1]["db_role"] == f"rai_{role}"
    assert chain.ok, chain.problems
