"""Governance actions through the real ledger roles and MLflow registry. REQ: GOV-3, GOV-4, REG-3, REG-5."""

from __future__ import annotations

import psycopg
import pytest
from click.testing import CliRunner

from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.ledger.audit import verify_chain
from rai_assets.adapters.ledger.errors import GuardRefused
from rai_assets.cli import main as cli
from rai_assets.domain.lifecycle import ModelState
from rai_assets.governance import actions
from rai_assets_tests.governance.builders import passed_verified_audit, setup_tenant, validated_model


@pytest.fixture
def tenant(ledger, suffix):
    name = f"gov-{suffix}"
    setup_tenant(ledger, name)
    return name


def _state(ledger, tenant, model_id):
    with ledger.connect(tenant) as conn:
        return model_store.get_model(conn, model_id).state


def test_approve_to_shadow_needs_a_passed_verified_bias_audit(ledger, mlflow_registry, tenant):
    """REG-5: the ledger refuses SHADOW without a passed bias audit whose signature verified."""
    model = validated_model(ledger, mlflow_registry, tenant, "s02")
    kwargs = {"tenant": tenant, "version": model.mlflow_version, "actor": "ana", "reason": "looks good"}
    with pytest.raises(GuardRefused, match="REG-5"):
        actions.approve(ledger, **kwargs)
    passed_verified_audit(ledger, tenant, model, verified=False)
    with pytest.raises(GuardRefused):
        actions.approve(ledger, **kwargs)
    passed_verified_audit(ledger, tenant, model, verified=True)
    result = actions.approve(ledger, **kwargs)
    assert (result.before, result.after) == ("VALIDATED", "SHADOW")
    with ledger.connect(tenant, role="admin") as conn:
        entry = conn.execute("SELECT actor, db_role, reason FROM audit_log WHERE seq = %s AND tenant_id = %s",
                             (result.audit_seq, tenant)).fetchone()
        assert entry == {"actor": "ana", "db_role": "rai_manager", "reason": "looks good"}
        assert verify_chain(conn, tenant).ok


def test_roles_are_checked_in_python_and_in_the_database(ledger, mlflow_registry, tenant):
    """GOV-4: a manager may not roll back or reset baselines; the database refuses it too."""
    model = validated_model(ledger, mlflow_registry, tenant, "s02")
    with pytest.raises(actions.GovernanceError, match="needs role admin"):
        actions.rollback(ledger, mlflow_registry, tenant=tenant, version=model.mlflow_version, actor="m",
                         reason="r", role="manager")
    with pytest.raises(psycopg.errors.InsufficientPrivilege), ledger.connect(tenant, role="manager") as conn:
        conn.execute("INSERT INTO drift_baselines (tenant_id, model_id, actor, reason) VALUES (%s, %s, 'm', 'r')",
                     (tenant, model.model_id))
    with pytest.raises(psycopg.errors.InsufficientPrivilege), ledger.connect(tenant, role="agronomist") as conn:
        conn.execute("SELECT * FROM model_versions")


