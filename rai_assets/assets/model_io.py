"""Reading the inputs models need: stored snapshots, a season's events, registered models."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rai_assets.adapters.ledger import artifacts
from rai_assets.adapters.ledger import events as event_store
from rai_assets.adapters.ledger.models import ModelVersion
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.ledger.tenants import season_order, seasons_before
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.domain.cohort import cohort_features
from rai_assets.domain.features import events_frame, feature_matrix, target_vector
from rai_assets.domain.model_spec import ModelSpec
from rai_assets.domain.snapshot import snapshot_from_parquet
from rai_assets.domain.training import predict


def snapshot_frame(ledger: LedgerResource, store: ObjectStoreResource, tenant: str, season: str,
                   merkle_root: str) -> pd.DataFrame:
    """The stored snapshot ``merkle_root`` of (tenant, season) as a frame.

    Raises:
        LookupError: the ledger has no such snapshot.
    """
    with ledger.connect(tenant) as conn:
        row = artifacts.get_snapshot(conn, tenant, season, merkle_root)
    if row is None:
        raise LookupError(f"snapshot {merkle_root} of {tenant}/{season} is not recorded in the ledger")
    return snapshot_from_parquet(store.get_bytes(row["object_key"]))


def training_history(ledger: LedgerResource, store: ObjectStoreResource, model: ModelVersion) -> pd.DataFrame:
    """The model's tenant's own training window (its events of the seasons before ``model.season_id``).

    For a tenant model this is exactly its training snapshot; a cohort or naive model was trained on
    (or from) more than the tenant's rows, so the tenant's own recorded snapshot of that season is
    used — the per-tenant reference of drift reports and naive baselines (REG-9: those stay per tenant).

    Raises:
        LookupError: the ledger has no snapshot of the tenant for that season.
    """
    if model.kind == "tenant":
        return snapshot_frame(ledger, store, model.tenant_id, model.season_id, model.snapshot_root)
    with ledger.connect(model.tenant_id) as conn:
        row = artifacts.latest_snapshot(conn, model.tenant_id, model.season_id)
    if row is None:
        raise LookupError(f"no snapshot of {model.tenant_id}/{model.season_id} is recorded in the ledger")
    return snapshot_from_parquet(store.get_bytes(row["object_key"]))


def season_frame(ledger: LedgerResource, tenant: str, season: str, spec: ModelSpec) -> pd.DataFrame:
    """The tenant's stored events of one season as a frame (with the target column)."""
    with ledger.connect(tenant) as conn:
        payloads = event_store.load_events(conn, tenant, [season])
    return events_frame(payloads, spec)


def trained_on(ledger: LedgerResource, model: ModelVersion, season: str) -> bool:
    """Whether ``model`` was trained on data of ``season`` (its snapshot holds seasons before its own).

    A model of partition season ``m`` saw seasons strictly before ``m``; it saw ``season`` iff
    ``season`` comes before ``m`` in the calendar.
    """
    with ledger.connect(model.tenant_id) as conn:
        order = season_order(conn, model.tenant_id)
    return order.index(season) < order.index(model.season_id)


def naive_mean(ledger: LedgerResource, tenant: str, season: str, spec: ModelSpec) -> float:
    """The naive baseline's forecast for every field of (tenant, ``season``): the tenant's mean target
    (kg/ha) over all its seasons before ``season`` in the calendar.

    Raises:
        LookupError: the tenant has no labelled season before ``season``.
    """
    with ledger.connect(tenant) as conn:
        history = events_frame(event_store.load_events(conn, tenant, seasons_before(conn, tenant, season)), spec)
    target = target_vector(history, spec)
    if len(target) == 0:
        raise LookupError(f"{tenant} has no labelled season before {season}: the naive baseline has no history")
    return float(target.mean())


def model_predictions(registry: MlflowRegistryResource, model: ModelVersion, frame: pd.DataFrame,
                      spec: ModelSpec, *, ledger: LedgerResource | None = None,
                      season: str | None = None) -> np.ndarray:
    """Predictions ``(len(frame),)`` in kg/ha of a registered model version.

    A naive baseline model version (``kind`` ``naive``, REG-10) is the rule "the tenant's mean of its
    earlier seasons", applied to ``season`` (see :func:`naive_mean`): its MLflow artifact records the mean
    at registration, the ledger applies the rule so the served baseline is the one it is compared with.

    Raises:
        ValueError: the model version has no MLflow version yet; a naive model without ``ledger`` and ``season``.
    """
    if model.kind == "naive":
        if ledger is None or season is None:
            raise ValueError(f"naive baseline model {model.model_id} forecasts from earlier seasons: "
                             "pass the ledger and the season")
        return np.full(len(frame), naive_mean(ledger, model.tenant_id, season, spec))
    if model.mlflow_version is None:
        raise ValueError(f"model version {model.model_id} is not registered in MLflow")
    loaded = registry.load_model(model.tenant_id, model.mlflow_version, model.mlflow_model_name)
    levels = tuple((model.lineage or {}).get("tenant_levels") or ()) if model.kind == "cohort" else ()
    return predict(loaded, cohort_features(frame, spec, levels) if levels else feature_matrix(frame, spec))
