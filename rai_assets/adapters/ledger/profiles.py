"""Ledger access: season profiles in pgvector and the analog-season search (SNAP-4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rai_assets.adapters.ledger.resource import Conn
from rai_assets.domain.profile import vector_literal


@dataclass(frozen=True)
class AnalogSeason:
    """A historical season of the tenant and its L2 distance to the queried profile."""

    season_id: str
    distance: float
    n_events: int


def upsert_season_profile(conn: Conn, tenant: str, season: str, profile: Sequence[float], n_events: int) -> None:
    """Store (or refresh, as events arrive) the profile of the tenant's season."""
    conn.execute(
        "INSERT INTO season_profiles (tenant_id, season_id, n_events, profile) VALUES (%s, %s, %s, %s::vector)"
        " ON CONFLICT (tenant_id, season_id) DO UPDATE SET n_events = EXCLUDED.n_events,"
        " profile = EXCLUDED.profile, updated_at = now(), trace_id = EXCLUDED.trace_id",  # latest writer's trace
        (tenant, season, n_events, vector_literal(profile)),
    )


def nearest_seasons(conn: Conn, tenant: str, profile: Sequence[float], *, exclude: str, k: int = 3
                    ) -> list[AnalogSeason]:
    """The ``k`` seasons of ``tenant`` whose profiles are nearest (L2, HNSW index) to ``profile``."""
    rows = conn.execute(
        "SELECT season_id, n_events, profile <-> %s::vector AS distance FROM season_profiles"
        " WHERE tenant_id = %s AND season_id <> %s ORDER BY profile <-> %s::vector LIMIT %s",
        (vector_literal(profile), tenant, exclude, vector_literal(profile), k),
    ).fetchall()
    return [AnalogSeason(r["season_id"], float(r["distance"]), int(r["n_events"])) for r in rows]
