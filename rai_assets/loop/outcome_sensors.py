"""Run-status sensors: every retraining run's outcome is recorded in the ledger, so consecutive
failures open the tenant's circuit breaker (RET-5)."""

from __future__ import annotations

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunStatusSensorContext,
    run_failure_sensor,
    run_status_sensor,
)

from rai_assets.adapters import metrics
from rai_assets.adapters.ledger import loop
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.loop.jobs import retraining_job


def record_outcome(ledger: LedgerResource, tags: dict[str, str], run_id: str, outcome: str) -> str | None:
    """Record the outcome of a retraining run from its tags; returns the tenant (None if untagged)."""
    tenant, season = tags.get("rai/tenant"), tags.get("rai/season", "")
    if not tenant:
        return None
    with ledger.connect(tenant) as conn:
        loop.record_retraining_run(conn, tenant=tenant, run_id=run_id, season=season,
                                   trigger=tags.get("rai/trigger", "manual"), outcome=outcome)
    metrics.pipeline_status.labels(stage="retraining", status=outcome).inc()
    return tenant


@run_failure_sensor(monitored_jobs=[retraining_job], default_status=DefaultSensorStatus.RUNNING,
                    description="A failed retraining run counts towards the tenant's circuit breaker (RET-5).")
def retraining_failure_sensor(context: RunFailureSensorContext, ledger: LedgerResource) -> None:
    """Record the failure."""
    tenant = record_outcome(ledger, dict(context.dagster_run.tags), context.dagster_run.run_id, "failed")
    context.log.info(f"retraining run {context.dagster_run.run_id} of {tenant} failed: recorded for the breaker")


@run_status_sensor(run_status=DagsterRunStatus.SUCCESS, monitored_jobs=[retraining_job],
                   default_status=DefaultSensorStatus.RUNNING,
                   description="A successful retraining run closes the tenant's failure streak (RET-5).")
def retraining_success_sensor(context: RunStatusSensorContext, ledger: LedgerResource) -> None:
    """Record the success."""
    record_outcome(ledger, dict(context.dagster_run.tags), context.dagster_run.run_id, "succeeded")
