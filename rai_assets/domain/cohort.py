"""Cohort training: one model pooled over the opted-in tenants of one model spec (REG-9).

Pure functions; no Dagster, no I/O.

Why pool: a village has 19–37 fields a season, too few for gradient-boosted trees to learn more than
its mean; the six villages of one spec together have ~170 fields a season, and on the RiceFarms panel
a model trained on all of them forecasts every village better than per-village models do (README:
"Cohorts"). Forecasts, evaluations, audits and drift reports stay per tenant.

The pooling rule:

* the training frame of season *s* is the union of every current member's events of the seasons
  before *s* (each member's rows are its own snapshot, named by their Merkle root; the lineage lists
  every member's root, and the lineage root hashes them);
* the tenant enters as a feature (one-hot) only if it helps on held-out data: both variants are
  fitted on the seasons before the training window's last season and scored on that season (the
  rolling-origin evaluation of Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*,
  3rd ed., §5.10); the tenant is used only when its MAE is lower. With a single season in the window
  there is nothing to hold out and the tenant is not used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rai_assets.domain.canonical import canonical_json, sha256_hex
from rai_assets.domain.features import feature_matrix, target_vector
from rai_assets.domain.model_spec import ModelSpec
from rai_assets.domain.training import predict, train_regressor

TENANT_PREFIX = "tenant="


@dataclass(frozen=True)
class MemberSnapshot:
    """One member's share of a cohort training window: its rows and their Merkle root."""

    tenant: str
    merkle_root: str
    rows: int


@dataclass(frozen=True)
class CohortPlan:
    """What a cohort model of one season is trained on, and how.

    ``members`` in tenant order; ``tenant_levels`` the tenants one-hot encoded (empty when the tenant
    is not a feature); ``holdout`` the MAE (kg/ha) of both variants on the held-out season, if any.
    """

    cohort: str
    season: str
    members: tuple[MemberSnapshot, ...]
    use_tenant_feature: bool
    tenant_levels: tuple[str, ...]
    holdout: dict[str, Any]

    @property
    def lineage(self) -> dict[str, Any]:
        """The lineage recorded with every member's model version (canonical, JSON-ready)."""
        return {
            "cohort": self.cohort,
            "season": self.season,
            "members": [{"tenant": m.tenant, "snapshot_root": m.merkle_root, "rows": m.rows} for m in self.members],
            "lineage_root": self.lineage_root,
            "tenant_feature": self.use_tenant_feature,
            "tenant_levels": list(self.tenant_levels),
            "holdout": self.holdout,
        }

    @property
    def lineage_root(self) -> str:
        """SHA-256 of the canonical list of (member, snapshot root): names the training data."""
        return sha256_hex(canonical_json([[m.tenant, m.merkle_root] for m in self.members]))


def cohort_features(frame: pd.DataFrame, spec: ModelSpec, tenant_levels: Sequence[str]) -> pd.DataFrame:
    """The spec's model inputs, plus one-hot ``tenant=<id>`` columns for ``tenant_levels`` (if any).

    Shape: ``(len(frame), len(spec.model_columns) + len(tenant_levels))``; a tenant not among the
    levels gets all zeros.

    Raises:
        ValueError: as :func:`rai_assets.domain.features.feature_matrix`.
    """
    out = feature_matrix(frame, spec)
    for level in tenant_levels:
        out[f"{TENANT_PREFIX}{level}"] = (frame["tenant_id"].astype(str) == level).to_numpy(dtype="float64")
    return out


def plan_cohort_model(cohort: str, season: str, member_frames: Mapping[str, pd.DataFrame],
                      member_roots: Mapping[str, str], spec: ModelSpec) -> CohortPlan:
    """Decide the pooling for a cohort model of ``season`` from each member's training window.

    Args:
        member_frames: tenant → its events of the seasons before ``season`` (with ``season_id``,
            ``tenant_id`` and the target column; see :func:`rai_assets.domain.features.events_frame`).
        member_roots: tenant → the Merkle root of those events.

    Raises:
        ValueError: no member has training rows, or a member lacks its root.
    """
    tenants = sorted(t for t, f in member_frames.items() if len(f))
    if not tenants:
        raise ValueError(f"cohort {cohort!r} has no training rows before {season}")
    missing = [t for t in tenants if t not in member_roots]
    if missing:
        raise ValueError(f"cohort {cohort!r}: no snapshot root for members {missing}")
    members = tuple(MemberSnapshot(t, member_roots[t], len(member_frames[t])) for t in tenants)
    pooled = pooled_frame(member_frames)
    seasons = sorted(pooled["season_id"].unique())
    holdout: dict[str, Any] = {}
    use_tenant = False
    if len(seasons) >= 2 and len(tenants) >= 2:
        train, test = pooled[pooled["season_id"] < seasons[-1]], pooled[pooled["season_id"] == seasons[-1]]
        y_test = target_vector(test, spec)
        maes = {}
        for name, levels in (("without_tenant", ()), ("with_tenant", tuple(tenants))):
            model = train_regressor(cohort_features(train, spec, levels), target_vector(train, spec), spec)
            maes[name] = float(np.mean(np.abs(predict(model, cohort_features(test, spec, levels)) - y_test)))
        use_tenant = maes["with_tenant"] < maes["without_tenant"]
        holdout = {"season": str(seasons[-1]), "rows": len(test), "mae_kg_ha": maes}
    return CohortPlan(cohort, season, members, use_tenant, tuple(tenants) if use_tenant else (), holdout)


def pooled_frame(member_frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The members' frames stacked in tenant order, then their own (season, field) order."""
    frames = [member_frames[t] for t in sorted(member_frames) if len(member_frames[t])]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
