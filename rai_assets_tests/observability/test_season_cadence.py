"""Each tenant's season cadence comes from its own calendar, not a platform-wide constant (OBS-5).

REQ: OBS-1, OBS-5
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from rai_assets.adapters.ledger import events as event_store
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.domain.cadence import DAY_S, SeasonDates, season_cadence_seconds
from rai_assets.domain.canonical import canonical_json
from rai_assets_tests.ledger.ledger_builders import ensure_season, setup_tenant

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULT = 183 * DAY_S


def _season(ordinal: int, harvest: str | None, arrival_days: float) -> SeasonDates:
    return SeasonDates(ordinal, harvest, T0 + timedelta(days=arrival_days))


def test_harvest_dates_give_the_cadence():
    # three rice seasons a year: ~120 days apart, landed whenever (arrival gaps are ignored)
    seasons = [_season(1, "2024-03-01", 0), _season(2, "2024-06-29", 0.001), _season(3, "2024-10-27", 400)]
    assert season_cadence_seconds(seasons, DEFAULT) == (120 * DAY_S, "harvest")


def test_arrivals_give_the_cadence_without_harvest_dates_but_a_backfill_does_not():
    yearly = [_season(1, None, 0), _season(2, None, 365), _season(3, None, 730)]
    assert season_cadence_seconds(yearly, DEFAULT) == (365 * DAY_S, "arrival")
    backfill = [_season(1, None, 0), _season(2, None, 0.0001), _season(3, None, 0.0002)]
    assert season_cadence_seconds(backfill, DEFAULT) == (DEFAULT, "default")
    assert season_cadence_seconds([_season(1, "2024-03-01", 0)], DEFAULT) == (DEFAULT, "default")
    assert season_cadence_seconds([_season(1, "2024-13-01", 0), _season(2, "not a date", 0)], DEFAULT)[1] == "default"


def test_the_ledger_dates_each_season_of_the_tenant_by_its_median_harvest(ledger: LedgerResource, suffix: str):
    tenant = f"cadence-{suffix}"
    setup_tenant(ledger, tenant, season="s01")
    ensure_season(ledger, "s02", ordinal=2, tenant=tenant)
    with ledger.connect(tenant) as conn:
        for season, days in (("s01", ("2025-02-27", "2025-03-01", "2025-03-02")), ("s02", ("2025-06-29",))):
            for i, day in enumerate(days):
                payload = canonical_json({"field_id": f"f{i}", "observed_on": day})
                conn.execute(
                    "INSERT INTO learning_events (tenant_id, season_id, field_id, payload, payload_sha256,"
                    " source_file, line_no) VALUES (%s, %s, %s, %s::json, %s, 'batch.jsonl', %s)",
                    (tenant, season, f"f{i}", payload.decode(), hashlib.sha256(payload).hexdigest(), i),
                )
        dates = event_store.season_dates(conn, tenant)
    assert [(d.ordinal, d.harvest) for d in dates] == [(1, "2025-03-01"), (2, "2025-06-29")]
    assert season_cadence_seconds(dates, DEFAULT) == (120 * DAY_S, "harvest")
