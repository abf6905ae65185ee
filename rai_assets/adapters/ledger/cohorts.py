"""Ledger access: cohorts, their memberships, cohort reads and promotion evidence (REG-9, RET-10).

Joining and leaving a cohort are governed: only ``rai_manager`` / ``rai_admin`` may write
``cohort_memberships`` (the database checks it), and each change is appended to the tenant's audit
log. Reading members' rows for cohort training goes through the ``rai_cohort`` role, whose
row-level security policies admit exactly the *current* members of the cohort named in
``rai.cohort_id`` — a tenant that never joined, or that left, is never read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rai_assets.adapters.ledger.resource import Conn


@dataclass(frozen=True)
class Membership:
    """A tenant's current cohort."""

    cohort_id: str
    tenant_id: str
    model_spec: str


def create_cohort(conn: Conn, cohort: str, model_spec: str) -> bool:
    """Create ``cohort`` for tenants of ``model_spec`` (a manager/admin connection). True if new.

    Raises:
        ValueError: the cohort exists with another spec.
    """
    row = conn.execute("SELECT model_spec FROM cohorts WHERE cohort_id = %s", (cohort,)).fetchone()
    if row is not None:
        if row["model_spec"] != model_spec:
            raise ValueError(f"cohort {cohort!r} exists for model spec {row['model_spec']!r}, not {model_spec!r}")
        return False
    conn.execute("INSERT INTO cohorts (cohort_id, model_spec) VALUES (%s, %s)", (cohort, model_spec))
    return True


def active_membership(conn: Conn, tenant: str) -> Membership | None:
    """The tenant's current cohort membership, if any (a tenant connection)."""
    row = conn.execute(
        "SELECT m.cohort_id, m.tenant_id, c.model_spec FROM cohort_memberships m JOIN cohorts c USING (cohort_id)"
        " WHERE m.tenant_id = %s AND m.left_at IS NULL",
        (tenant,),
    ).fetchone()
    return Membership(row["cohort_id"], row["tenant_id"], row["model_spec"]) if row else None


def join(conn: Conn, *, tenant: str, cohort: str, actor: str) -> int:
    """Open a membership (manager/admin connection in the tenant's context); returns its id."""
    row = conn.execute(
        "INSERT INTO cohort_memberships (cohort_id, tenant_id, joined_by) VALUES (%s, %s, %s) RETURNING membership_id",
        (cohort, tenant, actor),
    ).fetchone()
    assert row is not None
    return int(row["membership_id"])


def leave(conn: Conn, *, tenant: str, actor: str) -> str | None:
    """Close the tenant's current membership; returns the cohort it left (None if it was in none)."""
    row = conn.execute(
        "UPDATE cohort_memberships SET left_at = clock_timestamp(), left_by = %s"
        " WHERE tenant_id = %s AND left_at IS NULL RETURNING cohort_id",
        (actor, tenant),
    ).fetchone()
    return str(row["cohort_id"]) if row else None


def current_members(cohort_conn: Conn) -> list[str]:
    """The current members of the connection's cohort (a ``cohort``-role connection), sorted."""
    rows = cohort_conn.execute(
        "SELECT tenant_id FROM cohort_memberships WHERE cohort_id = rai_current_cohort() AND left_at IS NULL"
        " ORDER BY tenant_id"
    ).fetchall()
    return [str(r["tenant_id"]) for r in rows]


