"""Season profile vectors for analog-season search (SNAP-4).

A profile summarises the distribution of a set of events as a fixed-length vector: for each
numeric feature of the spec (up to :data:`MAX_FEATURES`), the 10th, 50th and 90th percentiles
and the mean of ``log1p(x)``, in the spec's feature order, zero-padded to :data:`PROFILE_DIM`.
``log1p`` puts inputs measured in kilograms, hours and rupiah on comparable scales, so Euclidean
(L2) distance between profiles ranks seasons by how alike their input distributions are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

PROFILE_DIM = 64
STATS_PER_FEATURE = 4
MAX_FEATURES = PROFILE_DIM // STATS_PER_FEATURE


def season_profile(frame: pd.DataFrame, numeric_features: Sequence[str]) -> list[float]:
    """The ``PROFILE_DIM``-long profile of ``frame`` over ``numeric_features``.

    Raises:
        ValueError: more than :data:`MAX_FEATURES` features, a missing column, negative values
            (``log1p`` needs x > -1; inputs are non-negative by contract) or an empty frame.
    """
    if len(numeric_features) > MAX_FEATURES:
        raise ValueError(f"a profile holds at most {MAX_FEATURES} numeric features, got {len(numeric_features)}")
    missing = [c for c in numeric_features if c not in frame.columns]
    if missing:
        raise ValueError(f"profile columns missing: {missing}")
    if frame.empty:
        raise ValueError("cannot profile an empty set of events")
    vector = np.zeros(PROFILE_DIM, dtype="float64")
    for i, column in enumerate(numeric_features):
        values = frame[column].to_numpy(dtype="float64")
        values = values[~np.isnan(values)]
        if (values < 0).any():
            raise ValueError(f"column {column!r} has negative values; profiles use log1p")
        if values.size == 0:
            continue
        logged = np.log1p(values)
        q10, q50, q90 = np.quantile(logged, [0.1, 0.5, 0.9])
        vector[i * STATS_PER_FEATURE : (i + 1) * STATS_PER_FEATURE] = (q10, q50, q90, logged.mean())
    return [float(v) for v in vector]


def vector_literal(profile: Sequence[float]) -> str:
    """pgvector's text form ``[v1,v2,…]`` (cast with ``::vector`` in SQL)."""
    return "[" + ",".join(repr(float(v)) for v in profile) + "]"
