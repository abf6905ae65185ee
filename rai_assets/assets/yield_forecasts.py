"""Asset: per-field yield forecasts of the tenant's champion for the partition's season."""


from collections.abc import Iterator

import numpy as np
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from rai_assets.adapters.ledger import artifacts
from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.assets.common import ASSET_GROUP, markdown_table, partition_context
from rai_assets.assets.learning_events import learning_events
from rai_assets.assets.model_io import model_predictions, season_frame, trained_on
from rai_assets.assets.model_promotion import model_promotion
from rai_assets.assets.partitions import ONE_PARTITION_PER_RUN, tenant_season_partitions


@asset(
    partitions_def=tenant_season_partitions,
    backfill_policy=ONE_PARTITION_PER_RUN,
    group_name=ASSET_GROUP,
    kinds={"postgres"},
    deps=[learning_events, model_promotion],
    output_required=False,
    description="Per-field yield forecasts (kg/ha) of the tenant's champion for the season, stored in the ledger "
    "for agronomists. Nothing is materialized while the tenant has no champion.",
)
def yield_forecasts(
    context: AssetExecutionContext, ledger: LedgerResource, mlflow_registry: MlflowRegistryResource
) -> Iterator[MaterializeResult]:
    """Forecast every field of the season with the champion."""
    part = partition_context(context, ledger)
    with ledger.connect(part.tenant) as conn:
        champion = model_store.get_champion(conn, part.tenant)
    if champion is None:
        context.log.info(f"tenant {part.tenant} has no champion yet: no forecasts for {part.season}")
        return
    if trained_on(ledger, champion, part.season):
        context.log.info(f"the champion was trained on {part.season}: it does not forecast a season it has seen")
        return
    fields = season_frame(ledger, part.tenant, part.season, part.spec)
    predictions = model_predictions(mlflow_registry, champion, fields, part.spec)
    by_field = dict(zip(fields["field_id"], (float(p) for p in predictions), strict=True))
    with ledger.connect(part.tenant) as conn:
        written = artifacts.replace_forecasts(conn, tenant=part.tenant, season=part.season,
                                              model_id=champion.model_id, role="champion", predictions=by_field,
                                              run_id=part.run_id)
    preview = [[f, f"{v:,.0f}"] for f, v in sorted(by_field.items())[:10]]
    yield MaterializeResult(
        metadata={
            "fields": written,
            "mean_forecast_kg_ha": float(np.mean(predictions)) if len(predictions) else 0.0,
            "champion_model_id": champion.model_id,
            "champion_mlflow_version": champion.mlflow_version or 0,
            "preview": MetadataValue.md(markdown_table(["field", "forecast kg/ha"], preview)),
        }
    )
