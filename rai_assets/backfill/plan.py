"""Which runs a season-wave backfill launches: plain planning, no Dagster."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rai_assets.domain.ids import season_id, tenant_id


@dataclass(frozen=True)
class Wave:
    """One run of a season-wave backfill: ``season`` for ``tenants`` (in the order they run).

    ``index`` counts the season's waves from 0; ``of`` is how many the season has.
    """

    season: str
    index: int
    of: int
    tenants: tuple[str, ...]

    @property
    def label(self) -> str:
        """``s03 wave 2/4`` — the run's ``rai/wave`` tag and what the driver prints."""
        return f"{self.season} wave {self.index + 1}/{self.of}"


def plan_waves(tenants: Sequence[str], seasons: Sequence[str], tenants_per_run: int,
               cohort_of: Mapping[str, str] | None = None) -> list[list[Wave]]:
    """The waves of a backfill, season by season: ``result[i]`` are the runs of ``seasons[i]``.

    Tenants are taken in sorted order and cut into runs of at most ``tenants_per_run``; the members of a
    cohort (``cohort_of``: tenant → cohort id) always share a run, in sorted order — their pooled model
    and pooled promotion evidence of the season are then built exactly as when the season's partitions run
    one by one — so a cohort larger than ``tenants_per_run`` makes a larger run of its own. Every season has
    the same waves. ``seasons`` must be in time order (the order of the tenants' calendars).

    Raises:
        ValueError: ``tenants_per_run`` < 1, no tenants or no seasons, or a tenant or season named twice.
        InvalidIdentifierError: a tenant or season id is not a slug.
    """
    if tenants_per_run < 1:
        raise ValueError(f"tenants_per_run must be at least 1, got {tenants_per_run}")
    if not tenants or not seasons:
        raise ValueError(f"a backfill needs tenants and seasons, got {len(tenants)} tenants and "
                         f"{len(seasons)} seasons")
    for what, ids in (("tenant", tenants), ("season", seasons)):
        seen: set[str] = set()
        for value in ids:
            if value in seen:
                raise ValueError(f"{what} {value!r} is named twice in the backfill")
            seen.add(value)
    checked_seasons = [season_id(s) for s in seasons]
    cohort_of = cohort_of or {}
    groups: dict[str, list[str]] = {}
    for tenant in sorted(tenant_id(t) for t in tenants):
        groups.setdefault(f"cohort:{cohort_of[tenant]}" if tenant in cohort_of else f"tenant:{tenant}",
                          []).append(tenant)
    chunks: list[list[str]] = []
    current: list[str] = []
    for group in sorted(groups.values(), key=lambda g: g[0]):
        if current and len(current) + len(group) > tenants_per_run:
            chunks.append(current)
            current = []
        current = current + group
    if current:
        chunks.append(current)
    return [[Wave(season, i, len(chunks), tuple(chunk)) for i, chunk in enumerate(chunks)]
            for season in checked_seasons]
