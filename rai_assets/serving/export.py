"""Export the served forecasts (what an agronomist downloads) and score them against the harvest."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rai_assets.adapters.ledger import artifacts
from rai_assets.adapters.ledger import events as event_store
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.ledger.tenants import season_order
from rai_assets.domain.ids import tenant_id as valid_tenant_id

#: CSV columns. ``predicted_yield_kg_ha`` keeps its name (rice consumers read it) and holds the forecast in the
#: unit of the ``unit`` column — the target unit of the model's spec (``kg/ha`` for rice-yield-v1, whatever
#: ``target.unit`` another spec names); ``unit`` is appended last so positional readers of the first seven
#: columns are unaffected.
COLUMNS = ("tenant", "season", "field_id", "predicted_yield_kg_ha", "model", "model_version", "source", "unit")


def known_tenants() -> list[str]:
    """The tenant partitions of the Dagster instance (``DAGSTER_HOME``), sorted; empty without one."""
    from dagster import DagsterInstance

    from rai_assets.assets.partitions import TENANT_DIMENSION

    try:
        instance = DagsterInstance.get()
    except Exception:  # no DAGSTER_HOME: nothing known
        return []
    return sorted(instance.get_dynamic_partitions(TENANT_DIMENSION))


def served_rows(ledger: LedgerResource, tenants: Sequence[str], season: str | None = None) -> list[dict[str, Any]]:
    """Served forecasts of ``tenants`` (see :func:`rai_assets.adapters.ledger.artifacts.served_forecasts`),
    read as the agronomist role, each tenant in its own context (GOV-1, GOV-4).

    Raises:
        InvalidIdentifierError: a tenant id is not a slug.
    """
    rows: list[dict[str, Any]] = []
    for tenant in tenants:
        with ledger.connect(valid_tenant_id(tenant), role="agronomist") as conn:
            rows.extend(artifacts.served_forecasts(conn, tenant, season))
    return rows


def export_forecasts(ledger: LedgerResource, tenants: Sequence[str], out: Path, *, season: str | None = None) -> int:
    """Write the served forecasts of ``tenants`` to the CSV ``out`` (columns :data:`COLUMNS`); returns rows."""
    rows = served_rows(ledger, tenants, season)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "predicted_yield_kg_ha": f"{row['predicted_yield_kg_ha']:.2f}"})
    return len(rows)


@dataclass(frozen=True)
class ServedAccuracy:
    """MAE (in the spec's target unit, e.g. kg/ha) of the served forecasts and of the naive baseline on one
    tenant-season."""

    tenant: str
    season: str
    fields: int
    served_mae: float
    naive_mae: float
    sources: str

    @property
    def worse_than_naive(self) -> bool:
        """Served MAE above the naive baseline's."""
        return self.served_mae > self.naive_mae


def served_accuracy(ledger: LedgerResource, tenant: str, spec_target: tuple[str, str]) -> list[ServedAccuracy]:
    """Score a tenant's served forecasts against the harvested yields, season by season, next to the naive
    baseline (the tenant's mean yield of earlier seasons).

    Args:
        spec_target: ``(numerator, denominator)`` payload paths of the target (e.g. gross output kg, area ha).
    """
    num, den = spec_target
    served = served_rows(ledger, [tenant])
    out: list[ServedAccuracy] = []
    with ledger.connect(tenant) as conn:
        order = season_order(conn, tenant)  # the tenant's own calendar (issue 8 item 3)
        yields: dict[str, dict[str, float]] = {}
        for season in order:
            for payload in event_store.load_events(conn, tenant, [season]):
                yields.setdefault(season, {})[payload["field_id"]] = _path(payload, num) / _path(payload, den)
    for season in order:
        rows = [r for r in served if r["season"] == season and r["field_id"] in yields.get(season, {})]
        history = [v for s in order[: order.index(season)] for v in yields.get(s, {}).values()]
        if not rows or not history:
            continue
        actual = np.array([yields[season][r["field_id"]] for r in rows])
        predicted = np.array([r["predicted_yield_kg_ha"] for r in rows])
        out.append(ServedAccuracy(tenant, season, len(rows), float(np.mean(np.abs(predicted - actual))),
                                  float(np.mean(np.abs(np.mean(history) - actual))),
                                  ",".join(sorted({r["source"] for r in rows}))))
    return out


def _path(payload: dict[str, Any], dotted: str) -> float:
    value: Any = payload
    for part in dotted.split("."):
        value = value[part]
    return float(value)
