"""``rai-assets integrity verify``, governance actions that re-verify their evidence, and a reconcile
that survives a deleted MLflow version — on the real ledger, object store and MLflow registry.
REQ: GOV-7, GOV-6, REG-5, SNAP-2 (issue 8, item 11)."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from rai_assets.adapters.ledger import artifacts
from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.ledger.resource import APP_ROLE, LedgerResource, with_user
from rai_assets.adapters.object_store import ObjectStoreResource, tenant_key
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.adapters.signer import SignerResource
from rai_assets.assets.signed_reports import sign_and_store
from rai_assets.cli import main as cli
from rai_assets.domain.canonical import sha256_hex
from rai_assets.domain.lifecycle import ModelState
from rai_assets.governance import actions, integrity
from rai_assets_tests.governance.builders import setup_tenant


def stored_model(ledger: LedgerResource, registry: MlflowRegistryResource, store: ObjectStoreResource,
                 signer: SignerResource, tenant: str, season: str) -> model_store.ModelVersion:
    """A VALIDATED model whose snapshot, bias audit, drift report and evaluation are really stored, with
    an MLflow version carrying the project's tags."""
    buf = io.BytesIO()
    pd.DataFrame({"field_id": ["f1", "f2", "f3"], "yield_kg_ha": [4000.0, 4100.0, 3900.0]}).to_parquet(
        buf, index=False, engine="pyarrow")
    root = sha256_hex(f"{tenant}/{season}".encode())
    key = tenant_key(tenant, "snapshots", season, f"{root}.parquet")
    store.put_bytes(key, buf.getvalue(), write_once=True)
    client = registry.client()
    name = registry.model_name(tenant)
    if not client.search_registered_models(f"name='{name}'"):
        client.create_registered_model(name)
    mv = client.create_model_version(name, source=f"file:///tmp/{tenant}-{season}",
                                     tags={"tenant": tenant, "season": season, "snapshot_root": root,
                                           "code_version": "code", "spec_sha256": root})
    with ledger.connect(tenant) as conn:
        artifacts.record_snapshot(conn, tenant=tenant, season=season, merkle_root=root, object_key=key, row_count=3,
                                  source_seasons=["s01"], validation_passed=True, validation_summary={},
                                  profile=[0.0] * 64, run_id="test")
        model = model_store.create_draft(conn, tenant, season, root, "code", root, "cpu", "test")
        model = model_store.transition(conn, model, ModelState.TRAINING, reason="test")
        model = model_store.transition(conn, model, ModelState.VALIDATED, reason="test", mlflow_model_name=name,
                                       mlflow_version=int(mv.version))
        artifacts.record_evaluation(conn, tenant=tenant, season=season, model_id=model.model_id,
                                    champion_model_id=None, body={"mae_kg_ha": 123.5, "model": model.model_id},
                                    run_id="test")
    for kind in ("bias-audits", "drift-reports"):
        doc, object_key = sign_and_store(store, signer, tenant=tenant, season=season, kind=kind,
                                         body={"kind": kind, "model_id": model.model_id, "passed": True})
        with ledger.connect(tenant) as conn:
            if kind == "bias-audits":
                artifacts.record_bias_audit(conn, tenant=tenant, season=season, model_id=model.model_id, doc=doc,
                                            object_key=object_key, passed=True, run_id="test")
                artifacts.record_integrity_check(conn, tenant=tenant, kind="bias_audit", sha256=doc.body_sha256,
                                                 object_key=object_key, verified=True, detail="test")
            else:
                artifacts.record_drift_report(conn, tenant=tenant, season=season, reference_model_id=model.model_id,
                                              doc=doc, object_key=object_key, verdict="no_drift", max_psi=0.01,
                                              run_id="test")
    return model


def overwrite(store: ObjectStoreResource, key: str, data: bytes) -> None:
    """Tamper with a write-once local object the way an insider with file access would."""
    path = Path(store.local_root) / key
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    path.write_bytes(data)


@pytest.fixture
def world(resources, suffix):
    tenant = f"integ-{suffix}"
    ledger = resources["ledger"]
    setup_tenant(ledger, tenant)
    model = stored_model(ledger, resources["mlflow_registry"], resources["object_store"], resources["signer"],
                         tenant, "s02")
    return tenant, model, resources


