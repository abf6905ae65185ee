"""Which device a training step really trains on (REG-8).

On Kubernetes a training step asks for a GPU (``rai_assets.deployment.TRAINING_OP_TAGS``), but the
pod can still land where CUDA is not usable: a node without the NVIDIA runtime, a driver that does
not match, an XGBoost wheel built without CUDA. The step then trains on CPU, says so in a warning
and records ``"cpu"`` — the GPU-hour quota (RET-6) counts only models recorded with ``"cuda"``.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable

import numpy as np
import xgboost as xgb

GPU_REQUEST_ENV = "RAI_GPU_REQUESTED"  # set to "1" in the pod of a step that requested a GPU
_log = logging.getLogger("dagster.rai_assets.device")


def cuda_usable() -> bool:
    """True when XGBoost can train on CUDA here: a CUDA build, a visible GPU and a successful 2-row fit.

    The probe fit costs a few milliseconds on a GPU; every failure (no CUDA build, no device, driver
    error) answers False instead of raising.
    """
    if not xgb.build_info().get("USE_CUDA"):
        return False
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset") in ("", "-1") or shutil.which("nvidia-smi") is None:
        return False
    try:
        probe = xgb.XGBRegressor(n_estimators=1, max_depth=1, tree_method="hist", device="cuda")
        probe.fit(np.array([[0.0], [1.0]]), np.array([0.0, 1.0]))
    except Exception:
        return False
    return True


def resolve_training_device(forced: str = "", gpu_requested: bool | None = None,
                            probe: Callable[[], bool] = cuda_usable,
                            log: logging.Logger | None = None) -> str:
    """The device to train on: ``"cuda"`` or ``"cpu"``.

    Args:
        forced: ``"cpu"`` or ``"cuda"`` to request a device (``RAI_TRAINING_DEVICE``); anything else
            means "detect".
        gpu_requested: whether the step's pod asked for a GPU; ``None`` reads ``RAI_GPU_REQUESTED``.
        probe: answers whether CUDA is usable (:func:`cuda_usable`; tests pass a stub).
        log: where the fallback warning goes (default: a ``dagster.*`` logger, captured in a run).

    Returns ``"cpu"`` whenever CUDA is not usable. When a GPU was requested (``forced == "cuda"``
    or ``gpu_requested``) but is not usable, a WARNING says so. Never raises.
    """
    forced = forced.strip().lower()
    if forced == "cpu":
        return "cpu"
    if gpu_requested is None:
        gpu_requested = os.environ.get(GPU_REQUEST_ENV, "").strip() == "1"
    if probe():
        return "cuda"
    if forced == "cuda" or gpu_requested:
        (log or _log).warning(
            "a GPU was requested for this training step but CUDA is not usable here "
            "(no CUDA build of XGBoost, no visible GPU or a driver error): training on CPU; the model "
            "records device=cpu and no GPU time is counted against the quota"
        )
    return "cpu"
