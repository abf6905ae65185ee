"""Asset: per-field yield forecasts of the tenant's champion for the partition's season.

The forecast of a season is made by the champion that serves *before* the season's labels are used:
this asset runs after :mod:`~rai_assets.assets.serving_model` (which may let a refit of the champion's
recipe serve, on evidence of earlier seasons only) and before :mod:`~rai_assets.assets.model_promotion`
(which judges candidates on those labels), and a season's served forecasts are never rewritten by a
re-run. Otherwise a model chosen because it did well on a season's yields would be credited with
forecasting that season (look-ahead).
"""


from typing import Any

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from rai_assets.adapters.ledger import artifacts
from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.assets.checks import FORECASTS_COMPLETE, forecasts_check, verdict_check
from rai_assets.assets.common import (
    TENANT_SEASON_ASSET,
    PartitionContext,
    column_schema,
    markdown_table,
    on_materialization_only,
    partition_context,
)
from rai_assets.assets.learning_events import learning_events
from rai_assets.assets.model_io import model_predictions, season_frame, trained_on
from rai_assets.assets.partitions import PartitionStep
from rai_assets.assets.serving_model import serving_model
from rai_assets.domain.sequential import canary_slice


def materialize_yield_forecasts(
    context: PartitionStep, ledger: LedgerResource, mlflow_registry: MlflowRegistryResource
) -> MaterializeResult:
    """Forecast every field of the season with the champion (once: served forecasts are not rewritten).

    Always materializes (``model_promotion`` runs after it); metadata ``fields`` is the number of fields
    served, 0 with a ``status`` when there is no champion yet or the champion has seen the season.
    """
    part = partition_context(context, ledger)
    fields = season_frame(ledger, part.tenant, part.season, part.spec)
    with ledger.connect(part.tenant) as conn:
        served = artifacts.forecasting_model(conn, part.tenant, part.season)
        champion = model_store.get_champion(conn, part.tenant)
        if served is not None:
            stored = model_store.get_model(conn, served)
            count = artifacts.forecast_count(conn, part.tenant, part.season, served)
            return _result(len(fields), {
                "fields": count, "served_by": stored.mlflow_ref,
                "status": f"already served by {stored.mlflow_ref}: served forecasts are never rewritten"})
    if champion is None:
        return _nothing_served(context, len(fields),
                               f"tenant {part.tenant} has no champion yet: nothing served for {part.season}")
    if trained_on(ledger, champion, part.season):
        return _nothing_served(context, len(fields), f"the champion {champion.mlflow_ref} was trained on "
                                                     f"{part.season}: it does not forecast a season it has seen")
    predictions = model_predictions(mlflow_registry, champion, fields, part.spec, ledger=ledger, season=part.season)
    by_field = dict(zip(fields["field_id"], (float(p) for p in predictions), strict=True))
    canary, canary_fields = _canary_slice(part, ledger, mlflow_registry, fields)
    with ledger.connect(part.tenant) as conn:
        written = artifacts.replace_forecasts(conn, tenant=part.tenant, season=part.season,
                                              model_id=champion.model_id, role="champion", predictions=by_field,
                                              run_id=part.run_id, unit=part.spec.target_unit)
        if canary is not None and canary_fields:
            artifacts.replace_forecasts(conn, tenant=part.tenant, season=part.season, model_id=canary.model_id,
                                        role="canary", predictions=canary_fields, run_id=part.run_id,
                                        unit=part.spec.target_unit)
    preview = [[f, f"{v:,.0f}"] for f, v in sorted(by_field.items())[:10]]
    return _result(len(fields), {
        "fields": written,
        "served_by": champion.mlflow_ref,
        "status": "served", "unit": part.spec.target_unit,
        "mean_forecast_kg_ha": round(float(np.mean(predictions)), 1) if len(predictions) else 0.0,
        "champion_mlflow_version": champion.mlflow_version or 0,
        "canary_fields": len(canary_fields),
        "canary": canary.mlflow_ref if canary is not None else "none",
        "preview": MetadataValue.md(markdown_table(["field", f"forecast {part.spec.target_unit}"], preview)),
    })


@asset(
    **TENANT_SEASON_ASSET,
    kinds={"postgres"},
    metadata=column_schema(
        ("tenant_id", "text", "the tenant"), ("season_id", "text", "the season forecast"),
        ("field_id", "text", "the field"),
        ("predicted_yield_kg_ha", "double precision", "the forecast, in the unit of the `unit` column"),
        ("unit", "text", "the target unit of the tenant's model spec (e.g. kg/ha)"),
        ("model_id", "bigint", "the ledger's model version that made it (MLflow name and version in the export)"),
        ("role", "text", "champion (served), canary (served on the canary's slice) or shadow (scored, not served)"),
    ),
    deps=[learning_events, serving_model],
    check_specs=[verdict_check(FORECASTS_COMPLETE, "yield_forecasts", "Every field of the season was served a "
                                                                        "forecast")],
    description="Per-field yield forecasts (spec's unit) of the tenant's champion for the season (a CANARY model "
    "serves its hashed slice of the fields), stored in the ledger "
    "for agronomists. Made before the season's labels judge any candidate, and never rewritten once served. "
    "While the tenant has no champion nothing is served (`fields` = 0, `status` says why).",
)
def yield_forecasts(
    context: AssetExecutionContext, ledger: LedgerResource, mlflow_registry: MlflowRegistryResource
) -> MaterializeResult:
    """The asset: :func:`materialize_yield_forecasts` for the run's partition."""
    return on_materialization_only(context, materialize_yield_forecasts(context, ledger, mlflow_registry))


def _canary_slice(part: PartitionContext, ledger: LedgerResource, registry: MlflowRegistryResource,
                  fields: pd.DataFrame) -> tuple[model_store.ModelVersion | None, dict[str, float]]:
    """The tenant's CANARY model (if any, and not trained on the season) and its forecasts of the season's
    fields in its hashed slice (``spec.promotion.canary_share``, salted by the tenant; RET-7): those fields are
    served by the canary, the others by the champion."""
    with ledger.connect(part.tenant) as conn:
        row = conn.execute("SELECT model_id FROM model_versions WHERE tenant_id = %s AND state = 'CANARY'"
                           " ORDER BY model_id DESC LIMIT 1", (part.tenant,)).fetchone()
        canary = model_store.get_model(conn, int(row["model_id"])) if row else None
    if canary is None or canary.mlflow_version is None or trained_on(ledger, canary, part.season):
        return None, {}
    ids = [str(f) for f in fields["field_id"]]
    chosen = [canary_slice(f, part.spec.promotion.canary_share, salt=part.tenant) for f in ids]
    if not any(chosen):
        return canary, {}
    predicted = model_predictions(registry, canary, fields, part.spec, ledger=ledger, season=part.season)
    return canary, {f: float(p) for f, p, c in zip(ids, predicted, chosen, strict=True) if c}


def _result(season_fields: int, metadata: dict[str, Any]) -> MaterializeResult:
    return MaterializeResult(metadata=metadata, check_results=[
        forecasts_check(int(metadata["fields"]), season_fields, str(metadata["status"]))])


def _nothing_served(context: PartitionStep, season_fields: int, why: str) -> MaterializeResult:
    context.log.info(why)
    return _result(season_fields, {"fields": 0, "served_by": "nobody", "status": why})
