"""Tenant isolation under attack, as the application role (T-D1-06, RLS penetration test).

Two tenants, A and B, each have rows in every tenant-owned table (written by the roles that write
them in production). Then ``rai_app`` — the role the assets use, which is not the owner, not a
superuser and has no BYPASSRLS — tries to see or touch the other tenant's rows: without a tenant,
with the wrong tenant, with SQL in the tenant id, by changing role or session authorisation, by
turning row security off, through its own views and SECURITY DEFINER functions, through COPY,
and by writing rows into (or moving rows to) the other tenant. None of it leaks or lands.

REQ: GOV-1, GOV-4
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from rai_assets.adapters.ledger.resource import Conn, LedgerResource
from rai_assets_tests.ledger.ledger_builders import (
    SEASON,
    TENANT_TABLES,
    assert_sqlstate,
    drop_ledger_database,
    insert_learning_event,
    new_ledger_database,
    populate_tenant,
)

A, B = "rls-a", "rls-b"
ROLES = ("rai_app", "rai_agronomist", "rai_manager", "rai_admin")


@pytest.fixture(scope="module")
def world(pg_server_url: str) -> Iterator[tuple[LedgerResource, dict[str, dict]]]:
    """One database: tenants A and B with rows in all 14 tenant-owned tables."""
    ledger = new_ledger_database(pg_server_url)
    keys = {A: populate_tenant(ledger, A), B: populate_tenant(ledger, B)}
    yield ledger, keys
    drop_ledger_database(pg_server_url, ledger)


def _owner_counts(ledger: LedgerResource) -> dict[str, dict[str, int]]:
    """table → tenant → rows, seen by the owner (superuser: no row security)."""
    counts: dict[str, dict[str, int]] = {}
    with ledger.connect_owner() as conn:
        for table in TENANT_TABLES:
            rows = conn.execute(f"SELECT tenant_id, count(*) AS n FROM {table} GROUP BY tenant_id").fetchall()
            counts[table] = {r["tenant_id"]: r["n"] for r in rows}
    return counts


def _visible(conn: Conn, table: str) -> dict[str, int]:
    rows = conn.execute(f"SELECT tenant_id, count(*) AS n FROM {table} GROUP BY tenant_id").fetchall()
    return {r["tenant_id"]: r["n"] for r in rows}


def test_both_tenants_have_rows_everywhere(world):
    """Precondition (else every 'sees nothing' below would pass vacuously)."""
    ledger, _ = world
    counts = _owner_counts(ledger)
    for table in TENANT_TABLES:
        assert counts[table].get(A, 0) > 0 and counts[table].get(B, 0) > 0, (table, counts[table])


def test_no_tenant_set_sees_nothing(world):
    """GOV-1 (a): without rai.tenant_id every tenant-owned table is empty to the app — never everything."""
    ledger, _ = world
    with ledger.connect(None) as conn:
        assert conn.execute("SELECT rai_current_tenant() AS t").fetchone() == {"t": None}
        for table in TENANT_TABLES:
            assert _visible(conn, table) == {}, table


def test_tenant_a_sees_only_its_own_rows(world):
    """GOV-1 (b): in A's context each table shows exactly A's rows, as many as the owner counts for A."""
    ledger, _ = world
    counts = _owner_counts(ledger)
    with ledger.connect(A) as conn:
        for table in TENANT_TABLES:
            assert _visible(conn, table) == {A: counts[table][A]}, table


def test_cross_tenant_select_by_key_is_empty(world):
    """T-D1-06 (GOV-1 b): naming B's rows by their keys from A's context returns nothing."""
    ledger, keys = world
    b = keys[B]
    with ledger.connect(A) as conn:
        lookups = [
            ("SELECT * FROM tenants WHERE tenant_id = %s", (B,)),
            ("SELECT * FROM learning_events WHERE tenant_id = %s AND season_id = %s AND field_id = %s",
             (B, SEASON, b["fields"][0])),
            ("SELECT * FROM dataset_snapshots WHERE merkle_root = %s", (b["root"],)),
            ("SELECT * FROM model_versions WHERE model_id = %s", (b["model_id"],)),
            ("SELECT * FROM audit_log WHERE model_id = %s", (b["model_id"],)),
            ("SELECT * FROM bias_audits WHERE model_id = %s", (b["model_id"],)),
            ("SELECT * FROM yield_forecasts WHERE model_id = %s", (b["model_id"],)),
            ("SELECT * FROM dead_letters WHERE tenant_id = %s", (B,)),
            ("SELECT * FROM season_profiles WHERE tenant_id = %s", (B,)),
        ]
        for sql, params in lookups:
            assert conn.execute(sql, params).fetchall() == [], sql
        # nor through a join from A's own rows into B's
        joined = conn.execute(
            "SELECT m.model_id FROM model_versions m JOIN bias_audits b ON b.model_id = m.model_id"
            " WHERE b.model_id = %s", (b["model_id"],)).fetchall()
        assert joined == []


@pytest.mark.parametrize("evil", ["a' OR '1'='1", "a'; SET rai.tenant_id = 'rls-b", f"{A}' OR tenant_id = '{B}",
                                  f"{B}'--", "%", ".*"])
def test_sql_in_the_tenant_id_is_just_a_string(world, evil: str):
    """GOV-1 (c): the tenant id is bound as a value: SQL in it matches no tenant, and it stays the setting."""
    ledger, _ = world
    with ledger.connect(evil) as conn:
        assert conn.execute("SELECT current_setting('rai.tenant_id') AS t").fetchone() == {"t": evil}
        for table in TENANT_TABLES:
            assert _visible(conn, table) == {}, table


def test_reset_role_keeps_the_login_role(world):
    """GOV-1 (d): rai_app logs in as itself, so RESET ROLE leaves it rai_app with the same view."""
    ledger, _ = world
    with ledger.connect(A) as conn:
        conn.execute("RESET ROLE")
        conn.execute("SET ROLE NONE")
        row = conn.execute("SELECT current_user AS c, session_user AS s").fetchone()
        assert row == {"c": "rai_app", "s": "rai_app"}
        assert _visible(conn, "learning_events") == {A: 2}


@pytest.mark.parametrize(
    "statement",
    ["SET ROLE postgres", "SET ROLE rai_admin", "SET ROLE rai_manager", "SET SESSION AUTHORIZATION postgres",
     "SET SESSION AUTHORIZATION rai_admin", "SET session_replication_role = replica",
     "ALTER TABLE learning_events DISABLE ROW LEVEL SECURITY",
     "ALTER TABLE learning_events NO FORCE ROW LEVEL SECURITY",
     "ALTER TABLE audit_log DISABLE TRIGGER ALL", "DROP POLICY tenant_isolation ON learning_events",
     "ALTER ROLE rai_app BYPASSRLS", "GRANT rai_admin TO rai_app", "CREATE SCHEMA leak",
     "CREATE VIEW public.leak AS SELECT * FROM learning_events",
     "CREATE FUNCTION public.leak() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT 1::bigint'"],
)
def test_escalation_attempts_are_refused(world, statement: str):
    """GOV-1 (d, e): the app cannot become another role, disable row security or triggers, or create
    objects in the schema (42501 for each)."""
    ledger, _ = world
    with pytest.raises(psycopg.Error) as excinfo, ledger.connect(None) as conn:
        conn.execute(statement)
    assert_sqlstate(excinfo, "42501")
    with ledger.connect(None) as conn:
        row = conn.execute("SELECT current_user AS c, has_schema_privilege('public', 'CREATE') AS can_create"
                           ).fetchone()
    assert row == {"c": "rai_app", "can_create": False}


def test_row_security_off_is_an_error_not_a_bypass(world):
    """GOV-1 (d): SET row_security = off makes a query under a policy fail for the app, not see everything."""
    ledger, _ = world
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as excinfo, ledger.connect(None) as conn:
        conn.execute("SET row_security = off")
        conn.execute("SELECT count(*) FROM learning_events")
    assert "row-level security" in str(excinfo.value)


def test_own_temporary_view_and_security_definer_function_leak_nothing(world):
    """GOV-1 (e): the app may create temporary objects (not schema objects, see above); a temp view
    and a SECURITY DEFINER temp function run as rai_app, so row security still applies."""
    ledger, _ = world
    with ledger.connect(None) as conn:
        conn.execute("CREATE TEMP VIEW leak_view AS SELECT * FROM learning_events")
        conn.execute(
            "CREATE FUNCTION pg_temp.leak_fn() RETURNS TABLE (tenant_id text, n bigint) LANGUAGE sql"
            " SECURITY DEFINER AS 'SELECT tenant_id, count(*) FROM learning_events GROUP BY tenant_id'")
        assert conn.execute("SELECT count(*) AS n FROM leak_view").fetchone() == {"n": 0}
        assert conn.execute("SELECT * FROM pg_temp.leak_fn()").fetchall() == []
        owner = conn.execute("SELECT pg_get_userbyid(proowner) AS o FROM pg_proc WHERE proname = 'leak_fn'"
                             ).fetchone()
        assert owner == {"o": "rai_app"}
        conn.execute("SELECT set_config('rai.tenant_id', %s, true)", (A,))
        assert conn.execute("SELECT DISTINCT tenant_id FROM leak_view").fetchall() == [{"tenant_id": A}]
        assert conn.execute("SELECT * FROM pg_temp.leak_fn()").fetchall() == [{"tenant_id": A, "n": 2}]


def _copy_lines(conn: Conn, statement: str) -> list[str]:
    with conn.cursor().copy(statement) as copy:
        return [bytes(chunk).decode() for chunk in copy]


@pytest.mark.parametrize("statement", ["COPY (SELECT * FROM learning_events) TO STDOUT",
                                       "COPY learning_events TO STDOUT",
                                       "COPY audit_log (tenant_id, seq, reason) TO STDOUT"])
def test_copy_out_obeys_row_security(world, statement: str):
    """GOV-1 (f): COPY … TO returns the tenant's rows only, and nothing without a tenant."""
    ledger, _ = world
    with ledger.connect(None) as conn:
        assert _copy_lines(conn, statement) == []
    with ledger.connect(A) as conn:
        lines = "".join(_copy_lines(conn, statement)).splitlines()
    assert lines and all(line.split("\t", 1)[0] == A for line in lines)
    assert not any(B in line for line in lines)


