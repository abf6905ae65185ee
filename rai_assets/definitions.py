"""The code location: one ``Definitions`` with the tenant × season asset graph and its resources.

Every resource is configured from the environment; with nothing set, all stores live under the
local state directory ``RAI_STATE_DIR`` (default ``.rai``): SQLite MLflow, a local object store,
an embedded Postgres ledger and a local signing key.

| variable | production value |
|---|---|
| ``RAI_LEDGER_URL`` | ``postgresql://rai_app@…`` of the ledger (Postgres with pgvector) |
| ``RAI_LEDGER_OWNER_URL`` | the schema owner's URL, for migrations (optional at run time) |
| ``MLFLOW_TRACKING_URI`` | the MLflow server (``MLFLOW_ARTIFACT_ROOT`` for new experiments) |
| ``RAI_S3_BUCKET`` / ``RAI_S3_ENDPOINT_URL`` | the object store (AWS S3 or MinIO) |
| ``RAI_S3_EVENTS_QUEUE_URL`` | SQS queue of the bucket's ObjectCreated notifications (landing sensor) |
| ``RAI_SIGNING_KEY`` | base64 Ed25519 seed (a K8s Secret) |
| ``RAI_EXECUTOR`` | ``k8s``: ``k8s_job_executor`` for every job (``rai_assets.deployment``) |
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from dagster import AssetSelection, Definitions, EnvVar, define_asset_job, with_source_code_references
from dagster_aws.s3 import S3Resource

from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.adapters.signer import SignerResource
from rai_assets.adapters.tracing import json_console_logger
from rai_assets.assets.common import ASSET_GROUP
from rai_assets.assets.graph import TENANT_SEASON_ASSETS
from rai_assets.assets.partitions import tenant_season_partitions
from rai_assets.backfill.wave import season_wave_job
from rai_assets.deployment import GPU_RUN_TAGS, select_executor
from rai_assets.governance.jobs import (
    governance_job,
    integrity_job,
    integrity_schedule,
    retention_job,
    retention_schedule,
)
from rai_assets.loop.drift_sensor import drift_sensor
from rai_assets.loop.jobs import ingestion_job, retraining_job
from rai_assets.loop.landing_sensor import landing_zone_sensor
from rai_assets.loop.outcome_sensors import metrics_gc_sensor, retraining_failure_sensor, retraining_success_sensor

TENANT_SEASON_JOB = "tenant_season_job"


def state_dir() -> str:
    """Absolute local state directory (``RAI_STATE_DIR``, default ``./.rai``)."""
    return str(Path(os.environ.get("RAI_STATE_DIR", ".rai")).resolve())


def build_resources(resolve_env: bool = False) -> dict[str, object]:
    """The resources of the code location, configured from the environment.

    Args:
        resolve_env: use the variables' values instead of ``EnvVar`` references — for code that
            calls the resources outside a Dagster run (the demo and CLI).
    """
    local = state_dir()

    def _env(name: str, default: str = "") -> str | EnvVar:
        value = os.environ.get(name)
        if not value:
            return default
        return value if resolve_env else EnvVar(name)
    return {
        "ledger": LedgerResource(database_url=_env("RAI_LEDGER_URL"), owner_url=_env("RAI_LEDGER_OWNER_URL"),
                                 state_dir=local),
        "object_store": ObjectStoreResource(
            local_root=str(Path(local) / "objects"),
            s3_bucket=_env("RAI_S3_BUCKET"),
            sqs_queue_url=_env("RAI_S3_EVENTS_QUEUE_URL"),  # S3 → SQS notifications for the landing sensor
            # INF-3: the S3 client is dagster-aws's; credentials and region from the AWS environment
            s3=S3Resource(endpoint_url=_env("RAI_S3_ENDPOINT_URL") or None, max_attempts=5),
        ),
        "mlflow_registry": MlflowRegistryResource(
            tracking_uri=_env("MLFLOW_TRACKING_URI"),
            artifact_root=_env("MLFLOW_ARTIFACT_ROOT"),
            state_dir=local,
            ui_url=os.environ.get("RAI_MLFLOW_UI_URL", "http://127.0.0.1:5000"),
        ),
        "signer": SignerResource(signing_key_b64=_env("RAI_SIGNING_KEY"), state_dir=local),
    }


class Stores(NamedTuple):
    """The resources as typed values, for code outside a Dagster run (CLI, demo)."""

    ledger: LedgerResource
    object_store: ObjectStoreResource
    mlflow_registry: MlflowRegistryResource
    signer: SignerResource


def resolved_stores() -> Stores:
    """The resources configured from the environment's current values."""
    r = build_resources(resolve_env=True)
    stores = Stores(r["ledger"], r["object_store"], r["mlflow_registry"], r["signer"])  # type: ignore[arg-type]
    return stores


tenant_season_job = define_asset_job(
    TENANT_SEASON_JOB,
    selection=AssetSelection.groups(ASSET_GROUP),
    partitions_def=tenant_season_partitions,
    tags=GPU_RUN_TAGS,  # it trains: counted against the run queue's GPU-run cap (helm-values.yaml)
    description="The whole tenant × season graph for one partition: ingest → snapshot → train → which model "
    "serves (refit of the champion's recipe, on evidence) → forecasts → evaluate → bias audit → drift report → "
    "promotion.",
)

ALL_ASSETS = TENANT_SEASON_ASSETS


def build_definitions(resources: dict[str, object]) -> Definitions:
    """The code location's definitions bound to ``resources`` (tests bind temporary stores)."""
    return Definitions(
        assets=with_source_code_references(ALL_ASSETS),  # "Open in editor" links in the UI
        jobs=[tenant_season_job, season_wave_job, ingestion_job, retraining_job, governance_job, retention_job,
              integrity_job],
        schedules=[retention_schedule, integrity_schedule],
        sensors=[landing_zone_sensor, drift_sensor, retraining_failure_sensor, retraining_success_sensor,
                 metrics_gc_sensor],
        resources=resources,
        loggers={"console": json_console_logger},
        executor=select_executor(),  # RAI_EXECUTOR=k8s: one K8s Job per step (rai_assets/deployment.py)
    )


defs = build_definitions(build_resources())
