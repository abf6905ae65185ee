"""A synthetic tenant (resampled RiceFarms rows) landed, registered and run through the job."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from dagster import DagsterInstance

from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.ledger.models import ModelVersion
from rai_assets.definitions import TENANT_SEASON_JOB, build_definitions
from rai_assets.demo.runner import land_and_register, materialize_partitions
from rai_assets.demo.synthetic import SeasonShape, synthetic_season
from rai_assets.domain.lifecycle import ModelState


def land_synthetic_tenant(resources: dict, instance: DagsterInstance, tenant: str, shapes: list[SeasonShape],
                          n_fields: int, keys_dir: Path, bad_uploads: bool = False) -> list[str]:
    """Land and register one synthetic season per shape (``s01`` …); returns the season ids.

    ``bad_uploads`` also lands a forged upload for the second season (it is dead-lettered).
    """
    frames = [synthetic_season(tenant, f"s{i:02d}", n_fields, seed=100 + i, shape=shape)
              for i, shape in enumerate(shapes, start=1)]
    _, seasons, _ = land_and_register(resources["ledger"], resources["object_store"], instance,
                                      pd.concat(frames, ignore_index=True), keys_dir, bad_uploads=bad_uploads)
    return seasons


def run_seasons(resources: dict, instance: DagsterInstance, tenant: str, seasons: list[str]) -> None:
    """Materialize the whole graph for the given seasons in order; every run must succeed."""
    job = build_definitions(resources).resolve_job_def(TENANT_SEASON_JOB)
    runs = materialize_partitions(job, instance, [tenant], seasons, progress=lambda _: None)
    assert all(r.success for r in runs), [r for r in runs if not r.success]


def ensure_recipe_champion(resources: dict, tenant: str, season: str) -> ModelVersion:
    """Test setup: the tenant's champion is ``season``'s candidate of its own recipe, whatever the bootstrap said.

    When the bootstrap kept no champion, or chose the naive baseline (the candidate did not beat it on a
    deliberately odd season), the naive champion is retired and ``season``'s candidate becomes the first
    champion, with its MLflow alias, so a test can study what happens to a champion of the recipe next.
    """
    with resources["ledger"].connect(tenant) as conn:
        current = model_store.get_champion(conn, tenant)
        if current is not None and current.kind != "naive":
            return current
        if current is not None:
            model_store.transition(conn, current, ModelState.DEPRECATED, reason="test setup")
        first = model_store.latest_model_for_partition(conn, tenant, season)
        assert first is not None, f"setup: no candidate was trained for {tenant}/{season}"
        champion = model_store.promote_bootstrap_champion(conn, first, reason="test setup")
    resources["mlflow_registry"].set_champion_alias(tenant, champion.mlflow_version)
    return champion
