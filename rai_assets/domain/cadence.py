"""A tenant's season cadence from its own season calendar (OBS-5: no ingestion for longer than it).

Tenants farm on their own calendars (one rice season a year in one place, three in another), so the
"no ingestion" alert compares each tenant's silence with that tenant's cadence: the median gap
between its consecutive seasons, dated by

1. the median harvest date (``observed_on``, contract 1.1) of the season's events, else
2. the season's first arrival in the ledger, counting only gaps of at least :data:`MIN_ARRIVAL_GAP_S`
   (a tenant onboarding years of history at once lands its seasons seconds apart: that is a backfill,
   not a calendar),

and the platform default (``RAI_SEASON_CADENCE_DAYS``) while neither gives a gap.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, datetime
from itertools import pairwise

DAY_S = 86400.0
MIN_ARRIVAL_GAP_S = DAY_S


@dataclass(frozen=True)
class SeasonDates:
    """When one season of a tenant happened: its median harvest date (if reported) and first arrival."""

    ordinal: int
    harvest: str | None
    first_arrival: datetime


def _harvest_day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def season_cadence_seconds(seasons: list[SeasonDates], default_s: float) -> tuple[float, str]:
    """The tenant's season cadence in seconds and where it came from (``harvest``, ``arrival``, ``default``)."""
    ordered = sorted(seasons, key=lambda s: s.ordinal)
    harvests = [d for d in (_harvest_day(s.harvest) for s in ordered) if d is not None]
    harvest_gaps = [(b - a).days * DAY_S for a, b in pairwise(harvests) if b > a]
    if harvest_gaps:
        return float(statistics.median(harvest_gaps)), "harvest"
    arrivals = [s.first_arrival for s in ordered]
    arrival_gaps = [(b - a).total_seconds() for a, b in pairwise(arrivals)]
    arrival_gaps = [g for g in arrival_gaps if g >= MIN_ARRIVAL_GAP_S]
    if arrival_gaps:
        return float(statistics.median(arrival_gaps)), "arrival"
    return float(default_s), "default"
