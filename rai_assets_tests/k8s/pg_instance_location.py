"""A small code location for the Dagster-on-Postgres test (``test_dagster_postgres.py``): one asset on the
project's tenant × season partitions (dynamic dimensions, so the partitions themselves live in the instance),
its job, and a sensor that requests one partition. It needs no ledger, MLflow or object store, so the test
measures Dagster's own storage, with the project's run queue settings (``dagster.yaml``)."""

from dagster import (
    AssetExecutionContext,
    DefaultSensorStatus,
    Definitions,
    RunRequest,
    SensorEvaluationContext,
    asset,
    define_asset_job,
    sensor,
)

from rai_assets.assets.partitions import ONE_PARTITION_PER_RUN, partition_key, tenant_season_partitions

JOB = "season_marker_job"
SENSOR_PARTITION = ("village-a", "s01")


@asset(partitions_def=tenant_season_partitions, backfill_policy=ONE_PARTITION_PER_RUN)
def season_marker(context: AssetExecutionContext) -> str:
    """The partition's key, stored by the default IO manager (under ``$DAGSTER_HOME/storage``)."""
    return str(context.partition_key)


season_marker_job = define_asset_job(JOB, selection=[season_marker], partitions_def=tenant_season_partitions)


@sensor(job=season_marker_job, minimum_interval_seconds=1, default_status=DefaultSensorStatus.RUNNING)
def season_sensor(context: SensorEvaluationContext) -> RunRequest:
    """Requests ``SENSOR_PARTITION`` once (its run key de-duplicates later ticks)."""
    key = partition_key(*SENSOR_PARTITION)
    return RunRequest(run_key=str(key), partition_key=key)


defs = Definitions(assets=[season_marker], jobs=[season_marker_job], sensors=[season_sensor])
