"""Jobs the sensors launch: ingestion of a landed tenant-season and the guarded retraining."""

import os

from dagster import AssetSelection, define_asset_job

from rai_assets.assets.bias_audit import bias_audit
from rai_assets.assets.common import STEP_RETRY
from rai_assets.assets.dataset_snapshot import dataset_snapshot
from rai_assets.assets.drift_report import drift_report
from rai_assets.assets.learning_events import learning_events
from rai_assets.assets.model_evaluation import model_evaluation
from rai_assets.assets.model_promotion import model_promotion
from rai_assets.assets.partitions import tenant_season_partitions
from rai_assets.assets.serving_model import serving_model
from rai_assets.assets.trained_model import trained_model
from rai_assets.assets.yield_forecasts import yield_forecasts
from rai_assets.deployment import GPU_RUN_TAGS

INGESTION_JOB = "ingestion_job"
# How often the daemon evaluates the loop's sensors (seconds); the headless scenario sets it low.
SENSOR_INTERVAL_S = int(os.environ.get("RAI_SENSOR_INTERVAL_S", "30"))
RETRAINING_JOB = "retraining_job"
RETRAIN_TENANT_TAG = "rai/retrain-tenant"  # tag concurrency limit 1 per value in dagster.yaml (RET-2)


ingestion_job = define_asset_job(
    INGESTION_JOB,
    selection=AssetSelection.assets(learning_events, serving_model, model_evaluation, bias_audit, drift_report,
                                    model_promotion, yield_forecasts),
    partitions_def=tenant_season_partitions,
    description="A landed tenant-season: ingest its events, let a refit of the champion's recipe serve it when the "
    "evidence allows, forecast it with the champion and report drift "
    "against the champion (DRIFT-5); when a candidate was trained for this season, judge it on the new labels "
    "(evaluation, bias audit, shadow → canary → promotion decision).",
)
LANDING_ONLY = (learning_events, drift_report, yield_forecasts)
LANDING_WITH_CANDIDATE = (learning_events, serving_model, model_evaluation, bias_audit, drift_report,
                          model_promotion, yield_forecasts)

retraining_job = define_asset_job(
    RETRAINING_JOB,
    selection=AssetSelection.assets(dataset_snapshot, trained_model),
    partitions_def=tenant_season_partitions,
    op_retry_policy=STEP_RETRY,
    tags={"dagster/max_runtime": str(24 * 3600), **GPU_RUN_TAGS},  # RET-9: at most 24 h; GPU-run cap
    description="Guarded retraining of one tenant for its next season: snapshot of every season up to the drifted "
    "one → candidate model (RET-1..9). The candidate is judged when that season's labels land.",
)
