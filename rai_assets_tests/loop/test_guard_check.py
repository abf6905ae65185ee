"""Guards read from the real ledger: breaker after 3 failures and its audited reset, GPU quota,
cooldown — each refusal in the ledger and the metric. REQ: RET-4, RET-5, RET-6."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rai_assets.adapters import metrics
from rai_assets.adapters.ledger import artifacts, audit, loop
from rai_assets.assets.common import spec_by_id
from rai_assets.governance.actions import breaker_reset
from rai_assets.loop.guard_check import check_retraining
from rai_assets_tests.governance.builders import setup_tenant, validated_model

DRIFT = {"verdict": "drift", "assessment": None}


def _check(ledger, tenant, active=()):
    return check_retraining(ledger, tenant=tenant, season="s02", report_sha256="a" * 64, report_body=DRIFT,
                            spec=spec_by_id("rice-yield-v1"), now=datetime.now(UTC), active_retraining_runs=active)


def _by_guard(decisions):
    return {d.guard: d for d in decisions}


def test_breaker_opens_after_three_failures_and_an_admin_reset_closes_it(ledger, suffix):
    tenant = f"brk-{suffix}"
    setup_tenant(ledger, tenant)
    with ledger.connect(tenant) as conn:
        for i in range(3):
            loop.record_retraining_run(conn, tenant=tenant, run_id=f"r{i}", season="s02", trigger="drift",
                                       outcome="failed")
    before = metrics.retrain_refusals.labels(tenant=tenant, guard="circuit_breaker")._value.get()
    _, decisions = _check(ledger, tenant)
    assert not _by_guard(decisions)["circuit_breaker"].allowed
    assert metrics.retrain_refusals.labels(tenant=tenant, guard="circuit_breaker")._value.get() == before + 1
    seq = breaker_reset(ledger, tenant=tenant, actor="admin-ana", reason="upstream feed fixed")
    _, decisions = _check(ledger, tenant)
    assert _by_guard(decisions)["circuit_breaker"].allowed
    with ledger.connect(tenant, role="admin") as conn:
        row = conn.execute("SELECT action, actor FROM audit_log WHERE tenant_id = %s AND seq = %s",
                           (tenant, seq)).fetchone()
        assert row == {"action": "governance.breaker-reset", "actor": "admin-ana"}
        assert audit.verify_chain(conn, tenant).ok
        recorded = conn.execute("SELECT guard, allowed FROM guard_decisions WHERE tenant_id = %s", (tenant,)).fetchall()
    assert {"guard": "circuit_breaker", "allowed": False} in recorded


def test_quota_counts_gpu_hours_of_this_month_and_mutex_sees_active_runs(ledger, mlflow_registry, suffix):
    tenant = f"quota-{suffix}"
    setup_tenant(ledger, tenant)
    model = validated_model(ledger, mlflow_registry, tenant, "s02")
    now = datetime.now(UTC)
    start = max(now.replace(day=1, hour=0, minute=0, second=0, microsecond=0), now - timedelta(hours=60))
    with ledger.connect(tenant) as conn:
        artifacts.record_training_run(conn, tenant=tenant, model_id=model.model_id, run_id="gpu-run", device="cuda",
                                      gpu_count=2, started_at=start, finished_at=start + timedelta(hours=50.5),
                                      succeeded=True)
    overall, decisions = _check(ledger, tenant)
    quota = _by_guard(decisions)["quota"]
    assert not quota.allowed and "RET-6" in quota.reason  # 2 GPUs × 50.5 h = 101 GPU-hours > 100
    assert overall.allowed is False
    _, decisions = _check(ledger, tenant, active=["run-1"])
    assert not _by_guard(decisions)["mutex"].allowed
