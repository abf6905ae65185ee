"""Run-status sensors record retraining outcomes for the circuit breaker (RET-5)."""

from __future__ import annotations

from dagster import (
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    build_run_status_sensor_context,
)

from rai_assets.adapters.ledger import loop
from rai_assets.loop.jobs import RETRAINING_JOB
from rai_assets.loop.outcome_sensors import retraining_failure_sensor, retraining_success_sensor
from rai_assets_tests.governance.builders import setup_tenant


def _context(instance, tenant, status, resources):
    dagster_run = instance.add_run(
        DagsterRun(job_name=RETRAINING_JOB, run_id=f"run-{status.value.lower()}",
                   tags={"rai/tenant": tenant, "rai/season": "s02", "rai/trigger": "drift"}, status=status))
    event_type = DagsterEventType.RUN_FAILURE if status == DagsterRunStatus.FAILURE else DagsterEventType.RUN_SUCCESS
    event = DagsterEvent(event_type.value, RETRAINING_JOB)
    return build_run_status_sensor_context(sensor_name="s", dagster_instance=instance, dagster_run=dagster_run,
                                           dagster_event=event, resources=resources)


def test_failure_and_success_are_recorded(resources, suffix):
    tenant = f"out-{suffix}"
    setup_tenant(resources["ledger"], tenant)
    instance = DagsterInstance.ephemeral()
    with _context(instance, tenant, DagsterRunStatus.FAILURE, resources) as failed:
        retraining_failure_sensor(failed.for_run_failure())
    with _context(instance, tenant, DagsterRunStatus.SUCCESS, resources) as succeeded:
        retraining_success_sensor(succeeded)
    with resources["ledger"].connect(tenant) as conn:
        outcomes = [o for _, o in loop.retraining_outcomes(conn, tenant)]
    assert outcomes == ["failed", "succeeded"]
