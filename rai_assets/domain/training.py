"""Training the per-tenant yield regressor (REG-2, REG-8).

XGBoost gradient-boosted trees with a fixed seed and the ``hist`` tree method, which is
deterministic for a given snapshot, seed and device. CUDA is used when a GPU is present.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from rai_assets.domain.device import resolve_training_device
from rai_assets.domain.model_spec import DEFAULT_OBJECTIVE, ModelSpec

_CODE_FILES = ("training.py", "features.py", "cohort.py")


def code_version() -> str:
    """Digest (first 16 hex chars) of the training code and the XGBoost version.

    It changes whenever the code that turns a snapshot into a model changes, so an unchanged
    snapshot with unchanged code is recognised and no new model version is trained.
    """
    h = hashlib.sha256(f"xgboost={xgb.__version__}".encode())
    here = Path(__file__).resolve().parent
    for name in _CODE_FILES:
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def detect_device() -> str:
    """``"cuda"`` when XGBoost has CUDA support and an NVIDIA GPU is visible, else ``"cpu"``.

    ``RAI_TRAINING_DEVICE=cpu`` forces CPU; ``cuda`` (or a pod that requested a GPU) is honoured only
    when CUDA is usable, else the step trains on CPU and logs a warning.
    """
    # REG-8: a requested GPU that is not usable falls back to CPU with a warning (domain/device.py).
    return resolve_training_device(os.environ.get("RAI_TRAINING_DEVICE", ""))


def train_regressor(features: pd.DataFrame, target: np.ndarray, spec: ModelSpec, device: str = "cpu"
                    ) -> xgb.XGBRegressor:
    """Fit the yield regressor.

    Args:
        features: ``(n, k)`` matrix from :func:`rai_assets.domain.features.feature_matrix`.
        target: ``(n,)`` yields (kg/ha).
        spec: supplies the XGBoost hyper-parameters (``objective`` included; the rice spec fits
            ``reg:absoluteerror``, the conditional median, which is the optimal point forecast under the
            absolute error every promotion test scores — Gneiting 2011, JASA 106(494) §2.2; default
            :data:`DEFAULT_OBJECTIVE`) and the seed.
        device: ``"cpu"`` or ``"cuda"``.

    Raises:
        ValueError: fewer than 2 rows, length mismatch or non-finite target values.
    """
    if len(features) != len(target):
        raise ValueError(f"features have {len(features)} rows but target has {len(target)}")
    if len(target) < 2:
        raise ValueError(f"cannot train on {len(target)} rows")
    if not np.all(np.isfinite(target)):
        raise ValueError(f"target has {int((~np.isfinite(target)).sum())} non-finite values")
    model = xgb.XGBRegressor(
        **{"objective": DEFAULT_OBJECTIVE, **spec.xgboost_params},
        random_state=spec.seed,
        tree_method="hist",
        device=device,
        n_jobs=1 if device == "cpu" else None,
    )
    model.fit(features, target)
    return model


def predict(model: xgb.XGBRegressor, features: pd.DataFrame) -> np.ndarray:
    """Predictions ``(n,)`` in the target's unit (kg/ha)."""
    return np.asarray(model.predict(features), dtype="float64")


def train_naive_model(features: pd.DataFrame, mean_yield: float, spec: ModelSpec) -> xgb.XGBRegressor:
    """The naive baseline as a model (REG-10): it forecasts ``mean_yield`` (kg/ha, the tenant's mean of
    earlier seasons) for every field, whatever the features.

    An XGBoost booster with one zero-weight tree around ``base_score``, so it is registered, loaded and
    served exactly like any other model version.

    Raises:
        ValueError: ``mean_yield`` is not finite or ``features`` is empty.
    """
    if not np.isfinite(mean_yield):
        raise ValueError(f"the naive baseline needs a finite mean yield, got {mean_yield!r}")
    if len(features) == 0:
        raise ValueError("the naive baseline needs at least one row of features to fix its inputs")
    model = xgb.XGBRegressor(n_estimators=1, learning_rate=0.0, base_score=float(mean_yield), tree_method="hist",
                             random_state=spec.seed, n_jobs=1, objective="reg:squarederror")
    model.fit(features, np.full(len(features), float(mean_yield)))
    return model
