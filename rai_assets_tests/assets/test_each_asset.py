"""Each asset materialized for real, one after the other, on one small tenant (3 seasons of one village).

Real pgserver ledger, local object store, MLflow on SQLite, ephemeral Dagster instance.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from rai_assets.adapters.ledger import artifacts
from rai_assets.adapters.ledger import models as model_store
from rai_assets.assets.bias_audit import bias_audit
from rai_assets.assets.dataset_snapshot import dataset_snapshot
from rai_assets.assets.drift_report import drift_report
from rai_assets.assets.learning_events import learning_events
from rai_assets.assets.model_evaluation import model_evaluation
from rai_assets.assets.model_promotion import model_promotion
from rai_assets.assets.partitions import partition_key
from rai_assets.assets.trained_model import trained_model
from rai_assets.assets.yield_forecasts import yield_forecasts
from rai_assets.demo.runner import land_and_register
from rai_assets.domain.lifecycle import ModelState
from rai_assets.domain.signing_envelope import verify_document
from rai_assets_tests.helpers import panel_slice


def _check(result, name: str, partition: str):
    """The one evaluation of asset check ``name`` in ``result``, on ``partition`` (checks are partitioned)."""
    found = [c for c in result.get_asset_check_evaluations() if c.check_name == name]
    assert len(found) == 1, f"check {name} was not evaluated"
    assert found[0].partition == partition
    return found[0]


def _meta(result, node: str) -> dict:
    mats = result.asset_materializations_for_node(node)
    assert len(mats) == 1, f"{node} was not materialized"
    return {k: v.value for k, v in mats[0].metadata.items()}


@pytest.fixture
def small_tenant(resources, suffix, tmp_path: Path):
    instance = DagsterInstance.ephemeral()
    panel = panel_slice(["wargabinangun"], seasons=3, suffix=suffix)
    tenants, seasons, _ = land_and_register(resources["ledger"], resources["object_store"], instance, panel,
                                            tmp_path / "keys", bad_uploads=False)
    return instance, tenants[0], seasons, panel


def test_each_asset_materializes_on_a_small_tenant(resources, small_tenant):
    instance, tenant, seasons, panel = small_tenant
    s1, s2, _s3 = seasons
    key2 = partition_key(tenant, s2)

    def run(asset, season):
        result = materialize([asset], partition_key=partition_key(tenant, season), resources=resources,
                             instance=instance, selection=[asset])
        assert result.success
        return result

    # learning events: every village-season row accepted
    for season in seasons:
        meta = _meta(run(learning_events, season), "learning_events")
        assert meta["accepted"] == int(((panel["season"] == season)).sum())
        assert meta["rejected"] == 0

    # first season: no training window, nothing materialized
    first = run(dataset_snapshot, s1)
    assert first.asset_materializations_for_node("dataset_snapshot") == []

    # snapshot of s02 = the events of s01; GX check passed
    snap = run(dataset_snapshot, s2)
    meta = _meta(snap, "dataset_snapshot")
    assert meta["row_count"] == int((panel["season"] == s1).sum())
    assert meta["source_seasons"] == s1
    checks = snap.get_asset_check_evaluations()
    assert len(checks) == 1 and checks[0].passed
    object_path = Path(meta["object"].removeprefix("file://"))
    assert object_path.is_file() and not (object_path.stat().st_mode & 0o222), "snapshot must be read-only (WORM)"

    # trained model: VALIDATED in the ledger, registered in MLflow with the lineage tags
    meta = _meta(run(trained_model, s2), "trained_model")
    assert meta["state"] == "VALIDATED" and meta["reused"] is False
    with resources["ledger"].connect(tenant) as conn:
        model = model_store.latest_model_for_partition(conn, tenant, s2)
        history = model_store.state_history(conn, model.model_id)
    assert [to for _, to, _ in history] == ["DRAFT", "TRAINING", "VALIDATED"]
    client = resources["mlflow_registry"].client()
    mv = client.get_model_version(f"yield-{tenant}", str(model.mlflow_version))
    assert mv.tags["snapshot_root"] == model.snapshot_root == meta["snapshot_root"]
    assert mv.tags["tenant"] == tenant and mv.tags["season"] == s2 and mv.tags["code_version"]
    run_tags = client.get_run(model.mlflow_run_id).data.tags
    assert len(run_tags["trace_id"]) == 32 and run_tags["dagster_run_id"]

    # evaluation on s02 (never seen): naive/Cobb-Douglas compared; promotion is model_promotion's
    evaluated = run(model_evaluation, s2)
    meta = _meta(evaluated, "model_evaluation")
    assert _check(evaluated, "candidate_beats_champion_and_naive", key2).passed == meta["beats_naive"]
    assert meta["holdout_rows"] == int((panel["season"] == s2).sum())
    assert meta["candidate_mae_kg_ha"] > 0 and meta["naive_mae_kg_ha"] > 0
    beats_naive = meta["beats_naive"]
    assert meta["promotion"].startswith("bootstrap candidate" if beats_naive else "not a bootstrap candidate")
    with resources["ledger"].connect(tenant) as conn:
        assert model_store.get_champion(conn, tenant) is None
        model = model_store.get_model(conn, model.model_id)
    assert round(model.validation_mae, 1) == meta["candidate_mae_kg_ha"]  # metadata rounded to 0.1 kg/ha

    # bias audit: signed, stored, verifiable
    audited = run(bias_audit, s2)
    meta = _meta(audited, "bias_audit")
    stored = Path(meta["object"].removeprefix("file://")).read_bytes()
    doc = verify_document(stored, resources["signer"].key().public_key_b64)
    assert doc.body_sha256 == meta["sha256"] and doc.body["kind"] == "bias_audit"
    assert {s["subgroup"] for s in doc.body["audit"]["subgroups"]} == {"tenure", "variety", "bimas",
                                                                        "farm_size_class"}
    bias_passed = doc.body["audit"]["verdict"] == "pass"
    bias_check = _check(audited, "bias_audit_passed", key2)
    assert bias_check.passed == (bias_passed and meta["signature_verified"])
    assert bias_check.severity.value == ("WARN" if doc.body["audit"]["verdict"] == "inconclusive" else "ERROR")

    # drift report: no champion yet, so no reference
    drifted = run(drift_report, s2)
    meta = _meta(drifted, "drift_report")
    assert _check(drifted, "drift_not_actionable", key2).passed  # nothing to compare: nothing actionable
    doc = verify_document(Path(meta["object"].removeprefix("file://")).read_bytes())
    assert meta["verdict"] == "no_reference"

    # forecasts before any champion exists: nothing is served, and the asset says why
    unserved = run(yield_forecasts, s2)
    meta = _meta(unserved, "yield_forecasts")
    assert meta["fields"] == 0 and "no champion" in meta["status"]
    assert not _check(unserved, "forecasts_complete", key2).passed

    # promotion: the bootstrap champion needs to beat naive AND a passed bias audit (REG-5)
    meta = _meta(run(model_promotion, s2), "model_promotion")
    with resources["ledger"].connect(tenant) as conn:
        champion = model_store.get_champion(conn, tenant)
    if beats_naive and bias_passed:
        assert champion is not None and champion.model_id == model.model_id
        assert resources["mlflow_registry"].champion_version(tenant) == model.mlflow_version
    else:  # REG-10: the naive baseline, a governed model version, serves instead of nothing
        assert champion is not None and champion.kind == "naive" and champion.state is ModelState.CHAMPION
        assert meta["decision"].startswith("the naive baseline serves: bootstrap refused")

    # forecasts: one per field of the season, by the champion; a re-run never rewrites served forecasts
    served = run(yield_forecasts, s2)
    assert _check(served, "forecasts_complete", key2).passed
    meta = _meta(served, "yield_forecasts")
    assert meta["fields"] == int((panel["season"] == s2).sum()) and meta["served_by"] == champion.mlflow_ref
    assert 500 < meta["mean_forecast_kg_ha"] < 15000
    again = _meta(run(yield_forecasts, s2), "yield_forecasts")
    assert again["fields"] == meta["fields"] and again["status"].startswith("already served")
    with resources["ledger"].connect(tenant) as conn:
        assert artifacts.latest_signed(conn, "drift_reports", tenant, s2) is not None
