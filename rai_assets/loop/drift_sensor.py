"""Sensor: new drift-report materializations (every partition's, not only the latest event) →
a guarded retraining run of that tenant when the drift is actionable (RET-1..6).

Drift seen in season ``s`` retrains for the next season of the calendar: its snapshot holds every
season up to ``s`` (the drifted one included), and the candidate is judged when the next season's
labels land (the landing sensor then runs evaluation, bias audit and the staged promotion).

The cursor is the storage id of the last materialization read; at most
:data:`MAX_REPORTS_PER_TICK` are read per tick. Work is batched per tick, not per report (issue 12,
goal 2): the source runs and the active retraining runs are read with one query each, and every
report's ledger work (report body, spec, guards, calendar) runs in one ledger transaction.
``run_key`` is the drift report's SHA-256, so the same report never starts two retraining runs
(RET-3); the tenant's tag is limited to one run at a time by the run queue (RET-2, ``dagster.yaml``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from rai_assets.adapters import metrics, tracing
from rai_assets.adapters.ledger import loop
from rai_assets.adapters.ledger.resource import Conn, LedgerResource
from rai_assets.adapters.ledger.tenants import get_tenant, seasons_after
from rai_assets.assets.common import spec_by_id
from rai_assets.assets.partitions import (
    SEASON_DIMENSION,
    TENANT_DIMENSION,
    partition_key,
    tenant_season_partitions,
)
from rai_assets.domain.model_spec import ModelSpec
from rai_assets.loop.guard_check import check_retraining
from rai_assets.loop.jobs import RETRAIN_TENANT_TAG, RETRAINING_JOB, SENSOR_INTERVAL_S, retraining_job
from rai_assets.loop.landing_sensor import LANDED_AT_TAG

MAX_REPORTS_PER_TICK = 2500  # 10,000 reports in 4 ticks (2 min at the 30 s interval)
ACTIVE = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
          DagsterRunStatus.STARTED]


@sensor(job=retraining_job, minimum_interval_seconds=SENSOR_INTERVAL_S, default_status=DefaultSensorStatus.RUNNING,
        description="Actionable drift (effect size, corrected significance, minimum sample, or MAE degradation) → "
        "guarded retraining of the tenant.")
def drift_sensor(context: SensorEvaluationContext, ledger: LedgerResource) -> SensorResult:
    """One tick over the drift reports materialized since the cursor.

    Each report is handled inside the trace of the run that materialized it (its landed file's), and
    a retraining run continues that trace (OBS-2).
    """
    with tracing.sensor_tick("drift_sensor"):
        return _drift_tick(context, ledger)


def _drift_tick(context: SensorEvaluationContext, ledger: LedgerResource) -> SensorResult:
    after = int(context.cursor) if context.cursor else None
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("drift_report"), after_storage_id=after),
        limit=MAX_REPORTS_PER_TICK, ascending=True,
    ).records
    if not records:
        return SensorResult(skip_reason="no new drift reports", cursor=context.cursor)
    requests: list[RunRequest] = []
    skipped: list[str] = []
    run_ids = sorted({r.run_id for r in records if r.run_id})
    source_runs = ({run.run_id: run for run in context.instance.get_runs(RunsFilter(run_ids=run_ids))}
                   if run_ids else {})
    active: dict[str, list[str]] = defaultdict(list)
    for run in context.instance.get_runs(RunsFilter(job_name=RETRAINING_JOB, statuses=ACTIVE)):
        if RETRAIN_TENANT_TAG in run.tags:
            active[run.tags[RETRAIN_TENANT_TAG]].append(run.run_id)
    tick = _TickLedger()
    with ledger.connect() as conn:
        for record in records:
            materialization = record.asset_materialization
            if materialization is None or record.partition_key is None:
                continue
            dims = tenant_season_partitions.get_partition_key_from_str(record.partition_key).keys_by_dimension
            tenant, season = dims[TENANT_DIMENSION], dims[SEASON_DIMENSION]
            sha = str(materialization.metadata["sha256"].value)
            source_run = source_runs.get(record.run_id) if record.run_id else None
            source_tags = dict(source_run.tags) if source_run is not None else {}
            parent = source_tags.get(tracing.TRACEPARENT_TAG, "")
            if LANDED_AT_TAG in source_tags:  # DRIFT-5: landed file → drift report
                metrics.drift_detection_latency.observe(max(0.0, record.timestamp - float(source_tags[LANDED_AT_TAG])))
            with tracing.continue_trace(parent):
                _handle_report(context, ledger, conn, tick, tenant, season, sha, active.get(tenant, []),
                               requests, skipped)
    metrics.export()
    for line in skipped:
        context.log.info(f"retraining not requested — {line}")
    return SensorResult(
        run_requests=requests,
        skip_reason=None if requests else "; ".join(skipped) or "nothing actionable",
        cursor=str(records[-1].storage_id),
    )


class _TickLedger:
    """Per-tick caches of what does not change between a tick's reports: specs and the calendar."""

    def __init__(self) -> None:
        self.specs: dict[str, ModelSpec] = {}
        self.later: dict[tuple[str, str], list[str]] = {}  # (tenant, season) → its calendar's later seasons


def _handle_report(context: SensorEvaluationContext, ledger: LedgerResource, conn: Conn, tick: _TickLedger,
                   tenant: str, season: str, sha: str, active: list[str],
                   requests: list[RunRequest], skipped: list[str]) -> None:
    """Guard one drift report in the tick's ledger transaction; append its run request or why it was skipped."""
    LedgerResource.switch_tenant(conn, tenant)
    body = loop.drift_report_body(conn, tenant, sha)
    if tenant not in tick.specs:
        tick.specs[tenant] = spec_by_id(get_tenant(conn, tenant).model_spec)
    spec = tick.specs[tenant]
    if body is None:
        skipped.append(f"{tenant}/{season}: drift report {sha[:12]}… not in the ledger")
        return
    max_psi = body.get("assessment", {}).get("max_psi") if isinstance(body.get("assessment"), dict) else None
    if max_psi is not None:
        metrics.set_season_gauge(metrics.drift_psi_value, tenant, season, float(max_psi))
    overall, _ = check_retraining(ledger, tenant=tenant, season=season, report_sha256=sha, report_body=body,
                                  spec=spec, now=datetime.now(UTC), active_retraining_runs=active, conn=conn)
    if (tenant, season) not in tick.later:
        tick.later[(tenant, season)] = seasons_after(conn, tenant, season)
    later = tick.later[(tenant, season)]
    if overall.allowed and not later:
        skipped.append(f"{tenant}/{season}: drift is actionable but no later season is registered in the "
                       "calendar to train a candidate for (rai-assets season register)")
    elif overall.allowed:
        target = later[0]
        requests.append(RunRequest(
            run_key=f"retrain:{sha}",
            partition_key=str(partition_key(tenant, target)),
            tags={RETRAIN_TENANT_TAG: tenant, "rai/trigger": "drift", "rai/drift-report": sha,
                  "rai/drift-season": season, "rai/tenant": tenant, "rai/season": target,
                  **tracing.trace_tags()},
        ))
        tracing.log_json(context.log, "retraining requested", tenant=tenant, season=target,
                         drift_season=season)
    else:
        skipped.append(f"{tenant}/{season}: {overall.reason}")