def test_copy_in_is_refused_under_row_security(world):
    """GOV-1 (f): COPY … FROM cannot write into a table under row security at all."""
    ledger, _ = world
    with pytest.raises(psycopg.errors.FeatureNotSupported), ledger.connect(A) as conn, \
            conn.cursor().copy("COPY learning_events (tenant_id) FROM STDIN") as copy:
        copy.write_row((B,))


def test_insert_for_another_tenant_is_refused(world):
    """GOV-1 (g): WITH CHECK refuses a row for B written in A's context (and in no context)."""
    ledger, _ = world
    for context in (A, None):
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as excinfo, ledger.connect(context) as conn:
            insert_learning_event(conn, B, f"planted-{context or 'none'}")
        assert "row-level security" in str(excinfo.value)
    with ledger.connect_owner() as conn:
        planted = conn.execute("SELECT count(*) AS n FROM learning_events WHERE field_id LIKE 'planted-%'").fetchone()
    assert planted == {"n": 0}


def test_update_moving_a_row_to_another_tenant_is_refused(world):
    """GOV-1 (g): moving A's row to B fails the policy's WITH CHECK (season_profiles is updatable by
    the app; on model_versions the tenant column is not even granted)."""
    ledger, _ = world
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as excinfo, ledger.connect(A) as conn:
        cur = conn.execute("UPDATE season_profiles SET tenant_id = %s WHERE tenant_id = %s", (B, A))
        pytest.fail(f"moved {cur.rowcount} rows")
    assert "row-level security" in str(excinfo.value)
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as excinfo, ledger.connect(A) as conn:
        conn.execute("UPDATE model_versions SET tenant_id = %s WHERE tenant_id = %s", (B, A))
    assert "permission denied" in str(excinfo.value)
    counts = _owner_counts(ledger)
    assert counts["season_profiles"] == {A: 1, B: 1}


