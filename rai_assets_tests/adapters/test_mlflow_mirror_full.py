"""After a real partition run of a small tenant, MLflow shows the ledger's lifecycle (issue 10 item 4):
ledger tags and audit entry on the version, descriptions, held-out metrics linked to the candidate's
logged model, a linked evaluate run, non-zero trace ids, and the signed bias / drift JSON next to their
pictures. REQ: REG-1, REG-3, GOV-3, OBS-2.

Real pgserver ledger, local object store, MLflow on SQLite, ephemeral Dagster instance.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from rai_assets.adapters.ledger import artifacts
from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.lifecycle_mirror import mirror_lifecycle
from rai_assets.assets.bias_audit import bias_audit
from rai_assets.assets.dataset_snapshot import dataset_snapshot
from rai_assets.assets.drift_report import drift_report
from rai_assets.assets.learning_events import learning_events
from rai_assets.assets.model_evaluation import model_evaluation
from rai_assets.assets.model_promotion import model_promotion
from rai_assets.assets.partitions import partition_key
from rai_assets.assets.trained_model import trained_model
from rai_assets.demo.runner import land_and_register
from rai_assets_tests.helpers import panel_slice


@pytest.fixture
def small_tenant(resources, suffix, tmp_path: Path):
    instance = DagsterInstance.ephemeral()
    panel = panel_slice(["wargabinangun"], seasons=3, suffix=suffix)
    tenants, seasons, _ = land_and_register(resources["ledger"], resources["object_store"], instance, panel,
                                            tmp_path / "keys", bad_uploads=False)
    return instance, tenants[0], seasons


def _artifact(client, run_id: str, path: str, tmp_path: Path) -> bytes:
    return Path(client.download_artifacts(run_id, path, str(tmp_path))).read_bytes()


def test_a_partition_run_leaves_the_ledger_mirrored_in_mlflow_REG3_GOV3_OBS2(resources, small_tenant, tmp_path):
    instance, tenant, (s1, s2, s3) = small_tenant
    ledger, registry = resources["ledger"], resources["mlflow_registry"]
    for asset, season in [(learning_events, s1), (learning_events, s2), (learning_events, s3),
                          (dataset_snapshot, s2), (trained_model, s2), (model_evaluation, s2), (bias_audit, s2),
                          (model_promotion, s2), (drift_report, s3)]:
        assert materialize([asset], partition_key=partition_key(tenant, season), resources=resources,
                           instance=instance, selection=[asset]).success
    client = registry.client()
    name = registry.model_name(tenant)
    with ledger.connect(tenant) as conn:
        candidate = model_store.latest_model_for_partition(conn, tenant, s2)
        champion = model_store.get_champion(conn, tenant)
        audit = conn.execute("SELECT seq, entry_hash FROM audit_log WHERE model_id = %s AND action LIKE "
                             "'lifecycle.%%' ORDER BY seq DESC LIMIT 1", (candidate.model_id,)).fetchone()
        bias = artifacts.latest_signed(conn, "bias_audits", tenant, s2)
        drift = artifacts.latest_signed(conn, "drift_reports", tenant, s3)
    assert candidate is not None and candidate.validation_mae is not None and champion is not None

    # (a) the version carries its ledger state, latest lifecycle audit entry and held-out MAE
    mv = client.get_model_version(name, str(candidate.mlflow_version))
    assert mv.tags["ledger_state"] == candidate.state.value
    assert (mv.tags["ledger_audit_seq"], mv.tags["ledger_audit_entry_sha256"]) == (str(audit["seq"]),
                                                                                    audit["entry_hash"])
    assert float(mv.tags["validation_mae"]) == pytest.approx(candidate.validation_mae, abs=1e-3)
    # (b) descriptions: the version's season, window, kind, state; the model's tenant, spec, alias meanings
    assert f"season {s2}" in mv.description and s1 in mv.description and "kind tenant" in mv.description
    assert f"ledger state {candidate.state.value}" in mv.description
    model_description = client.get_registered_model(name).description
    assert tenant in model_description and "rice-yield" in model_description and "shadow =" in model_description
    if champion.mlflow_model_name == name:  # a tenant champion: its alias; a naive one lives elsewhere
        assert registry.aliases(name)["champion"] == champion.mlflow_version

    # (c) the held-out errors are metrics of the candidate's logged model; the evaluate run links both versions
    logged = client.get_logged_model(registry.logged_model_id(name, candidate.mlflow_version))
    heldout = {m.key: m.value for m in logged.metrics}
    assert heldout["heldout_mae"] == pytest.approx(candidate.validation_mae)
    assert {"heldout_rmse", "heldout_r2"} <= set(heldout)
    [evaluate_run] = client.search_runs([registry.experiment_id(tenant)], "tags.kind = 'evaluation'")
    assert evaluate_run.data.tags["candidate_model_version"] == f"models:/{name}/{candidate.mlflow_version}"
    assert evaluate_run.data.metrics["candidate_mae"] == pytest.approx(candidate.validation_mae)

    # (d) every run this partition logged carries a real (non-zero) trace id
    training_run = client.get_run(candidate.mlflow_run_id)
    for run in (training_run, evaluate_run):
        trace_id = run.data.tags["trace_id"]
        assert len(trace_id) == 32 and int(trace_id, 16) != 0, run.info.run_name

    # (e) the signed bias audit JSON sits on the candidate's training run, the drift report on the reference's
    stored = resources["object_store"].get_bytes(bias["object_key"])
    assert _artifact(client, candidate.mlflow_run_id, f"bias/{s2}/bias_audit.json", tmp_path / "b") == stored
    with ledger.connect(tenant) as conn:
        reference_id = conn.execute("SELECT reference_model_id FROM drift_reports WHERE object_key = %s",
                                    (drift["object_key"],)).fetchone()["reference_model_id"]
        reference = model_store.get_model(conn, reference_id)
    assert reference.mlflow_run_id, "the drift report of s03 has the s02 champion as its reference"
    assert _artifact(client, reference.mlflow_run_id, f"drift/{s3}/drift_report.json", tmp_path / "d") == (
        resources["object_store"].get_bytes(drift["object_key"]))

    assert mirror_lifecycle(ledger, registry, tenant) == []  # the promotion step already mirrored everything
