"""Great Expectations validation of a snapshot (SNAP-3): the verdict, the count of expectations evaluated and,
for a failing snapshot, what failed — each expectation's type, column, observed value and unexpected samples."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rai_assets.adapters.expectations import load_suite_document, validate_frame


def _snapshot(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({
        "tenant_id": "t1", "season_id": np.repeat(["s01", "s02"], n // 2), "field_id": [f"f{i}" for i in range(n)],
        "yield_kg_ha": rng.normal(4000, 800, n), "farm.size_ha": rng.uniform(0.1, 2.0, n),
        "farm.tenure": rng.choice(["owner", "share"], n), "farm.variety": rng.choice(["trad", "high"], n),
        "farm.bimas": rng.choice(["yes", "no"], n), "inputs.total_labor_h": rng.normal(500, 50, n),
    })


def test_a_valid_snapshot_passes_every_expectation_SNAP3():
    outcome = validate_frame(_snapshot(), "dataset_snapshot")
    assert outcome.success and outcome.failed == ()
    assert outcome.evaluated == len(load_suite_document("dataset_snapshot")["expectations"]) == 9


def test_a_failing_snapshot_names_what_failed_with_observed_values_and_samples_SNAP3():
    """The verdict comes from a cheap first pass; the details of a failure are GX's default result format."""
    frame = _snapshot()
    frame.loc[:5, "farm.tenure"] = "rent"  # 6 values outside the set
    frame.loc[:3, "yield_kg_ha"] = -5.0  # 4 of 60 below 0: more than the 2 % the suite allows
    frame.loc[10, "inputs.total_labor_h"] = None
    outcome = validate_frame(frame, "dataset_snapshot")
    assert not outcome.success and outcome.evaluated == 9
    failed = {(f["expectation"], f["column"]): f for f in outcome.failed}
    assert set(failed) == {("expect_column_values_to_be_between", "yield_kg_ha"),
                           ("expect_column_values_to_be_in_set", "farm.tenure"),
                           ("expect_column_values_to_not_be_null", "inputs.total_labor_h")}
    assert failed["expect_column_values_to_be_in_set", "farm.tenure"]["observed"] == 6
    assert failed["expect_column_values_to_be_in_set", "farm.tenure"]["sample"] == ["rent"] * 5
    assert failed["expect_column_values_to_be_between", "yield_kg_ha"]["sample"] == ["-5.0"] * 4
    assert failed["expect_column_values_to_not_be_null", "inputs.total_labor_h"]["observed"] == 1