def _verify(resources, tenant):
    key = resources["signer"].key()
    return integrity.verify_tenant(resources["ledger"], resources["object_store"], resources["mlflow_registry"],
                                   key.public_key_b64, key, tenant)


def _bias_key(ledger, tenant, model_id):
    with ledger.connect(tenant) as conn:
        return conn.execute("SELECT object_key FROM bias_audits WHERE tenant_id = %s AND model_id = %s",
                            (tenant, model_id)).fetchone()["object_key"]


def test_clean_tenant_verifies_is_recorded_and_checkpointed(world):
    tenant, _model, resources = world
    report = _verify(resources, tenant)
    assert report.ok, report.mismatches
    assert report.checked["snapshot"] == 1 and report.checked["bias_audit"] == 1
    assert report.checked["drift_report"] == 1 and report.checked["evaluation"] == 1 and report.checked["mlflow"] >= 2
    assert report.checkpoint_seq is not None
    with resources["ledger"].connect(tenant) as conn:
        rows = conn.execute("SELECT artifact_kind, verified FROM integrity_checks WHERE tenant_id = %s"
                            " AND detail LIKE 'integrity verify:%%'", (tenant,)).fetchall()
        last = conn.execute("SELECT action, after FROM audit_log WHERE tenant_id = %s ORDER BY seq DESC LIMIT 1",
                            (tenant,)).fetchone()
    assert {r["artifact_kind"] for r in rows} == {"snapshot", "bias_audit", "drift_report", "model"}
    assert all(r["verified"] for r in rows)
    assert last["action"] == "integrity.verify" and last["after"]["ok"] is True


def test_every_mismatch_is_reported(world):
    """An edited bias audit, a forged snapshot_root tag, a deleted MLflow version, a truncated snapshot
    and a stray alias are each reported — all in one run."""
    tenant, model, resources = world
    ledger, store, registry = resources["ledger"], resources["object_store"], resources["mlflow_registry"]
    second = stored_model(ledger, registry, store, resources["signer"], tenant, "s03")
    audit_key = _bias_key(ledger, tenant, model.model_id)
    overwrite(store, audit_key, store.get_bytes(audit_key).replace(b'"passed":true', b'"passed":false'))
    client = registry.client()
    client.set_model_version_tag(registry.model_name(tenant), str(model.mlflow_version), "snapshot_root", "f" * 64)
    client.delete_model_version(registry.model_name(tenant), str(second.mlflow_version))
    with ledger.connect(tenant) as conn:
        snap_key = conn.execute("SELECT object_key FROM dataset_snapshots WHERE tenant_id = %s AND season_id = 's03'",
                                (tenant,)).fetchone()["object_key"]
    buf = io.BytesIO()
    pd.DataFrame({"field_id": ["f1"], "yield_kg_ha": [1.0]}).to_parquet(buf, index=False, engine="pyarrow")
    overwrite(store, snap_key, buf.getvalue())
    registry.set_champion_alias(tenant, model.mlflow_version)  # the ledger has no champion

    report = _verify(resources, tenant)
    text = "\n".join(str(m) for m in report.mismatches)
    assert not report.ok
    assert f"bias_audit {audit_key}: the stored object does not verify" in text
    assert "tag snapshot_root is 'ffff" in text
    assert f"mlflow {registry.model_name(tenant)}/{second.mlflow_version}: ledger model {second.model_id}" in text
    assert "MLflow has no such version (deleted)" in text
    assert f"snapshot {snap_key}: the stored object holds 1 rows; the ledger recorded 3" in text
    assert "alias points at v" in text
    assert report.checkpoint_seq is None  # nothing is checkpointed over a mismatch
    with ledger.connect(tenant) as conn:
        failed = conn.execute("SELECT count(*) AS n FROM integrity_checks WHERE tenant_id = %s AND NOT verified",
                              (tenant,)).fetchone()["n"]
    assert failed == len(report.mismatches)