def test_writes_aimed_at_another_tenant_touch_nothing(world):
    """GOV-1 (g): UPDATE and DELETE of B's rows from A's context match no rows."""
    ledger, keys = world
    before = _owner_counts(ledger)
    with ledger.connect(A) as conn:
        assert conn.execute("UPDATE season_profiles SET n_events = 999 WHERE tenant_id = %s", (B,)).rowcount == 0
        assert conn.execute("DELETE FROM yield_forecasts WHERE tenant_id = %s", (B,)).rowcount == 0
        assert conn.execute("UPDATE tenants SET display_name = 'pwned' WHERE tenant_id = %s", (B,)).rowcount == 0
        assert conn.execute("UPDATE model_versions SET failure_reason = 'pwned' WHERE model_id = %s",
                            (keys[B]["model_id"],)).rowcount == 0
    assert _owner_counts(ledger) == before
    with ledger.connect_owner() as conn:
        row = conn.execute("SELECT display_name FROM tenants WHERE tenant_id = %s", (B,)).fetchone()
    assert row == {"display_name": ""}


def test_roles_are_neither_superuser_nor_bypassrls_nor_owners(world):
    """GOV-1 (h) / GOV-4: the four product roles have no way around row security."""
    ledger, _ = world
    with ledger.connect_owner() as conn:
        roles = conn.execute(
            "SELECT rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication FROM pg_roles"
            " WHERE rolname = ANY(%s) ORDER BY rolname", (list(ROLES),)).fetchall()
        owners = conn.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'").fetchall()
        memberships = conn.execute(
            "SELECT r.rolname AS role, m.rolname AS member FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid"
            " JOIN pg_roles m ON m.oid = a.member WHERE m.rolname = ANY(%s)", (list(ROLES),)).fetchall()
    assert [r["rolname"] for r in roles] == sorted(ROLES)
    for r in roles:
        assert not any(r[k] for k in ("rolsuper", "rolbypassrls", "rolcreaterole", "rolcreatedb", "rolreplication")), r
    assert {o["tableowner"] for o in owners}.isdisjoint(ROLES)
    assert memberships == []  # rai_app is a member of nothing: no inherited privileges


