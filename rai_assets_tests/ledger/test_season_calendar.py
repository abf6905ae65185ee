"""Each tenant's season calendar (issue 8 item 3). REQ: GOV-1, GOV-3, GOV-4, ING-3

The calendar was one global table that any tenant session could write and that the landing sensor appended
to from an unverified landing key. Now every tenant has its own order (``season_calendar``, row-level
security), and the only writer is ``rai_register_season``: called by ingestion after a manifest verified
against the tenant's key, or by the governed, audited ``season register`` command.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from dagster import DagsterInstance, materialize

from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.ledger.tenants import (
    UnknownSeasonError,
    register_season,
    register_tenant,
    season_order,
    seasons_after,
    seasons_before,
)
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.assets.learning_events import learning_events
from rai_assets.assets.partitions import add_partitions, partition_key
from rai_assets.demo.ricefarms import tenant_key_pair, write_batch
from rai_assets.domain.canonical import canonical_json
from rai_assets.domain.signing import KeyPair
from rai_assets.governance.actions import GovernanceError, season_register

OLD_SEASONS = ["s01", "s02", "s03", "s04", "s05", "s06"]


def _tenant(ledger: LedgerResource, tenant: str, seasons: list[str], key: KeyPair | None = None) -> None:
    with ledger.connect(tenant) as conn:
        register_tenant(conn, tenant, (key or KeyPair.generate()).public_key_b64, "rice-yield-v1")
        for season in seasons:
            register_season(conn, tenant, season)


def test_a_new_tenants_seasons_are_its_own_order_gov_1(ledger: LedgerResource, suffix: str):
    """GOV-1: tenant B's 1931, 1932 do not land after tenant A's s06; A's order does not change; neither
    calendar names a season of the other."""
    a, b = f"cal-a-{suffix}", f"cal-b-{suffix}"
    _tenant(ledger, a, OLD_SEASONS)
    with ledger.connect(a) as conn:
        before = season_order(conn, a)
    _tenant(ledger, b, ["1931", "1932"])
    with ledger.connect(a) as conn:
        assert season_order(conn, a) == before == OLD_SEASONS
        assert seasons_after(conn, a, "s06") == [] and seasons_before(conn, a, "s01") == []
        assert season_order(conn, b) == []  # row-level security: A's session sees none of B's calendar
        with pytest.raises(UnknownSeasonError, match="1931"):
            seasons_before(conn, a, "1931")
    with ledger.connect(b) as conn:
        assert season_order(conn, b) == ["1931", "1932"]
        assert seasons_before(conn, b, "1932") == ["1931"] and seasons_after(conn, b, "1931") == ["1932"]
        assert seasons_before(conn, b, "1931") == [] and seasons_after(conn, b, "1932") == []
        # the governed placement: a season slotted between two, without moving either
        register_season(conn, b, "1931b", follows="1931")
        assert season_order(conn, b) == ["1931", "1931b", "1932"]
        with pytest.raises(ValueError, match="follows 1931"):
            register_season(conn, b, "1931b", follows="1932")


ROLES = ("app", "manager", "admin", "agronomist")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("write", ["insert", "update", "delete"])
@pytest.mark.parametrize("table", ["seasons", "season_calendar"])
def test_no_role_writes_the_calendar_directly_gov_4(ledger: LedgerResource, suffix: str, table: str, write: str,
                                                    role: str):
    """GOV-4 (pen test, every ledger login role): no INSERT, UPDATE or DELETE on the registry or the calendar;
    the only writer is rai_register_season."""
    tenant = f"cal-w-{suffix}-{role[:3]}-{write[:3]}"
    _tenant(ledger, tenant, ["s01"])
    sql = {
        ("seasons", "insert"): "INSERT INTO seasons (season_id, ordinal) VALUES ('sneaky', 999)",
        ("seasons", "update"): "UPDATE seasons SET ordinal = ordinal + 1000 WHERE season_id = 's01'",
        ("seasons", "delete"): "DELETE FROM seasons WHERE season_id = 's01'",
        ("season_calendar", "insert"): f"INSERT INTO season_calendar (tenant_id, season_id, ordinal) VALUES "
                                       f"('{tenant}', 's01', 0.5)",
        ("season_calendar", "update"): f"UPDATE season_calendar SET ordinal = -1 WHERE tenant_id = '{tenant}'",
        ("season_calendar", "delete"): f"DELETE FROM season_calendar WHERE tenant_id = '{tenant}'",
    }[(table, write)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege), ledger.connect(tenant, role=role) as conn:
        conn.execute(sql)
    with ledger.connect(tenant) as conn:
        assert season_order(conn, tenant) == ["s01"]


@pytest.mark.parametrize("role", ["app", "manager", "admin"])
def test_no_session_registers_another_tenants_season_gov_1(ledger: LedgerResource, suffix: str, role: str):
    """GOV-1 (pen test): the SECURITY DEFINER gate only writes the session's own tenant's calendar, whatever
    the role that may call it."""
    a, b = f"cal-x-{suffix}-{role}", f"cal-y-{suffix}-{role}"
    _tenant(ledger, a, ["s01"])
    _tenant(ledger, b, ["s01"])
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="may not register"), \
            ledger.connect(a, role=role) as conn:
        register_season(conn, b, "s99")
    with ledger.connect(b) as conn:
        assert season_order(conn, b) == ["s01"]


def _event(tenant: str, season: str, field: str) -> bytes:
    return canonical_json({
        "schema_version": "1.0.0", "tenant_id": tenant, "season_id": season, "field_id": field,
        "farm": {"size_ha": 1.5, "tenure": "owner", "variety": "high", "bimas": "no"},
        "inputs": {"seed_kg": 40.0, "urea_kg": 300.0, "phosphate_kg": 50.0, "pesticide_rp": 1000.0,
                   "hired_labor_h": 500.0, "family_labor_h": 200.0, "total_labor_h": 700.0, "wage_rp_per_h": 50.0,
                   "seed_price_rp_per_kg": 60.0, "urea_price_rp_per_kg": 75.0, "phosphate_price_rp_per_kg": 75.0},
        "harvest": {"gross_output_kg": 5000.0, "net_output_kg": 4300.0, "price_rp_per_kg": 60.0},
    })


def test_only_a_verified_upload_adds_its_season_ing_3(resources: dict, suffix: str, tmp_path: Path):
    """ING-3: a garbage manifest, an unsigned one and one signed by another key add no season; the
    tenant's correctly signed upload adds its season to the tenant's calendar only."""
    tenant = f"cal-up-{suffix}"
    ledger: LedgerResource = resources["ledger"]  # type: ignore[assignment]
    store: ObjectStoreResource = resources["object_store"]  # type: ignore[assignment]
    key = tenant_key_pair(tmp_path / "keys", tenant)
    _tenant(ledger, tenant, [], key)
    instance = DagsterInstance.ephemeral()
    bad = {"garbage": b"\x00not a manifest", "unsigned": canonical_json({"kind": "nothing"})}
    for season, manifest in bad.items():
        prefix = f"tenants/{tenant}/landing/{season}/b1"
        store.put_bytes(f"{prefix}.jsonl", _event(tenant, season, "f-1") + b"\n")
        store.put_bytes(f"{prefix}.manifest.json", manifest)
    write_batch(store, tenant, "forged", "b1", [_event(tenant, "forged", "f-1")],
                tenant_key_pair(tmp_path / "forger", tenant))
    write_batch(store, tenant, "good", "b1", [_event(tenant, "good", "f-1")], key)
    seasons = [*bad, "forged", "good"]
    add_partitions(instance, tenants=[tenant], seasons=seasons)
    for season in seasons:
        result = materialize([learning_events], partition_key=partition_key(tenant, season),
                             resources=resources, instance=instance)
        assert result.success
    with ledger.connect(tenant) as conn:
        assert season_order(conn, tenant) == ["good"]
        registry = {r["season_id"] for r in conn.execute("SELECT season_id FROM seasons").fetchall()}
    assert "good" in registry and not registry & {"garbage", "unsigned", "forged"}


def test_a_governed_season_register_is_audited_gov_3(ledger: LedgerResource, suffix: str):
    """GOV-3, GOV-4: the manager's register writes an audit entry; the app role may not use the command; a
    repeat changes nothing and is not audited again."""
    tenant = f"cal-gov-{suffix}"
    _tenant(ledger, tenant, ["1931", "1932"])
    with pytest.raises(GovernanceError, match="season-register needs role"):
        season_register(ledger, tenant=tenant, season="1933", actor="ops", reason="calendar", role="app")
    done = season_register(ledger, tenant=tenant, season="1931-dry", follows="1931", actor="ana",
                           reason="dry season between the wet ones", role="manager")
    assert (done.position, done.calendar) == (2, ("1931", "1931-dry", "1932")) and done.audit_seq is not None
    again = season_register(ledger, tenant=tenant, season="1931-dry", follows="1931", actor="ana",
                            reason="repeat", role="manager")
    assert again.audit_seq is None and again.calendar == done.calendar
    with pytest.raises(GovernanceError, match="not in tenant"):
        season_register(ledger, tenant=tenant, season="1940", follows="1939", actor="ana", reason="r")
    with ledger.connect(tenant, role="manager") as conn:
        rows = conn.execute("SELECT seq, action, actor, reason, after FROM audit_log WHERE tenant_id = %s"
                            " AND action = 'governance.season-register'", (tenant,)).fetchall()
    assert [(r["seq"], r["actor"], r["reason"]) for r in rows] == [(done.audit_seq, "ana",
                                                                    "dry season between the wet ones")]
    assert rows[0]["after"] == {"season": "1931-dry", "position": 2, "follows": "1931"}


def test_cli_season_register_is_governed_gov_3(ledger: LedgerResource, suffix: str, tmp_path: Path, monkeypatch):
    """GOV-3, GOV-4: `rai-assets season register --tenant T --season S --after S0` places the season in T's
    calendar (audited) and adds the Dagster partition; an unknown predecessor is one sentence, exit 1."""
    from click.testing import CliRunner

    from rai_assets.cli import main as cli

    tenant = f"cal-cli-{suffix}"
    _tenant(ledger, tenant, ["1931", "1932"])
    monkeypatch.setenv("RAI_LEDGER_OWNER_URL", ledger.resolved_owner_url() or "")
    monkeypatch.setenv("RAI_LEDGER_URL", ledger.resolved_url())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    common = ["--tenant", tenant, "--actor", "ana", "--reason", "dry season"]
    out = CliRunner().invoke(cli, ["season", "register", "--season", "1931-dry", "--after", "1931", *common])
    assert out.exit_code == 0, out.output
    assert "at position 2 of 3 (audit seq" in out.output
    out = CliRunner().invoke(cli, ["season", "register", "--season", "1950", "--after", "1949", *common])
    assert out.exit_code == 1 and "not in tenant" in out.output and "Traceback" not in out.output, out.output
    with ledger.connect(tenant) as conn:
        assert season_order(conn, tenant) == ["1931", "1931-dry", "1932"]
    assert "1931-dry" in DagsterInstance.get().get_dynamic_partitions("season")
