"""Ledger errors: the database's own refusals (SQLSTATE class ``RA``) as Python exceptions."""

from __future__ import annotations

import psycopg


class LedgerRefusal(RuntimeError):
    """The ledger database refused a write; ``sqlstate`` says why."""

    sqlstate: str = ""


class IllegalTransitionRefused(LedgerRefusal):
    """RA001: the lifecycle FSM forbids the transition (REG-3)."""


class ImmutableRefused(LedgerRefusal):
    """RA002: an immutable row or column was to be changed (GOV-2)."""


class GuardRefused(LedgerRefusal):
    """RA003: a promotion guard is not met (e.g. no passed, verified bias audit — REG-5)."""


class RoleRefused(LedgerRefusal):
    """RA004: the database role may not take this action (GOV-4)."""


class VersionConflict(LedgerRefusal):
    """RA005 or a lost race: the row changed since it was read (REG-4)."""


_BY_STATE: dict[str, type[LedgerRefusal]] = {
    "RA001": IllegalTransitionRefused,
    "RA002": ImmutableRefused,
    "RA003": GuardRefused,
    "RA004": RoleRefused,
    "RA005": VersionConflict,
}


def translate(exc: psycopg.Error) -> Exception:
    """The :class:`LedgerRefusal` for a database error of class ``RA``, else ``exc`` unchanged."""
    state = exc.sqlstate or ""
    cls = _BY_STATE.get(state)
    if cls is None:
        return exc
    diag = exc.diag.message_primary or str(exc)
    err = cls(diag)
    err.sqlstate = state
    return err
