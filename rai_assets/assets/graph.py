"""The tenant × season asset graph as one list: each asset next to the plain function that materializes
one partition of it (the asset's body, callable for any :class:`~rai_assets.assets.partitions.PartitionStep`).

``definitions.py`` registers the assets; a season wave (:mod:`rai_assets.backfill`) runs the bodies in the
graph's order for many tenants in one Dagster run.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from dagster import AssetsDefinition, MaterializeResult

from rai_assets.assets.bias_audit import bias_audit, materialize_bias_audit
from rai_assets.assets.dataset_snapshot import dataset_snapshot, materialize_dataset_snapshot
from rai_assets.assets.drift_report import drift_report, materialize_drift_report
from rai_assets.assets.learning_events import learning_events, materialize_learning_events
from rai_assets.assets.model_evaluation import materialize_model_evaluation, model_evaluation
from rai_assets.assets.model_promotion import materialize_model_promotion, model_promotion
from rai_assets.assets.serving_model import materialize_serving_model, serving_model
from rai_assets.assets.trained_model import materialize_trained_model, trained_model
from rai_assets.assets.yield_forecasts import materialize_yield_forecasts, yield_forecasts

#: The body of an asset: ``(step, **resources) -> MaterializeResult`` (``None``: nothing to materialize for the
#: partition, as ``dataset_snapshot`` for a tenant's first season). Raises whatever the asset raises.
AssetBody = Callable[..., MaterializeResult | None]

#: Every tenant × season asset with its body, in the order ``definitions.py`` lists them.
TENANT_SEASON_GRAPH: tuple[tuple[AssetsDefinition, AssetBody], ...] = (
    (learning_events, materialize_learning_events),
    (dataset_snapshot, materialize_dataset_snapshot),
    (trained_model, materialize_trained_model),
    (serving_model, materialize_serving_model),
    (model_evaluation, materialize_model_evaluation),
    (bias_audit, materialize_bias_audit),
    (drift_report, materialize_drift_report),
    (model_promotion, materialize_model_promotion),
    (yield_forecasts, materialize_yield_forecasts),
)

TENANT_SEASON_ASSETS: list[AssetsDefinition] = [asset for asset, _ in TENANT_SEASON_GRAPH]


def resource_kwargs(body: AssetBody, resources: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``body``: the resources its parameters after ``context`` name, taken from
    ``resources``.

    Raises:
        KeyError: a resource the body takes is not in ``resources`` (the message names it and the body).
    """
    names = [name for name in inspect.signature(body).parameters if name != "context"]
    missing = [name for name in names if name not in resources]
    if missing:
        raise KeyError(f"{body.__name__} takes resources {missing}, which were not given")
    return {name: resources[name] for name in names}
