"""DRIFT-6 on the real RiceFarms panel: the s05-s06 price/wage jump is the top item of every village's report.

Built through the domain functions (no Dagster): each village's s05 and s06 against an s01-s04 and an
s01-s03 reference, with the shipped spec (``resources/model_specs/rice-yield-v1.json``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from rai_assets.demo.ricefarms import load_panel, to_event
from rai_assets.domain.drift import assess_drift
from rai_assets.domain.features import events_frame
from rai_assets.domain.model_spec import load_model_spec

SPECS = Path(__file__).resolve().parents[2] / "resources" / "model_specs"
PRICES = {"inputs.wage_rp_per_h", "inputs.seed_price_rp_per_kg"}


@pytest.fixture(scope="module")
def panel_frame() -> pd.DataFrame:
    spec = load_model_spec(SPECS, "rice-yield-v1")
    panel = load_panel()
    return events_frame([to_event(row) for _, row in panel.iterrows()], spec)


@pytest.mark.parametrize("reference_seasons", [("s01", "s02", "s03", "s04"), ("s01", "s02", "s03")])
@pytest.mark.parametrize("season", ["s05", "s06"])
def test_price_jump_is_the_top_item_of_every_village(
    panel_frame: pd.DataFrame, season: str, reference_seasons: tuple[str, ...]
) -> None:
    # REQ: DRIFT-6 — season-level covariates compared season to season, named first; the s05-s06 price
    # doubling (wage x2-3, seed price x2-4) ranks first; no per-field PSI ceiling on prices; the small
    # windows (19-37 fields) get a verdict, not insufficient_sample.
    spec = load_model_spec(SPECS, "rice-yield-v1")
    for tenant, rows in panel_frame.groupby("tenant_id"):
        reference = rows[rows["season_id"].isin(reference_seasons)]
        current = rows[rows["season_id"] == season]
        assessment = assess_drift(reference, current, spec.numeric_features, list(spec.categorical_features),
                                  spec.drift)
        top = assessment.season_level[0]
        assert top.feature in PRICES, (tenant, top.feature)
        assert top.ratio_to_reference_mean > 1.8 and top.changed, (tenant, top)
        assert [c.feature for c in assessment.season_level][:2] == sorted(
            PRICES, key=lambda f: -abs(next(c.log_ratio for c in assessment.season_level if c.feature == f)))
        assert [h[0] for h in top.history] == list(reference_seasons)
        assert assessment.reasons[0].startswith(f"season-level {top.feature}: {season}")
        assert assessment.verdict != "insufficient_sample"
        assert not {f.feature for f in assessment.features} & set(spec.drift.season_level)
        assert assessment.max_psi < 17.0  # the per-field PSI ceiling (~18.4) no longer appears
        body = assessment.to_dict()
        assert body["season_level"][0]["feature"] == top.feature and top.feature in body["season_level_changed"]