def test_every_tenant_table_has_forced_row_security(world):
    """GOV-1 (h): every public table with a tenant_id column has RLS enabled *and forced* with the
    tenant policy — a table added later without it fails here."""
    ledger, _ = world
    with ledger.connect_owner() as conn:
        rows = conn.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
            " (SELECT array_agg(p.qual) FROM pg_policies p WHERE p.tablename = c.relname"
            "   AND 'public' = ANY(p.roles)) AS quals,"
            " (SELECT array_agg(DISTINCT p.cmd || ' TO ' || array_to_string(p.roles, ',')) FROM pg_policies p"
            "   WHERE p.tablename = c.relname AND NOT 'public' = ANY(p.roles)) AS others"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND EXISTS ("
            "   SELECT 1 FROM pg_attribute a"
            "    WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)"
            " ORDER BY c.relname").fetchall()
    # the cohort tables (REG-9, RET-10) are tenant-owned too; their cross-member reads are in test_cohorts.py;
    # each tenant's season calendar (issue 8 item 3) in test_season_calendar.py
    assert {r["relname"] for r in rows} == {*TENANT_TABLES, "cohort_memberships", "promotion_evidence",
                                            "bootstrap_overrides", "season_calendar"}
    for r in rows:
        assert r["relrowsecurity"] and r["relforcerowsecurity"], r["relname"]
        assert r["quals"] == ["(tenant_id = rai_current_tenant())"], r
        # any other policy only lets the cohort role read (REG-9)
        assert r["others"] in (None, ["SELECT TO rai_cohort"]), r


def test_agronomist_reads_own_forecasts_but_not_learning_events(world):
    """GOV-4: rai_agronomist sees its tenant's yield forecasts (not B's), but no learning events and
    no tenant public keys (42501)."""
    ledger, _ = world
    with ledger.connect(A, role="agronomist") as conn:
        assert _visible(conn, "yield_forecasts") == {A: 1}
        assert conn.execute("SELECT tenant_id, display_name FROM tenants").fetchall() == [
            {"tenant_id": A, "display_name": ""}]
    with ledger.connect(None, role="agronomist") as conn:
        assert _visible(conn, "yield_forecasts") == {}
    for sql in ("SELECT * FROM learning_events", "SELECT public_key FROM tenants", "SELECT * FROM model_versions",
                "SELECT * FROM audit_log"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), ledger.connect(A, role="agronomist") as conn:
            conn.execute(sql)


@pytest.mark.parametrize("role", ["manager", "admin"])
def test_governance_roles_are_tenant_scoped_too(world, role: str):
    """GOV-1 / GOV-4: managers and admins see one tenant's models at a time and no learning events."""
    ledger, keys = world
    with ledger.connect(A, role=role) as conn:
        assert _visible(conn, "model_versions") == {A: 1}
        assert conn.execute("SELECT * FROM model_versions WHERE model_id = %s", (keys[B]["model_id"],)).fetchall() == []
    with ledger.connect(None, role=role) as conn:
        assert _visible(conn, "audit_log") == {}
    with pytest.raises(psycopg.errors.InsufficientPrivilege), ledger.connect(A, role=role) as conn:
        conn.execute("SELECT * FROM learning_events")