def test_cli_exits_non_zero_and_lists_mismatches(world, monkeypatch, tmp_path):
    tenant, model, resources = world
    ledger, store, registry = resources["ledger"], resources["object_store"], resources["mlflow_registry"]
    _cli_env(monkeypatch, resources, tmp_path)
    ok = CliRunner().invoke(cli, ["integrity", "verify", "--tenant", tenant])
    assert ok.exit_code == 0, ok.output
    audit_key = _bias_key(ledger, tenant, model.model_id)
    overwrite(store, audit_key, store.get_bytes(audit_key).replace(b'"passed":true', b'"passed":false'))
    bad = CliRunner().invoke(cli, ["integrity", "verify", "--tenant", tenant])
    assert bad.exit_code == 1
    assert f"MISMATCH bias_audit {audit_key}" in bad.output
    assert registry  # MLflow was compared through MLFLOW_TRACKING_URI


def _cli_env(monkeypatch, resources, tmp_path):
    owner = resources["ledger"].owner_url
    monkeypatch.setenv("RAI_STATE_DIR", str(tmp_path))  # objects under tmp_path/objects, signer key under tmp_path
    monkeypatch.setenv("RAI_LEDGER_OWNER_URL", owner)
    monkeypatch.setenv("RAI_LEDGER_URL", with_user(owner, APP_ROLE))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", resources["mlflow_registry"].resolved_tracking_uri())


def test_approve_verifies_the_bias_audit_object_when_it_acts(world):
    """Measured before: an edited bias-audit object still let approve move the version to SHADOW."""
    tenant, model, resources = world
    ledger, store = resources["ledger"], resources["object_store"]
    evidence = actions.StoredEvidence(store, resources["signer"].key().public_key_b64)
    audit_key = _bias_key(ledger, tenant, model.model_id)
    original = store.get_bytes(audit_key)
    overwrite(store, audit_key, original.replace(b'"passed":true', b'"passed":false'))
    kwargs = {"tenant": tenant, "version": model.mlflow_version, "actor": "ana", "reason": "looks good"}
    with pytest.raises(actions.GovernanceError, match="bias audit it relies on does not verify"):
        actions.approve(ledger, evidence=evidence, **kwargs)
    with ledger.connect(tenant) as conn:
        assert model_store.get_model(conn, model.model_id).state is ModelState.VALIDATED
    overwrite(store, audit_key, original)
    assert actions.approve(ledger, evidence=evidence, **kwargs).after == "SHADOW"


def test_baseline_reset_verifies_the_snapshot_object(world):
    tenant, model, resources = world
    ledger, store = resources["ledger"], resources["object_store"]
    evidence = actions.StoredEvidence(store)
    with ledger.connect(tenant) as conn:
        snap_key = conn.execute("SELECT object_key FROM dataset_snapshots WHERE tenant_id = %s",
                                (tenant,)).fetchone()["object_key"]
    overwrite(store, snap_key, b"not parquet")
    with pytest.raises(actions.GovernanceError, match="training snapshot it relies on"):
        actions.baseline_reset(ledger, tenant=tenant, version=model.mlflow_version, actor="root", reason="r",
                               evidence=evidence)


def test_reconcile_with_the_champions_mlflow_version_deleted_is_a_one_sentence_error(world, monkeypatch, tmp_path):
    """Measured before: reconcile crashed with a traceback when the champion's MLflow version was deleted."""
    tenant, model, resources = world
    ledger, registry = resources["ledger"], resources["mlflow_registry"]
    with ledger.connect(tenant) as conn:
        model_store.promote_bootstrap_champion(conn, model_store.get_model(conn, model.model_id), reason="first")
    assert "v" in actions.reconcile_champion_alias(ledger, registry, tenant)
    registry.client().delete_model_version(registry.model_name(tenant), str(model.mlflow_version))
    with pytest.raises(actions.GovernanceError, match="no longer exists"):
        actions.reconcile_champion_alias(ledger, registry, tenant)
    _cli_env(monkeypatch, resources, tmp_path)
    result = CliRunner().invoke(cli, ["governance", "reconcile", "--tenant", tenant])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and result.output.startswith("Error: reconcile refused:")
    assert len(result.output.strip().splitlines()) == 1
    report = _verify(resources, tenant)
    assert any("no such version" in m.detail for m in report.mismatches)
