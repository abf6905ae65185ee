"""The Launchpad's governance job: enums for action and role, and a tenant that must exist. REQ: GOV-3, GOV-4."""

from __future__ import annotations

from dagster import DagsterEventType
from dagster._config import ConfigTypeKind

from rai_assets.definitions import defs
from rai_assets.governance.jobs import governance_job
from rai_assets_tests.governance.builders import setup_tenant, validated_model


def _config_fields() -> dict:
    job = defs.resolve_job_def("governance_job")
    op = job.run_config_schema.config_type.fields["ops"].config_type.fields["governance_action"]
    return op.config_type.fields["config"].config_type.fields


def test_action_and_role_are_enums_in_the_launchpad():
    fields = _config_fields()
    assert fields["action"].config_type.kind is ConfigTypeKind.ENUM
    role = fields["role"].config_type  # optional with a default: Noneable around the enum
    assert (role.inner_type if role.kind is ConfigTypeKind.NONEABLE else role).kind is ConfigTypeKind.ENUM
    assert set(fields["action"].config_type.config_values) == {"APPROVE", "REJECT", "ROLLBACK", "BASELINE_RESET"}


def _run(resources, tenant: str, version: int, action: str = "REJECT"):
    config = {"action": action, "tenant": tenant, "version": version, "actor": "ana", "reason": "launchpad test"}
    return governance_job.execute_in_process(
        run_config={"ops": {"governance_action": {"config": config}}},
        resources={k: resources[k] for k in ("ledger", "mlflow_registry", "object_store", "signer")},
        raise_on_error=False)


def test_an_unknown_tenant_is_refused_with_its_name(resources):
    result = _run(resources, "no-such-tenant", 1)
    assert not result.success
    failures = [e for e in result.all_events if e.event_type is DagsterEventType.STEP_FAILURE]
    error = failures[0].step_failure_data.error
    assert error.cause.cls_name == "GovernanceError"
    assert "tenant 'no-such-tenant' is not registered" in error.cause.message


def test_a_launchpad_action_is_applied(resources, suffix):
    ledger = resources["ledger"]
    tenant = f"launch-{suffix}"
    setup_tenant(ledger, tenant)
    model = validated_model(ledger, resources["mlflow_registry"], tenant, "s02")
    assert _run(resources, tenant, model.mlflow_version).success
    with ledger.connect(tenant) as conn:
        state = conn.execute("SELECT state FROM model_versions WHERE model_id = %s", (model.model_id,)).fetchone()
    assert state["state"] == "DEPRECATED"
