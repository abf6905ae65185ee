"""A second crop is configuration only (issue 10 item 7): a barley tenant, end to end.

The barley spec (``resources/model_specs/barley-yield-v1.json``) names its own contract
(``resources/contracts/barley-event/1.0.0.json``: a field is a variety on a site, the harvest is in
bushels, the area in acres), its expectations suite (``resources/expectations/barley_snapshot.json``)
and its target unit (``bu/ac``). A barley dataset is generated here (3 seasons × 120 fields), landed as
signed uploads the way the demo lands RiceFarms, and run through the tenant-season job: nothing in
``rai_assets`` knows about barley.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from dagster import AssetKey, DagsterInstance

from rai_assets.adapters.ledger import events as event_store
from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.ledger.tenants import register_season, register_tenant
from rai_assets.assets.common import registrable_spec
from rai_assets.assets.partitions import add_partitions, partition_key
from rai_assets.demo.ricefarms import tenant_key_pair, write_batch
from rai_assets.domain.canonical import canonical_json
from rai_assets.domain.contract import reader_for_major
from rai_assets.domain.ingestion import build_manifest, process_batch
from rai_assets.domain.model_spec import ModelSpecError, parse_model_spec
from rai_assets.domain.signing import KeyPair
from rai_assets.governance.listing import list_models
from rai_assets.resource_files import resources_dir
from rai_assets.serving.export import export_forecasts
from rai_assets_tests.loop.synthetic_tenant import run_seasons

SPEC_ID = "barley-yield-v1"
SEASONS = ["s01", "s02", "s03"]
VARIETIES = {"conlon": 72.0, "pinnacle": 84.0, "lcs-genie": 92.0, "other": 64.0}  # base yield, bu/ac
SOILS = {"loam": 6.0, "clay": 0.0, "sandy": -9.0}
REGIONS = ["north", "central", "south"]
N_SITES = 30  # × 4 varieties = 120 fields a season
PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "rai_assets"


def barley_events(tenant: str, season: str, ordinal: int) -> list[dict]:
    """One season of plausible barley fields of ``tenant``: every variety on every site.

    Yield (bu/ac) = variety base + 22 if irrigated + soil effect + 0.12 · (N lb/ac - 80)
    + 1.2 · (rain in - 14) on dry sites + season effect + N(0, 5²), clipped to [15, 180];
    bushels = yield × acres.
    """
    rng = np.random.default_rng(1000 + ordinal)
    season_rain = 14.0 + 3.0 * rng.standard_normal()
    season_gdd = float(rng.uniform(2300, 2800))
    events = []
    for site in range(N_SITES):
        site_rng = np.random.default_rng(site)  # a site keeps its region, soil, irrigation and area every season
        region = REGIONS[site % 3]
        soil = list(SOILS)[int(site_rng.integers(0, 3))]
        irrigated = "yes" if site_rng.random() < 0.4 else "no"
        acres = float(np.round(site_rng.uniform(15, 320), 1))
        for variety, base in VARIETIES.items():
            n_per_acre = rng.uniform(50, 120)
            rain = max(0.0, season_rain + rng.normal(0, 1.5))
            bu_ac = (base + (22.0 if irrigated == "yes" else 1.2 * (rain - 14.0)) + SOILS[soil]
                     + 0.12 * (n_per_acre - 80.0) + 3.0 * (ordinal - 2) + rng.normal(0, 5.0))
            bu_ac = float(np.clip(bu_ac, 15.0, 180.0))
            events.append({
                "schema_version": "1.0.0", "tenant_id": tenant, "season_id": season,
                "field_id": f"site-{site:02d}-{variety}",
                "site": {"id": f"site-{site:02d}", "region": region, "soil": soil, "area_acres": acres,
                         "irrigated": irrigated},
                "variety": variety,
                "inputs": {"seed_lb": round(acres * rng.uniform(90, 110), 1),
                           "nitrogen_lb": round(acres * n_per_acre, 1),
                           "phosphate_lb": round(acres * rng.uniform(20, 45), 1),
                           "rainfall_in": round(rain, 2), "growing_degree_days": round(season_gdd, 0)},
                "harvest": {"bushels": round(bu_ac * acres, 1), "test_weight_lb_per_bu": 48.0},
            })
    return events


def rice_shaped_event(tenant: str, season: str) -> dict:
    """A RiceFarms learning event (contract learning-event 1.0.0) uploaded by the barley tenant."""
    return {
        "schema_version": "1.0.0", "tenant_id": tenant, "season_id": season, "field_id": "farm-1",
        "farm": {"size_ha": 1.2, "tenure": "owner", "variety": "high", "bimas": "no"},
        "inputs": {"seed_kg": 40.0, "urea_kg": 120.0, "phosphate_kg": 20.0, "pesticide_rp": 0.0,
                   "hired_labor_h": 300.0, "family_labor_h": 200.0, "total_labor_h": 500.0, "wage_rp_per_h": 30.0,
                   "seed_price_rp_per_kg": 90.0, "urea_price_rp_per_kg": 80.0, "phosphate_price_rp_per_kg": 100.0},
        "harvest": {"gross_output_kg": 4800.0, "net_output_kg": 4000.0, "price_rp_per_kg": 120.0},
    }


def test_a_barley_tenant_is_configuration_only_ing1_ing4_snap3_reg1(resources, suffix, tmp_path):
    """ING-1, ING-4, SNAP-3, REG-1: a tenant registered with barley-yield-v1 is ingested under the barley
    contract (a rice-shaped upload is dead-lettered with a reason naming the contract), its snapshots pass
    the barley suite, a model is trained under the barley spec, and its forecasts are stored and exported in
    bushels/acre with the unit recorded."""
    instance = DagsterInstance.ephemeral()
    tenant = f"barley-coop-{suffix}"
    keys = tmp_path / "keys"
    spec = registrable_spec(SPEC_ID)  # the spec, its contract and its suite are shipped
    assert (spec.contract_name, spec.contract_major, spec.expectations_suite, spec.target_unit) == (
        "barley-event", 1, "barley_snapshot", "bu/ac")

    key = tenant_key_pair(keys, tenant)
    store = resources["object_store"]
    per_season = {}
    for ordinal, season in enumerate(SEASONS, start=1):
        events = barley_events(tenant, season, ordinal)
        per_season[season] = events
        write_batch(store, tenant, season, f"barley-{season}", [canonical_json(e) for e in events], key,
                    contract=spec.contract_name)
    # two rice-shaped uploads by the barley tenant: declared as barley events, and declared as rice events
    rice_line = canonical_json(rice_shaped_event(tenant, SEASONS[0]))
    write_batch(store, tenant, SEASONS[0], "rice-as-barley", [rice_line], key, contract=spec.contract_name)
    write_batch(store, tenant, SEASONS[0], "rice-upload", [rice_line], key)  # manifest: learning-event
    with resources["ledger"].connect(tenant) as conn:
        register_tenant(conn, tenant, key.public_key_b64, SPEC_ID, display_name="Barley cooperative")
        for season in SEASONS:  # the tenant's own calendar (issue 8 item 3)
            register_season(conn, tenant, season, label=f"barley season {season}")
    add_partitions(instance, tenants=[tenant], seasons=SEASONS)

    run_seasons(resources, instance, tenant, SEASONS)

    with resources["ledger"].connect(tenant) as conn:
        # every barley line accepted under barley-event; the rice-shaped lines dead-lettered, naming the contract
        for season in SEASONS:
            assert event_store.count_events(conn, tenant, season) == len(per_season[season]) == 4 * N_SITES
        stored = event_store.load_events(conn, tenant, [SEASONS[0]])
        assert {e["variety"] for e in stored} == set(VARIETIES) and all("site" in e for e in stored)
        dead = event_store.dead_letters(conn, tenant)
        assert len(dead) == 2 and {d["season_id"] for d in dead} == {SEASONS[0]}
        by_file = {d["source_file"].rsplit("/", 1)[-1]: d["reason"] for d in dead}
        assert by_file["rice-as-barley.jsonl"].startswith("contract barley-event 1.0.0:"), by_file
        assert "learning-event" in by_file["rice-upload.jsonl"] and "barley-event" in by_file["rice-upload.jsonl"]
        assert all(d["raw_bytes"] == rice_line for d in dead)

        # the snapshots were validated with the barley suite, and passed
        summaries = conn.execute("SELECT season_id, validation_passed, validation_summary FROM dataset_snapshots"
                                 " WHERE tenant_id = %s ORDER BY season_id", (tenant,)).fetchall()
        assert [r["season_id"] for r in summaries] == SEASONS[1:]
        assert all(r["validation_passed"] and r["validation_summary"]["suite"] == "barley_snapshot"
                   for r in summaries)

        # models trained under the barley spec; one became the champion and beat the naive forecast
        trained = [model_store.latest_model_for_partition(conn, tenant, s) for s in SEASONS[1:]]
        assert all(m is not None and m.spec_sha256 == spec.sha256 for m in trained)
        champion = model_store.get_champion(conn, tenant)
        assert champion is not None and champion.spec_sha256 == spec.sha256

        # forecasts of the unseen season stored in bushels per acre, the unit on every row
        rows = conn.execute("SELECT role, unit, predicted_yield_kg_ha AS value FROM yield_forecasts"
                            " WHERE tenant_id = %s AND season_id = %s", (tenant, SEASONS[2])).fetchall()
        assert {r["role"] for r in rows} >= {"champion"}
        assert {r["unit"] for r in rows} == {"bu/ac"}
        champion_values = np.array([r["value"] for r in rows if r["role"] == "champion"])
        assert len(champion_values) == 4 * N_SITES
        assert 40.0 < champion_values.mean() < 130.0 and champion_values.min() > 0.0  # bu/ac, not kg/ha

    # the Dagster metadata of the last season's forecasts and evaluation is labelled with the spec's unit
    forecasts = instance.get_latest_materialization_event(AssetKey("yield_forecasts")).asset_materialization
    evaluation = instance.get_latest_materialization_event(AssetKey("model_evaluation")).asset_materialization
    assert forecasts.partition == evaluation.partition == str(partition_key(tenant, SEASONS[2]))
    assert forecasts.metadata["unit"].value == evaluation.metadata["unit"].value == "bu/ac"
    assert "forecast bu/ac" in forecasts.metadata["preview"].value
    assert "| MAE (bu/ac) | RMSE (bu/ac) |" in evaluation.metadata["comparison"].value

    # every label of a yield or an MAE says the spec's unit, never a hard-coded kg/ha: the bias audit's
    # tables and reasons, its signed body, the manager's listing and MLflow's model description
    audit = instance.get_latest_materialization_event(AssetKey("bias_audit")).asset_materialization
    assert audit.partition == str(partition_key(tenant, SEASONS[2]))
    per_group, reasons = audit.metadata["per_group"].value, audit.metadata["reasons"].value
    assert "| MAE (bu/ac) [95% CI] |" in per_group and "Signed residual gap (bu/ac)" in per_group
    assert "kg/ha" not in per_group + reasons
    with resources["ledger"].connect(tenant) as conn:
        bodies = conn.execute("SELECT body FROM bias_audits WHERE tenant_id = %s", (tenant,)).fetchall()
        reasons_logged = [r["reason"] for r in conn.execute(
            "SELECT reason FROM audit_log WHERE tenant_id = %s AND reason IS NOT NULL", (tenant,)).fetchall()]
    assert bodies and {b["body"]["audit"]["unit"] for b in bodies} == {"bu/ac"}
    assert any("bu/ac" in r for r in reasons_logged) and not any("kg/ha" in r for r in reasons_logged), \
        [r for r in reasons_logged if "kg/ha" in r]
    listing = list_models(resources["ledger"], tenant)
    assert listing and {r.unit for r in listing} == {"bu/ac"}
    registry = resources["mlflow_registry"]
    description = registry.client().get_registered_model(registry.model_name(tenant)).description
    assert "Crop-yield model (bu/ac)" in description

    # the agronomists' export names the unit per row
    out = tmp_path / "forecasts.csv"
    assert export_forecasts(resources["ledger"], [tenant], out) == 4 * N_SITES
    with out.open(encoding="utf-8") as fh:
        exported = list(csv.DictReader(fh))
    assert {r["unit"] for r in exported} == {"bu/ac"}
    assert {r["season"] for r in exported} == {SEASONS[2]}


def test_no_code_path_knows_the_second_crop():
    """Issue 10 item 7: the barley tenant above ran on configuration only — no module of the code location
    names barley, bushels or acres (its spec, contract and suite are files under resources/)."""
    words = ("barley", "bushel", "bu/ac", "acre")
    offenders = [f"{path.relative_to(PACKAGE_ROOT.parent)}: {word}"
                 for path in sorted(PACKAGE_ROOT.rglob("*.py"))
                 for word in words if word in path.read_text(encoding="utf-8").lower()]
    assert offenders == []
    resources = PACKAGE_ROOT.parent / "resources"
    for shipped in ("model_specs/barley-yield-v1.json", "contracts/barley-event/1.0.0.json",
                    "expectations/barley_snapshot.json"):
        assert (resources / shipped).is_file(), shipped


def test_a_spec_names_its_contract_and_suite_and_old_specs_keep_the_rice_ones_ing1_snap3():
    """ING-1, SNAP-3: ``contract``/``expectations`` are read from the spec; a spec without them (rice-yield-v1,
    whose file is unchanged) gets learning-event 1.x and dataset_snapshot; malformed values are named."""
    rice = registrable_spec("rice-yield-v1")
    assert (rice.contract_name, rice.contract_major, rice.expectations_suite, rice.target_unit) == (
        "learning-event", 1, "dataset_snapshot", "kg/ha")
    doc = json.loads((resources_dir() / "model_specs" / f"{SPEC_ID}.json").read_text(encoding="utf-8"))
    with pytest.raises(ModelSpecError, match="contract: 'major' must be int"):
        parse_model_spec({**doc, "contract": {"name": "barley-event", "major": "1"}}, where="x.json")
    with pytest.raises(ModelSpecError, match=re.escape("x.json contract: name '../rice' is not a folder name")):
        parse_model_spec({**doc, "contract": {"name": "../rice", "major": 1}}, where="x.json")
    with pytest.raises(ModelSpecError, match=re.escape("x.json: expectations 'Barley Suite' is not a suite file stem")):
        parse_model_spec({**doc, "expectations": "Barley Suite"}, where="x.json")


def test_registration_refuses_a_spec_whose_files_are_not_shipped(tmp_path, monkeypatch):
    """A tenant is registered only with a spec whose contract and suite exist (the message names the file)."""
    import shutil

    from rai_assets.assets import common
    from rai_assets.domain.contract import ContractError

    root = tmp_path / "resources"
    shutil.copytree(resources_dir() / "model_specs", root / "model_specs")
    shutil.copytree(resources_dir() / "contracts", root / "contracts")
    (root / "expectations").mkdir()
    monkeypatch.setenv("RAI_RESOURCES_DIR", str(root))
    common.spec_by_id.cache_clear()
    try:
        missing = r"names expectations suite 'barley_snapshot', but \S+/barley_snapshot\.json does not exist"
        with pytest.raises(ValueError, match=missing):
            registrable_spec(SPEC_ID)
        doc = json.loads((root / "model_specs" / f"{SPEC_ID}.json").read_text(encoding="utf-8"))
        (root / "model_specs" / "oats-yield-v1.json").write_text(
            json.dumps({**doc, "spec": "oats-yield", "contract": {"name": "oats-event", "major": 1}}), encoding="utf-8")
        with pytest.raises(ContractError, match="no oats-event contract of major 1"):
            registrable_spec("oats-yield-v1")
    finally:
        common.spec_by_id.cache_clear()


def test_a_manifest_declaring_another_contract_is_dead_lettered_whole_ing1_ing4():
    """ING-1, ING-4: a barley tenant's batch whose signed manifest declares the rice contract is rejected as a
    whole (its reason names both contracts); the same lines under a barley manifest meet the barley schema."""
    key = KeyPair.generate()
    reader = reader_for_major(resources_dir() / "contracts", "barley-event", 1)
    lines = [canonical_json(e) for e in barley_events("t", "s01", 1)[:3]]
    data = b"".join(line + b"\n" for line in lines)
    common = {"tenant": "t", "season": "s01", "data_source": "b.jsonl", "data": data,
              "public_key_b64": key.public_key_b64, "contract": reader}
    as_rice = build_manifest("t", "s01", "b.jsonl", lines, "1.0.0", key)
    out = process_batch(manifest_bytes=canonical_json(as_rice), **common)
    assert out.events == [] and len(out.dead_letters) == 3
    assert out.dead_letters[0].reason == ("manifest declares contract 'learning-event', but tenant 't''s model spec "
                                          "reads contract 'barley-event' 1.x")
    as_barley = build_manifest("t", "s01", "b.jsonl", lines, "1.0.0", key, contract="barley-event")
    out = process_batch(manifest_bytes=canonical_json(as_barley), **common)
    assert len(out.events) == 3 and out.dead_letters == []
