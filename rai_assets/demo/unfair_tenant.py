"""A synthetic tenant whose bias audit fails for a real reason (the demo's ``--unfair-tenant``).

The RiceFarms villages' audits pass or are inconclusive, so nothing in the plain demo shows a red
``bias_audit_passed`` check. This tenant, ``synth-planthopper``, has ``FIELDS`` fields a season,
resampled from the panel (:func:`rai_assets.demo.synthetic.synthetic_season`). In its last season a
brown-planthopper outbreak hits the high-yielding variety only (hopperburn): their yields fall to
``OUTBREAK_YIELD_FACTOR`` of normal, while traditional and mixed fields are unaffected (the 1970s
outbreaks in Java hit the new IR varieties, which had no resistance). Nothing in the features tells the
model about the outbreak, so its held-out errors on ``variety = high`` are large and one-sided: the audit
finds the MAE ratio and the signed-residual gap of the ``variety`` subgroup beyond the spec's thresholds
with intervals entirely beyond them — a genuine ``fail`` verdict, not a forced one.

Not in the cohort: the tenant keeps a per-tenant model of spec ``rice-yield-v1``.
"""

from __future__ import annotations

import pandas as pd

from rai_assets.demo.ricefarms import load_panel
from rai_assets.demo.synthetic import synthetic_season

TENANT = "synth-planthopper"
FIELDS = 200
#: Yield of the high-yielding variety's fields in the outbreak season, as a fraction of normal.
OUTBREAK_YIELD_FACTOR = 0.1
HIT_VARIETY = "high"


def unfair_tenant_panel(n_seasons: int = 3, n_fields: int = FIELDS) -> pd.DataFrame:
    """``n_seasons`` synthetic seasons (``s01``…) of :data:`TENANT`, the last one with the outbreak.

    Shape: ``n_seasons * n_fields`` rows with the columns of :func:`rai_assets.demo.ricefarms.load_panel`;
    seeded, so reproducible. Raises ``ValueError`` when ``n_seasons < 2`` (the outbreak season needs an
    earlier season to train on).
    """
    if n_seasons < 2:
        raise ValueError(f"the unfair tenant needs at least 2 seasons (one to train on), got {n_seasons}")
    panel = load_panel()
    frames = []
    for i in range(1, n_seasons + 1):
        season = synthetic_season(TENANT, f"s{i:02d}", n_fields, seed=1000 + i, panel=panel)
        if i == n_seasons:
            hit = season["varieties"] == HIT_VARIETY
            for column in ("goutput", "noutput"):
                season.loc[hit, column] = (season.loc[hit, column] * OUTBREAK_YIELD_FACTOR).round(1)
        frames.append(season)
    return pd.concat(frames, ignore_index=True)

