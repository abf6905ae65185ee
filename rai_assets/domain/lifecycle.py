"""The model-version lifecycle FSM (REG-3).

States: DRAFT → TRAINING → VALIDATED → SHADOW → CANARY → CHAMPION → DEPRECATED, plus the fail
states FAILED and QUARANTINED (manual review). :data:`LEGAL_TRANSITIONS` is the one table of
legal moves; every other (from, to) pair is illegal. The ledger database enforces the same
table with a trigger, and the tests compare the two.

Two transitions carry a guard checked where the state of the whole tenant is known (the
ledger): VALIDATED → CHAMPION is the *bootstrap* promotion, legal only while the tenant has no
champion; DEPRECATED → CHAMPION is a *rollback* to a previous champion.
"""

from __future__ import annotations

from enum import StrEnum


class ModelState(StrEnum):
    """Lifecycle state of one model version."""

    DRAFT = "DRAFT"
    TRAINING = "TRAINING"
    VALIDATED = "VALIDATED"
    SHADOW = "SHADOW"
    CANARY = "CANARY"
    CHAMPION = "CHAMPION"
    DEPRECATED = "DEPRECATED"
    FAILED = "FAILED"
    QUARANTINED = "QUARANTINED"


S = ModelState

LEGAL_TRANSITIONS: frozenset[tuple[ModelState, ModelState]] = frozenset(
    {
        (S.DRAFT, S.TRAINING),
        (S.DRAFT, S.FAILED),
        (S.TRAINING, S.VALIDATED),
        (S.TRAINING, S.FAILED),
        (S.VALIDATED, S.SHADOW),
        (S.VALIDATED, S.CHAMPION),  # bootstrap promotion: only while the tenant has no champion
        (S.VALIDATED, S.DEPRECATED),
        (S.VALIDATED, S.QUARANTINED),
        (S.SHADOW, S.CANARY),
        (S.SHADOW, S.DEPRECATED),
        (S.SHADOW, S.QUARANTINED),
        (S.CANARY, S.CHAMPION),
        (S.CANARY, S.DEPRECATED),
        (S.CANARY, S.QUARANTINED),
        (S.CHAMPION, S.DEPRECATED),
        (S.CHAMPION, S.QUARANTINED),
        (S.DEPRECATED, S.CHAMPION),  # rollback to a previous champion
        (S.QUARANTINED, S.VALIDATED),  # a manager's review clears it
        (S.QUARANTINED, S.DEPRECATED),  # a manager's review retires it
    }
)


class IllegalTransitionError(ValueError):
    """A lifecycle transition that the FSM does not allow."""


def is_legal(current: ModelState, target: ModelState) -> bool:
    """Whether ``current → target`` is in :data:`LEGAL_TRANSITIONS`."""
    return (current, target) in LEGAL_TRANSITIONS


def check_transition(current: ModelState | str, target: ModelState | str) -> None:
    """Raise unless ``current → target`` is legal.

    Raises:
        IllegalTransitionError: the pair is not in :data:`LEGAL_TRANSITIONS` (or a state name is unknown).
    """
    try:
        cur, tgt = ModelState(current), ModelState(target)
    except ValueError as exc:
        raise IllegalTransitionError(f"unknown lifecycle state: {exc}") from exc
    if not is_legal(cur, tgt):
        allowed = sorted(t.value for (f, t) in LEGAL_TRANSITIONS if f == cur)
        raise IllegalTransitionError(
            f"illegal lifecycle transition {cur} → {tgt}; from {cur} only {allowed or 'nothing'} is allowed"
        )