def member_events(cohort_conn: Conn, seasons: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Every readable member's event payloads of ``seasons`` (a ``cohort``-role connection).

    The database's policy decides what is readable: exactly the current members' rows. Payloads
    are in season (time) then field order per tenant, as a member's own snapshot orders them.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    if not seasons:
        return out
    rows = cohort_conn.execute(
        "SELECT e.tenant_id, e.payload FROM learning_events e JOIN seasons s USING (season_id)"
        " WHERE e.season_id = ANY(%s) ORDER BY e.tenant_id, s.ordinal, e.field_id",
        (list(seasons),),
    )
    for r in rows.fetchall():
        out.setdefault(str(r["tenant_id"]), []).append(r["payload"])
    return out


def record_evidence(conn: Conn, *, tenant: str, season: str, cohort: str | None, candidate_ref: str,
                    champion_ref: str, field_ids: Sequence[str], differences: Sequence[float], run_id: str,
                    champion_abs_errors: Sequence[float] | None = None) -> bool:
    """Record one tenant-season's paired differences (kg/ha) once; True when newly recorded.

    ``champion_abs_errors`` (kg/ha, in ``field_ids`` order) are the champion's ``|error|`` per field; the
    refit non-inferiority test needs them for its ratio margin (migration 0010).
    """
    row = conn.execute(
        "INSERT INTO promotion_evidence (tenant_id, season_id, cohort_id, candidate_ref, champion_ref, field_ids,"
        " differences, champion_abs_errors, dagster_run_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (tenant_id, season_id, candidate_ref, champion_ref) DO NOTHING RETURNING evidence_id",
        (tenant, season, cohort, candidate_ref, champion_ref, list(field_ids), [float(d) for d in differences],
         None if champion_abs_errors is None else [float(e) for e in champion_abs_errors], run_id),
    ).fetchone()
    return row is not None


def refit_evidence(conn: Conn, lineage: Sequence[str], seasons: Sequence[str]) -> list[dict[str, Any]]:
    """Paired evidence of a recipe's refits against its own older fits, on ``seasons`` only.

    A row counts when both its candidate and its champion are refits of ``lineage`` (oldest first, see
    :func:`rai_assets.adapters.ledger.models.challenger_lineage`) and it carries the champion's absolute
    errors; per (tenant, season) only the newest candidate's row is kept. Each row: ``tenant_id,
    season_id, candidate_ref, champion_ref, differences, champion_abs_errors`` (kg/ha). Readable rows as
    :func:`evidence` (tenant connection: own rows; ``cohort``-role connection: the members' rows).
    """
    refs = list(lineage)
    rank = {ref: i for i, ref in enumerate(refs)}
    rows = conn.execute(
        "SELECT p.tenant_id, p.season_id, p.candidate_ref, p.champion_ref, p.differences, p.champion_abs_errors"
        " FROM promotion_evidence p JOIN seasons s USING (season_id) WHERE p.candidate_ref = ANY(%s)"
        " AND p.champion_ref = ANY(%s) AND p.champion_abs_errors IS NOT NULL AND p.season_id = ANY(%s)"
        " ORDER BY s.ordinal, p.tenant_id",
        (refs, refs, list(seasons)),
    ).fetchall()
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        if rank[str(r["champion_ref"])] >= rank[str(r["candidate_ref"])]:
            continue  # only a newer refit judged against an older fit is refit evidence
        key = (str(r["tenant_id"]), str(r["season_id"]))
        if key not in newest or rank[str(r["candidate_ref"])] > rank[str(newest[key]["candidate_ref"])]:
            newest[key] = r
    return list(newest.values())


def evidence(conn: Conn, candidate_refs: str | Sequence[str], champion_ref: str) -> list[dict[str, Any]]:
    """The readable evidence rows against ``champion_ref`` of a challenger lineage, in season order.

    ``candidate_refs`` is one ``"<model>/<version>"`` or a lineage of them, oldest first (refits of one
    recipe on growing data, see :func:`rai_assets.adapters.ledger.models.challenger_lineage`). Per
    (tenant, season) only the newest listed candidate's row is kept, so each field-season counts once.
    On a tenant connection: the tenant's own rows; on a ``cohort``-role connection: every current
    member's rows recorded for the cohort.
    """
    refs = [candidate_refs] if isinstance(candidate_refs, str) else list(candidate_refs)
    rank = {ref: i for i, ref in enumerate(refs)}
    rows = conn.execute(
        "SELECT p.tenant_id, p.season_id, p.candidate_ref, p.differences FROM promotion_evidence p"
        " JOIN seasons s USING (season_id) WHERE p.candidate_ref = ANY(%s) AND p.champion_ref = %s"
        " ORDER BY s.ordinal, p.tenant_id",
        (refs, champion_ref),
    ).fetchall()
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        key = (str(r["tenant_id"]), str(r["season_id"]))
        if key not in newest or rank[str(r["candidate_ref"])] > rank[str(newest[key]["candidate_ref"])]:
            newest[key] = r
    return [r for r in rows if newest[(str(r["tenant_id"]), str(r["season_id"]))] is r]


def evidence_tenants_by_season(conn: Conn, candidate_refs: str | Sequence[str]) -> dict[str, set[str]]:
    """Season → the tenants that recorded evidence for any of ``candidate_refs`` against any champion."""
    refs = [candidate_refs] if isinstance(candidate_refs, str) else list(candidate_refs)
    out: dict[str, set[str]] = {}
    for r in conn.execute(
        "SELECT DISTINCT season_id, tenant_id FROM promotion_evidence WHERE candidate_ref = ANY(%s)", (refs,)
    ).fetchall():
        out.setdefault(str(r["season_id"]), set()).add(str(r["tenant_id"]))
    return out
