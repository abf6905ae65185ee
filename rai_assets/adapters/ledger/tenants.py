"""Ledger access: tenants (public keys, model spec) and each tenant's season calendar."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from rai_assets.adapters.ledger.resource import Conn
from rai_assets.domain.ids import season_id, tenant_id
from rai_assets.domain.signing import parse_public_key


class UnknownTenantError(LookupError):
    """The tenant id is not registered in the ledger."""


class UnknownSeasonError(LookupError):
    """The season id is not registered in the ledger."""


@dataclass(frozen=True)
class Tenant:
    """A registered tenant: its Ed25519 public key (base64) and model spec id."""

    tenant_id: str
    public_key: str
    model_spec: str
    display_name: str


def register_tenant(conn: Conn, tenant: str, public_key: str, model_spec: str, display_name: str = "") -> bool:
    """Register (or re-register with the same key) a tenant. Returns True when newly added.

    Raises:
        InvalidIdentifierError: ``tenant`` is not a slug.
        ValueError: the tenant exists with a different public key (key rotation is an explicit act).
        SignatureError: ``public_key`` is not a 32-byte Ed25519 key in URL-safe base64.
    """
    tenant = tenant_id(tenant)
    parse_public_key(public_key)
    row = conn.execute("SELECT public_key FROM tenants WHERE tenant_id = %s", (tenant,)).fetchone()
    if row is not None:
        if row["public_key"] != public_key:
            raise ValueError(f"tenant {tenant!r} is already registered with a different public key")
        conn.execute(
            "UPDATE tenants SET model_spec = %s, display_name = %s WHERE tenant_id = %s",
            (model_spec, display_name, tenant),
        )
        return False
    conn.execute(
        "INSERT INTO tenants (tenant_id, public_key, model_spec, display_name) VALUES (%s, %s, %s, %s)",
        (tenant, public_key, model_spec, display_name),
    )
    return True


def get_tenant(conn: Conn, tenant: str) -> Tenant:
    """The registered tenant ``tenant``.

    Raises:
        UnknownTenantError: not registered.
    """
    row = conn.execute(
        "SELECT tenant_id, public_key, model_spec, display_name FROM tenants WHERE tenant_id = %s", (tenant,)
    ).fetchone()
    if row is None:
        raise UnknownTenantError(f"tenant {tenant!r} is not registered (rai-assets tenant register)")
    return Tenant(**row)


def register_season(conn: Conn, tenant: str, season: str, ordinal: int | None = None, *, follows: str | None = None,
                    label: str = "") -> int:
    """Add ``season`` to ``tenant``'s calendar; returns its 1-based position there (issue 8 item 3, GOV-1).

    ``conn`` must be a session of ``tenant`` (or the owner's). Writes go through the ledger's SECURITY DEFINER
    function ``rai_register_season`` (migration 0011): tenant sessions cannot write ``seasons`` or
    ``season_calendar`` themselves. Call it only for a season whose upload verified against the tenant's key,
    or from the governed ``rai-assets season register`` command. ``ordinal`` places the season at that
    value of the tenant's calendar, ``follows`` right after that season; with neither it goes after the
    tenant's latest. Re-registering in agreement with the calendar is a no-op. A season id new to the
    ledger is also added to the global registry (its ordinal there orders only a cohort's pooled rows).

    Raises:
        InvalidIdentifierError: ``tenant`` or ``season`` is not a slug.
        ValueError: both ``ordinal`` and ``follows``; the season is registered elsewhere in the calendar; the
            ordinal is taken by another season of the tenant.
        UnknownSeasonError: ``follows`` is not in the tenant's calendar.
        psycopg.errors.InsufficientPrivilege: ``conn`` is another tenant's session.
    """
    tenant = tenant_id(tenant)
    season = season_id(season)
    if follows is not None:
        follows = season_id(follows)
    try:
        row = conn.execute("SELECT rai_register_season(%s, %s, %s, %s, %s) AS pos",
                           (tenant, season, ordinal, follows, label)).fetchone()
    except psycopg.errors.NoDataFound as exc:
        raise UnknownSeasonError(f"season {follows!r} is not in tenant {tenant!r}'s calendar") from exc
    except (psycopg.errors.InvalidParameterValue, psycopg.errors.UniqueViolation) as exc:
        raise ValueError(f"cannot register season {season!r} for tenant {tenant!r}: {exc.diag.message_primary}"
                         ) from exc
    assert row is not None
    return int(row["pos"])


def season_order(conn: Conn, tenant: str) -> list[str]:
    """``tenant``'s registered season ids in time order (its own calendar; row-level security)."""
    return [r["season_id"] for r in conn.execute(
        "SELECT season_id FROM season_calendar WHERE tenant_id = %s ORDER BY ordinal", (tenant,)).fetchall()]


def _split_calendar(conn: Conn, tenant: str, season: str) -> tuple[list[str], list[str]]:
    order = season_order(conn, tenant)
    if season not in order:
        raise UnknownSeasonError(f"season {season!r} is not in tenant {tenant!r}'s calendar "
                                 "(a verified upload or rai-assets season register adds it)")
    i = order.index(season)
    return order[:i], order[i + 1 :]


def seasons_before(conn: Conn, tenant: str, season: str) -> list[str]:
    """``tenant``'s season ids strictly earlier than ``season``, in time order.

    Raises:
        UnknownSeasonError: ``season`` is not in the tenant's calendar.
    """
    return _split_calendar(conn, tenant, season)[0]


def seasons_after(conn: Conn, tenant: str, season: str) -> list[str]:
    """``tenant``'s season ids strictly later than ``season``, in time order.

    Raises:
        UnknownSeasonError: ``season`` is not in the tenant's calendar.
    """
    return _split_calendar(conn, tenant, season)[1]
