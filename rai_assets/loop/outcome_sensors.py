"""Run-status sensors: every retraining run's outcome is recorded in the ledger, so consecutive
failures open the tenant's circuit breaker (RET-5); ended runs' Pushgateway groups are deleted
(OBS-5)."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunsFilter,
    RunStatusSensorContext,
    SensorEvaluationContext,
    SensorResult,
    run_failure_sensor,
    run_status_sensor,
    sensor,
)

from rai_assets.adapters import metrics, tracing
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
    if outcome == "succeeded":  # a candidate was trained: the drift that asked for it is acted on (SLO)
        metrics.candidate_trained.labels(tenant=tenant).set(time.time())
    return tenant


@run_failure_sensor(monitored_jobs=[retraining_job], default_status=DefaultSensorStatus.RUNNING,
                    description="A failed retraining run counts towards the tenant's circuit breaker (RET-5).")
def retraining_failure_sensor(context: RunFailureSensorContext, ledger: LedgerResource) -> None:
    """Record the failure."""
    with tracing.continue_trace(dict(context.dagster_run.tags).get(tracing.TRACEPARENT_TAG, "")):
        tenant = record_outcome(ledger, dict(context.dagster_run.tags), context.dagster_run.run_id, "failed")
    context.log.info(f"retraining run {context.dagster_run.run_id} of {tenant} failed: recorded for the breaker")


@run_status_sensor(run_status=DagsterRunStatus.SUCCESS, monitored_jobs=[retraining_job],
                   default_status=DefaultSensorStatus.RUNNING,
                   description="A successful retraining run closes the tenant's failure streak (RET-5).")
def retraining_success_sensor(context: RunStatusSensorContext, ledger: LedgerResource) -> None:
    """Record the success."""
    with tracing.continue_trace(dict(context.dagster_run.tags).get(tracing.TRACEPARENT_TAG, "")):
        record_outcome(ledger, dict(context.dagster_run.tags), context.dagster_run.run_id, "succeeded")


ENDED = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
# An ended run's group stays this long so Prometheus scrapes its last values (several scrape intervals).
PUSH_GROUP_GRACE_S = float(os.environ.get("RAI_PUSH_GROUP_GRACE_S", "120"))
MAX_RUNS_PER_TICK = 200


def ended_runs_to_clean(context: SensorEvaluationContext, now: float, grace_s: float) -> tuple[list[str], float]:
    """Ids of runs that ended after the cursor's time and at least ``grace_s`` before ``now``; new cursor."""
    state = json.loads(context.cursor) if context.cursor else {}
    since = float(state.get("until", 0.0))
    until = now - grace_s
    if until <= since:
        return [], since
    records = context.instance.get_run_records(RunsFilter(
        statuses=ENDED, updated_after=datetime.fromtimestamp(since, UTC),
        updated_before=datetime.fromtimestamp(until, UTC)),
        limit=MAX_RUNS_PER_TICK, order_by="update_timestamp", ascending=True)
    if len(records) == MAX_RUNS_PER_TICK:  # bounded work per tick: continue after the last one next time
        last = records[-1].update_timestamp
        until = (last if last.tzinfo else last.replace(tzinfo=UTC)).timestamp()
    return [r.dagster_run.run_id for r in records], until


@sensor(minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING,
        description="Delete the Pushgateway groups of runs that ended (after a grace for the last scrape) (OBS-5).")
def metrics_gc_sensor(context: SensorEvaluationContext) -> SensorResult:
    """One tick: delete the groups of every run that ended since the last tick (minus the grace)."""
    with tracing.sensor_tick("metrics_gc_sensor"):
        gateway = os.environ.get(metrics.PUSHGATEWAY_ENV, "")
        if not gateway:
            return SensorResult(skip_reason=f"{metrics.PUSHGATEWAY_ENV} is not set", cursor=context.cursor)
        run_ids, until = ended_runs_to_clean(context, time.time(), PUSH_GROUP_GRACE_S)
        deleted = metrics.delete_run_groups(gateway, run_ids) if run_ids else 0
        return SensorResult(skip_reason=f"deleted {deleted} group(s) of {len(run_ids)} ended run(s)",
                            cursor=json.dumps({"until": until}))