def test_new_champion_deprecates_the_old_one_and_rollback_restores_it(ledger, mlflow_registry, tenant):
    """One champion per tenant; RET-8-style rollback; MLflow alias follows the ledger."""
    first = validated_model(ledger, mlflow_registry, tenant, "s02")
    second = validated_model(ledger, mlflow_registry, tenant, "s03")
    passed_verified_audit(ledger, tenant, first)  # the bootstrap needs a passed bias audit too (REG-5)
    passed_verified_audit(ledger, tenant, second)
    with ledger.connect(tenant) as conn:
        model_store.promote_bootstrap_champion(conn, model_store.get_model(conn, first.model_id), reason="first")
    with ledger.connect(tenant) as conn:
        m = model_store.transition(conn, model_store.get_model(conn, second.model_id), ModelState.SHADOW, reason="t")
        m = model_store.transition(conn, m, ModelState.CANARY, reason="t")
        model_store.transition(conn, m, ModelState.CHAMPION, reason="won the canary")
    assert _state(ledger, tenant, first.model_id) is ModelState.DEPRECATED
    assert _state(ledger, tenant, second.model_id) is ModelState.CHAMPION

    with pytest.raises(actions.GovernanceError, match="never champion"):
        third = validated_model(ledger, mlflow_registry, tenant, "s03", tag="x")
        with ledger.connect(tenant) as conn:
            model_store.transition(conn, third, ModelState.DEPRECATED, reason="rejected")
        actions.rollback(ledger, mlflow_registry, tenant=tenant, version=third.mlflow_version, actor="boss",
                         reason="r")
    result = actions.rollback(ledger, mlflow_registry, tenant=tenant, version=first.mlflow_version, actor="boss",
                              reason="canary winner degraded in the field")
    assert (result.before, result.after) == ("DEPRECATED", "CHAMPION")
    assert _state(ledger, tenant, first.model_id) is ModelState.CHAMPION
    assert _state(ledger, tenant, second.model_id) is ModelState.DEPRECATED
    assert mlflow_registry.champion_version(tenant) == first.mlflow_version
    with ledger.connect(tenant, role="admin") as conn:
        actions_logged = [r["action"] for r in conn.execute(
            "SELECT action FROM audit_log WHERE tenant_id = %s ORDER BY seq", (tenant,)).fetchall()]
        assert "governance.rollback" in actions_logged
        assert verify_chain(conn, tenant).ok


def test_reject_refuses_a_champion_and_reconcile_repairs_mlflow(ledger, mlflow_registry, tenant):
    model = validated_model(ledger, mlflow_registry, tenant, "s02")
    passed_verified_audit(ledger, tenant, model)
    with ledger.connect(tenant) as conn:
        model_store.promote_bootstrap_champion(conn, model, reason="first")
    with pytest.raises(actions.GovernanceError, match="is CHAMPION"):
        actions.reject(ledger, tenant=tenant, version=model.mlflow_version, actor="m", reason="r")
    other = validated_model(ledger, mlflow_registry, tenant, "s03")
    mlflow_registry.set_champion_alias(tenant, other.mlflow_version)  # MLflow drifted from the ledger
    message = actions.reconcile_champion_alias(ledger, mlflow_registry, tenant)
    assert "moved" in message and mlflow_registry.champion_version(tenant) == model.mlflow_version
    result = actions.reject(ledger, tenant=tenant, version=other.mlflow_version, actor="m", reason="worse")
    assert result.after == "DEPRECATED"


def test_baseline_reset_changes_the_drift_reference(ledger, mlflow_registry, tenant):
    model = validated_model(ledger, mlflow_registry, tenant, "s02")
    with ledger.connect(tenant) as conn:
        assert model_store.drift_baseline(conn, tenant) is None
    actions.baseline_reset(ledger, tenant=tenant, version=model.mlflow_version, actor="boss", reason="new normal")
    with ledger.connect(tenant) as conn:
        assert model_store.drift_baseline(conn, tenant).model_id == model.model_id


def test_cli_audit_verify_and_governance_commands(ledger, mlflow_registry, tenant, monkeypatch):
    """`rai-assets audit verify` and `rai-assets governance …` against the same ledger."""
    model = validated_model(ledger, mlflow_registry, tenant, "s02")
    owner = ledger.resolved_owner_url()
    monkeypatch.setenv("RAI_LEDGER_OWNER_URL", owner)
    monkeypatch.setenv("RAI_LEDGER_URL", ledger.resolved_url())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_registry.resolved_tracking_uri())
    runner = CliRunner()
    out = runner.invoke(cli, ["governance", "reject", "--tenant", tenant, "--version", str(model.mlflow_version),
                              "--actor", "ana", "--reason", "not needed"])
    assert out.exit_code == 0, out.output
    assert "VALIDATED → DEPRECATED" in out.output
    out = runner.invoke(cli, ["governance", "rollback", "--tenant", tenant, "--version", str(model.mlflow_version),
                              "--actor", "ana", "--reason", "x", "--role", "manager"])
    assert out.exit_code != 0 and "needs role admin" in out.output
    out = runner.invoke(cli, ["audit", "verify", "--tenant", tenant])
    assert out.exit_code == 0 and "verifies" in out.output
