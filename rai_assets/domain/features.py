"""From learning-event payloads to model inputs, as the tenant's model spec says."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from rai_assets.domain.model_spec import ModelSpec

KEY_COLUMNS = ("tenant_id", "season_id", "field_id")


def events_frame(payloads: Sequence[dict[str, Any]], spec: ModelSpec) -> pd.DataFrame:
    """Flatten event payloads (``farm.size_ha`` style columns) and add the target column.

    Shape: one row per event; key columns, every payload leaf, and ``spec.target_name``
    (``numerator / denominator``, e.g. gross output kg / area ha = kg/ha).

    Raises:
        ValueError: a column named by the spec is missing.
    """
    frame = pd.json_normalize(list(payloads), sep=".")
    if frame.empty:
        frame = pd.DataFrame(columns=[*KEY_COLUMNS, spec.target_numerator, spec.target_denominator])
    for column in (spec.target_numerator, spec.target_denominator):
        if column not in frame.columns:
            raise ValueError(f"events lack column {column!r} needed for target {spec.target_name!r}")
    frame = frame.drop(columns=[c for c in ("schema_version",) if c in frame.columns])
    frame[spec.target_name] = frame[spec.target_numerator].astype(float) / frame[spec.target_denominator].astype(float)
    return frame.reset_index(drop=True)


def feature_matrix(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Model inputs: numeric features as float64, categoricals one-hot over the spec's levels.

    Shape: ``(len(frame), len(spec.model_columns))``, columns in ``spec.model_columns`` order,
    so the same spec always yields the same columns whatever levels a season happens to hold.

    Raises:
        ValueError: a feature column is missing, or a categorical value is not a declared level.
    """
    missing = [c for c in (*spec.numeric_features, *spec.categorical_features) if c not in frame.columns]
    if missing:
        raise ValueError(f"feature columns missing from the events: {missing}")
    columns: dict[str, np.ndarray] = {}  # built once below: a column at a time into a DataFrame costs ms each
    for column in spec.numeric_features:
        columns[column] = frame[column].astype("float64").to_numpy()
    for column, levels in spec.categorical_features.items():
        unknown = sorted(set(frame[column].dropna().astype(str)) - set(levels))
        if unknown:
            raise ValueError(f"column {column!r} has values {unknown} not among the spec's levels {list(levels)}")
        for level in levels:
            columns[f"{column}={level}"] = (frame[column] == level).to_numpy(dtype="float64")
    return pd.DataFrame({name: columns[name] for name in spec.model_columns}, index=frame.index)


def target_vector(frame: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    """The target column as float64 (unit given by the spec, e.g. kg/ha)."""
    return frame[spec.target_name].to_numpy(dtype="float64")
