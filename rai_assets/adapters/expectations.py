"""Great Expectations validation of dataset snapshots (SNAP-3).

Suites are versioned JSON files in ``resources/expectations/<name>.json`` (GX 1.x
``ExpectationSuite`` documents). Validation runs on an in-memory (ephemeral) GX context.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from typing import Any

import pandas as pd

from rai_assets.resource_files import resources_dir

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@dataclass(frozen=True)
class ValidationOutcome:
    """Result of one suite run: success, counts and the failed expectations (type, column, detail)."""

    suite: str
    success: bool
    evaluated: int
    failed: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        return {"suite": self.suite, "success": self.success, "evaluated": self.evaluated,
                "failed": list(self.failed)}


@cache
def _batch_definition() -> Any:
    import great_expectations as gx

    ctx = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    except (ImportError, AttributeError):
        pass
    asset = ctx.data_sources.add_pandas("rai_assets").add_dataframe_asset("dataset_snapshot")
    return asset.add_batch_definition_whole_dataframe("whole_snapshot")


def load_suite_document(name: str) -> dict[str, Any]:
    """The suite document ``resources/expectations/<name>.json``.

    Raises:
        FileNotFoundError: no such suite file.
    """
    return json.loads((resources_dir() / "expectations" / f"{name}.json").read_text(encoding="utf-8"))


def validate_frame(frame: pd.DataFrame, suite_name: str) -> ValidationOutcome:
    """Validate ``frame`` against the named suite: success, the number of expectations evaluated and, for each
    failed one, its type, column, observed value (or unexpected count) and up to 5 unexpected values.

    Raises:
        FileNotFoundError: the suite file does not exist.
    """
    from great_expectations.core.expectation_suite import ExpectationSuite

    suite = ExpectationSuite(**load_suite_document(suite_name))
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
    # a passing snapshot needs only the verdicts: GX's BOOLEAN_ONLY result format skips the metrics behind
    # observed values and unexpected samples (≈ 60 → 33 ms for a RiceFarms snapshot, issue 12, goal 3); a
    # failing one is validated again in the default format, whose details the failed expectations report
    result = batch.validate(suite, result_format="BOOLEAN_ONLY")
    if not result.success:
        result = batch.validate(suite)
    described = result.describe_dict()
    failed = tuple(
        {
            "expectation": e["expectation_type"],
            "column": e["kwargs"].get("column"),
            "observed": e["result"].get("observed_value", e["result"].get("unexpected_count")),
            "sample": [str(v) for v in e["result"].get("partial_unexpected_list", [])[:5]],
        }
        for e in described["expectations"]
        if not e["success"]
    )
    return ValidationOutcome(
        suite=suite_name,
        success=bool(described["success"]),
        evaluated=int(described["statistics"]["evaluated_expectations"]),
        failed=failed,
    )
