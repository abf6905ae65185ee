"""Synthetic seasons for the closed-loop scenario and its tests, resampled from the real panel.

The RiceFarms villages have 19–37 fields a season — far below the significance guard's default
minimum sample (1,000 events, DRIFT-2) and the canary's minimum. The closed loop is therefore
shown on a larger synthetic tenant: each season resamples the 1,026 real rows (all villages) with
replacement, jitters every input by ±10 % (log-normal), and can apply a *shift* — inputs scaled
(e.g. more urea, dearer seed) and the yield scaled — so drift and its effect on the model are
real, known and reproducible (seeded).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rai_assets.demo.ricefarms import load_panel

NUMERIC_COLUMNS = ("seed", "urea", "phosphate", "pesticide", "pseed", "purea", "pphosph", "hiredlabor", "famlabor",
                   "totlabor", "wage", "price")


@dataclass(frozen=True)
class SeasonShape:
    """How a synthetic season differs from the panel: input multipliers and a yield multiplier."""

    inputs: Mapping[str, float] = field(default_factory=dict)
    yield_factor: float = 1.0
    yield_noise: float = 0.10  # log-normal σ of the yield jitter


def synthetic_season(tenant: str, season: str, n_fields: int, seed: int, shape: SeasonShape = SeasonShape(),
                     panel: pd.DataFrame | None = None) -> pd.DataFrame:
    """``n_fields`` rows shaped like :func:`rai_assets.demo.ricefarms.load_panel` for one tenant-season.

    Field ids are ``field-00001`` … so the same field appears in every season of the tenant.
    """
    base = panel if panel is not None else load_panel()
    rng = np.random.default_rng(seed)
    rows = base.iloc[rng.integers(0, len(base), n_fields)].reset_index(drop=True).copy()
    for column in NUMERIC_COLUMNS:
        jitter = rng.lognormal(0.0, 0.10, n_fields) * shape.inputs.get(column, 1.0)
        rows[column] = (rows[column].astype(float) * jitter).round(2)
    rows["totlabor"] = rows["hiredlabor"] + rows["famlabor"]
    factor = rng.lognormal(0.0, shape.yield_noise, n_fields) * shape.yield_factor
    rows["goutput"] = (rows["goutput"].astype(float) * factor).round(1)
    rows["noutput"] = (rows["goutput"] * 0.85).round(1)
    rows["tenant"] = tenant
    rows["season"] = season
    rows["field"] = [f"field-{i:05d}" for i in range(1, n_fields + 1)]
    return rows
