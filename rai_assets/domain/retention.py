"""Retention of model versions (REG-7), as a pure plan.

Kept: the last :data:`KEEP_LAST` versions of a tenant, every version that was ever champion, and
every version in use (SHADOW, CANARY, CHAMPION). Collected: DRAFT / FAILED versions older than
:data:`DRAFT_FAILED_MAX_AGE`, and other versions beyond the last five that were never champion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from rai_assets.domain.lifecycle import ModelState

KEEP_LAST = 5
DRAFT_FAILED_MAX_AGE = timedelta(days=7)
IN_USE = frozenset({ModelState.SHADOW, ModelState.CANARY, ModelState.CHAMPION})


@dataclass(frozen=True)
class VersionInfo:
    """What retention needs to know about one model version."""

    model_id: int
    mlflow_version: int | None
    state: ModelState
    created_at: datetime
    ever_champion: bool
    artifacts_deleted: bool


@dataclass(frozen=True)
class RetentionDecision:
    """One version whose artifacts are to be deleted, and why."""

    model_id: int
    mlflow_version: int | None
    state: ModelState
    reason: str


def plan_retention(versions: Sequence[VersionInfo], now: datetime, keep_last: int = KEEP_LAST,
                   max_age: timedelta = DRAFT_FAILED_MAX_AGE) -> list[RetentionDecision]:
    """The versions of one tenant whose artifacts go, newest first.

    Args:
        versions: all versions of the tenant (any order).
        now: the current time (timezone-aware, like ``created_at``).
    """
    newest_first = sorted(versions, key=lambda v: (v.created_at, v.model_id), reverse=True)
    recent = {v.model_id for v in newest_first[:keep_last]}
    plan = []
    for v in newest_first:
        if v.artifacts_deleted or v.state in IN_USE or v.ever_champion:
            continue
        if v.state in (ModelState.DRAFT, ModelState.FAILED):
            if now - v.created_at > max_age:
                plan.append(RetentionDecision(v.model_id, v.mlflow_version, v.state,
                                              f"{v.state} for more than {max_age.days} days"))
        elif v.model_id not in recent:
            plan.append(RetentionDecision(v.model_id, v.mlflow_version, v.state,
                                          f"beyond the last {keep_last} versions and never champion"))
    return plan
