"""Dashboards are code: the checked-in JSON is exactly what the generator writes. REQ: OBS-4."""

from __future__ import annotations

import json

from rai_assets.observability.dashboards import render
from rai_assets.observability.slo import SLOS
from rai_assets.resource_files import resources_dir

DIR = resources_dir() / "observability" / "dashboards"


def test_checked_in_dashboards_match_the_generator():
    generated = render()
    checked_in = {p.name: p.read_text() for p in DIR.glob("*.json")}
    assert sorted(checked_in) == sorted(generated), "run `make dashboards` and commit the result"
    for name, text in generated.items():
        assert checked_in[name] == text, f"{name} differs from the generator: run `make dashboards` and commit"


def test_dashboards_cover_fleet_tenant_and_slos():
    boards = {name: json.loads(text) for name, text in render().items()}
    assert {b["uid"] for b in boards.values()} == {"rai-fleet", "rai-tenant", "rai-slo"}
    exprs = {name: " ".join(t["expr"] for p in b["panels"] for t in p.get("targets") or [])
             for name, b in boards.items()}
    assert "ALERTS" in exprs["fleet-overview.json"] and "rai_ingested_events_total" in exprs["fleet-overview.json"]
    assert "rai_drift_psi_value" in exprs["tenant-drilldown.json"]
    assert "rai_promotion_decisions_total" in exprs["tenant-drilldown.json"]
    for slo in SLOS:
        assert slo.promql in exprs["loop-slos.json"]
    ids = [p["id"] for b in boards.values() for p in b["panels"]]
    assert all(isinstance(i, int) and i > 0 for i in ids)
