"""Builders for governance tests: a tenant with model versions registered in a real MLflow store,
without training (MLflow versions point at a placeholder source)."""

from __future__ import annotations

from rai_assets.adapters.ledger import artifacts
from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.ledger.tenants import register_season, register_tenant
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.domain.canonical import sha256_hex
from rai_assets.domain.lifecycle import ModelState
from rai_assets.domain.signing import KeyPair
from rai_assets.domain.signing_envelope import sign_document


def setup_tenant(ledger: LedgerResource, tenant: str, seasons: int = 3) -> None:
    with ledger.connect(tenant) as conn:
        register_tenant(conn, tenant, KeyPair.generate().public_key_b64, "rice-yield-v1")
        for i in range(1, seasons + 1):
            register_season(conn, tenant, f"s{i:02d}", i)


def validated_model(ledger: LedgerResource, registry: MlflowRegistryResource, tenant: str, season: str,
                    tag: str = "") -> model_store.ModelVersion:
    """A VALIDATED model version with a snapshot and a real MLflow model version."""
    root = sha256_hex(f"{tenant}{season}{tag}".encode())
    client = registry.client()
    name = registry.model_name(tenant)
    if not client.search_registered_models(f"name='{name}'"):
        client.create_registered_model(name)
    mv = client.create_model_version(name, source=f"file:///tmp/{tenant}-{season}{tag}")
    with ledger.connect(tenant) as conn:
        artifacts.record_snapshot(conn, tenant=tenant, season=season, merkle_root=root, object_key=f"k/{root}",
                                  row_count=10, source_seasons=["s01"], validation_passed=True,
                                  validation_summary={}, profile=[0.0] * 64, run_id="test")
        model = model_store.create_draft(conn, tenant, season, root, "code", root, "cpu", "test")
        model = model_store.transition(conn, model, ModelState.TRAINING, reason="test")
        model = model_store.transition(conn, model, ModelState.VALIDATED, reason="test",
                                       mlflow_model_name=name, mlflow_version=int(mv.version))
    return model


def passed_verified_audit(ledger: LedgerResource, tenant: str, model: model_store.ModelVersion,
                          verified: bool = True, passed: bool = True) -> None:
    doc = sign_document({"kind": "bias_audit", "model_id": model.model_id, "passed": passed}, KeyPair.generate())
    with ledger.connect(tenant) as conn:
        artifacts.record_bias_audit(conn, tenant=tenant, season=model.season_id, model_id=model.model_id, doc=doc,
                                    object_key=f"audits/{doc.body_sha256}", passed=passed, run_id="test")
        artifacts.record_integrity_check(conn, tenant=tenant, kind="bias_audit", sha256=doc.body_sha256,
                                         object_key=f"audits/{doc.body_sha256}", verified=verified, detail="test")
