"""`rai-assets models list`: what a manager reads before approving. REQ: GOV-4, REG-3, REG-5."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from rai_assets.adapters.ledger.tenants import register_season, register_tenant
from rai_assets.cli import main as cli
from rai_assets.domain.signing import KeyPair
from rai_assets.governance.listing import list_models
from rai_assets_tests.governance.builders import passed_verified_audit, setup_tenant, validated_model


@pytest.fixture
def tenant(ledger, suffix):
    name = f"list-{suffix}"
    setup_tenant(ledger, name)
    return name


def test_models_list_shows_versions_states_mae_and_bias_verdicts(ledger, mlflow_registry, tenant, monkeypatch):
    audited = validated_model(ledger, mlflow_registry, tenant, "s02")
    passed_verified_audit(ledger, tenant, audited, passed=False)
    unaudited = validated_model(ledger, mlflow_registry, tenant, "s03")
    rows = list_models(ledger, tenant)
    assert [(r.version, r.state, r.kind, r.season) for r in rows] == [
        (audited.mlflow_version, "VALIDATED", "tenant", "s02"),
        (unaudited.mlflow_version, "VALIDATED", "tenant", "s03")]
    assert [r.bias_verdict for r in rows] == ["fail", "none"]

    monkeypatch.setenv("RAI_LEDGER_OWNER_URL", ledger.resolved_owner_url())
    monkeypatch.setenv("RAI_LEDGER_URL", ledger.resolved_url())
    out = CliRunner().invoke(cli, ["models", "list", "--tenant", tenant])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split()[:3] == ["version", "model", "state"]
    assert f"yield-{tenant}/{audited.mlflow_version}" in lines[2] and "fail" in lines[2]


@pytest.mark.parametrize(("tenant_arg", "message"), [("no-such-tenant", "is not registered"),
                                                      ("Bad Tenant!", "tenant")])
def test_models_list_errors_are_one_sentence(ledger, tenant_arg, message, monkeypatch):
    monkeypatch.setenv("RAI_LEDGER_OWNER_URL", ledger.resolved_owner_url())
    monkeypatch.setenv("RAI_LEDGER_URL", ledger.resolved_url())
    out = CliRunner().invoke(cli, ["models", "list", "--tenant", tenant_arg])
    assert out.exit_code != 0 and message in out.output
    assert "Traceback" not in out.output and len(out.output.strip().splitlines()) == 1


def test_models_list_names_the_tenants_spec_unit_gov4(ledger, mlflow_registry, suffix, monkeypatch):
    """GOV-4: a barley tenant's (spec barley-yield-v1) held-out MAE is listed in bu/ac, not kg/ha."""
    tenant = f"list-barley-{suffix}"
    with ledger.connect(tenant) as conn:
        register_tenant(conn, tenant, KeyPair.generate().public_key_b64, "barley-yield-v1")
        register_season(conn, tenant, "s01", 1)
        register_season(conn, tenant, "s02", 2)
    validated_model(ledger, mlflow_registry, tenant, "s02")
    assert {r.unit for r in list_models(ledger, tenant)} == {"bu/ac"}
    monkeypatch.setenv("RAI_LEDGER_OWNER_URL", ledger.resolved_owner_url())
    monkeypatch.setenv("RAI_LEDGER_URL", ledger.resolved_url())
    out = CliRunner().invoke(cli, ["models", "list", "--tenant", tenant])
    assert out.exit_code == 0, out.output
    assert "held-out MAE bu/ac" in out.output.splitlines()[0] and "kg/ha" not in out.output
