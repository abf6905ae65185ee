"""Retention (REG-7): the pure plan and its application on the real ledger and MLflow registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rai_assets.adapters.ledger import models as model_store
from rai_assets.domain.lifecycle import ModelState
from rai_assets.domain.retention import VersionInfo, plan_retention
from rai_assets.governance.retention import apply_retention
from rai_assets_tests.governance.builders import setup_tenant, validated_model

NOW = datetime(2026, 11, 21, tzinfo=UTC)


def _v(i, state, days_old, champion=False):
    return VersionInfo(i, i, state, NOW - timedelta(days=days_old), champion, False)


def test_plan_keeps_last_five_and_every_champion_and_collects_old_drafts():
    versions = [_v(i, ModelState.VALIDATED, 30 - i) for i in range(1, 9)]  # 8 candidates, 8 is newest
    versions[0] = _v(1, ModelState.DEPRECATED, 29, champion=True)  # an old champion: kept
    versions += [_v(9, ModelState.FAILED, 8), _v(10, ModelState.DRAFT, 1), _v(11, ModelState.CHAMPION, 40)]
    plan = {d.model_id: d.reason for d in plan_retention(versions, NOW)}
    # newest five: 10, 9, 8, 7, 6 — but 9 (FAILED, 8 days) goes anyway; 10 (DRAFT, 1 day) stays
    assert set(plan) == {2, 3, 4, 5, 9}
    assert "FAILED for more than 7 days" in plan[9]
    assert "beyond the last 5" in plan[2]


def test_apply_retention_dry_run_then_delete(ledger, mlflow_registry, suffix):
    tenant = f"ret-{suffix}"
    setup_tenant(ledger, tenant, seasons=3)
    models = [validated_model(ledger, mlflow_registry, tenant, "s02", tag=str(i)) for i in range(7)]
    dry = apply_retention(ledger, mlflow_registry, tenant, dry_run=True)
    assert [d.model_id for d in dry] == [models[1].model_id, models[0].model_id]
    assert len(mlflow_registry.client().search_model_versions(f"name='yield-{tenant}'")) == 7
    done = apply_retention(ledger, mlflow_registry, tenant, dry_run=False)
    assert [d.model_id for d in done] == [d.model_id for d in dry]
    remaining = {int(v.version) for v in mlflow_registry.client().search_model_versions(f"name='yield-{tenant}'")}
    assert remaining == {m.mlflow_version for m in models[2:]}
    with ledger.connect(tenant, role="admin") as conn:
        deleted = conn.execute("SELECT count(*) AS n FROM audit_log WHERE tenant_id = %s AND action = %s",
                               (tenant, "retention.delete")).fetchone()["n"]
        assert deleted == 2
        assert model_store.get_model(conn, models[0].model_id).state is ModelState.VALIDATED  # row kept
    assert apply_retention(ledger, mlflow_registry, tenant, dry_run=True) == []
