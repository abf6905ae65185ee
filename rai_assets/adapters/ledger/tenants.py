"""Ledger access: tenants (public keys, model spec) and the season calendar."""

from __future__ import annotations

from dataclasses import dataclass

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


def register_season(conn: Conn, season: str, ordinal: int | None = None, label: str = "") -> int:
    """Register a season in the calendar; returns its ordinal (order of seasons in time).

    ``ordinal`` defaults to one after the latest season. Re-registering is a no-op.

    Raises:
        InvalidIdentifierError: ``season`` is not a slug.
        ValueError: the season exists with a different ordinal, or the ordinal is taken.
    """
    season = season_id(season)
    row = conn.execute("SELECT ordinal FROM seasons WHERE season_id = %s", (season,)).fetchone()
    if row is not None:
        if ordinal is not None and row["ordinal"] != ordinal:
            raise ValueError(f"season {season!r} is registered with ordinal {row['ordinal']}, not {ordinal}")
        return int(row["ordinal"])
    if ordinal is None:
        top = conn.execute("SELECT coalesce(max(ordinal), 0) AS m FROM seasons").fetchone()
        ordinal = int(top["m"]) + 1 if top else 1
    taken = conn.execute("SELECT season_id FROM seasons WHERE ordinal = %s", (ordinal,)).fetchone()
    if taken is not None:
        raise ValueError(f"season ordinal {ordinal} is already used by {taken['season_id']!r}")
    conn.execute("INSERT INTO seasons (season_id, ordinal, label) VALUES (%s, %s, %s)", (season, ordinal, label))
    return ordinal


def season_order(conn: Conn) -> list[str]:
    """All registered season ids in time order."""
    return [r["season_id"] for r in conn.execute("SELECT season_id FROM seasons ORDER BY ordinal").fetchall()]


def _split_calendar(conn: Conn, season: str) -> tuple[list[str], list[str]]:
    order = season_order(conn)
    if season not in order:
        raise UnknownSeasonError(f"season {season!r} is not registered (rai-assets season register)")
    i = order.index(season)
    return order[:i], order[i + 1 :]


def seasons_before(conn: Conn, season: str) -> list[str]:
    """Season ids strictly earlier than ``season``, in time order.

    Raises:
        UnknownSeasonError: ``season`` is not registered.
    """
    return _split_calendar(conn, season)[0]


def seasons_after(conn: Conn, season: str) -> list[str]:
    """Season ids strictly later than ``season``, in time order.

    Raises:
        UnknownSeasonError: ``season`` is not registered.
    """
    return _split_calendar(conn, season)[1]
