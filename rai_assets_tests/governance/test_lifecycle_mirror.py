"""MLflow mirrors the ledger's lifecycle: stage aliases and ledger tags; verify reports drift. REQ: REG-3, GOV-7."""

from __future__ import annotations

from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.lifecycle_mirror import mirror_lifecycle
from rai_assets.domain.lifecycle import ModelState
from rai_assets.governance.actions import reconcile_champion_alias
from rai_assets.governance.integrity import verify_mlflow
from rai_assets_tests.governance.builders import passed_verified_audit, setup_tenant, validated_model


def _champion_and_shadow(ledger, registry, tenant: str) -> tuple[model_store.ModelVersion, model_store.ModelVersion]:
    """A tenant with two validated, audited versions: the s02 one the bootstrap champion, the s03 one in SHADOW."""
    setup_tenant(ledger, tenant)
    first = validated_model(ledger, registry, tenant, "s02")
    second = validated_model(ledger, registry, tenant, "s03")
    passed_verified_audit(ledger, tenant, first)
    passed_verified_audit(ledger, tenant, second)
    with ledger.connect(tenant) as conn:
        model_store.promote_bootstrap_champion(conn, model_store.get_model(conn, first.model_id), reason="first")
        model_store.transition(conn, model_store.get_model(conn, second.model_id), ModelState.SHADOW, reason="t")
    return first, second


def test_stage_aliases_and_state_tags_follow_the_ledger(ledger, mlflow_registry, suffix):
    tenant = f"mirror-{suffix}"
    first, second = _champion_and_shadow(ledger, mlflow_registry, tenant)
    name = mlflow_registry.model_name(tenant)

    changes = mirror_lifecycle(ledger, mlflow_registry, tenant)
    assert mlflow_registry.aliases(name) == {"champion": first.mlflow_version, "shadow": second.mlflow_version}
    tags = mlflow_registry.versions_with_tags(name)
    assert tags[first.mlflow_version]["ledger_state"] == "CHAMPION"
    assert tags[second.mlflow_version]["ledger_state"] == "SHADOW"
    assert changes and mirror_lifecycle(ledger, mlflow_registry, tenant) == []  # nothing left to change

    with ledger.connect(tenant) as conn:
        model = model_store.transition(conn, model_store.get_model(conn, second.model_id), ModelState.CANARY,
                                       reason="t")
        model_store.transition(conn, model, ModelState.CHAMPION, reason="won")
    mirror_lifecycle(ledger, mlflow_registry, tenant)
    assert mlflow_registry.aliases(name) == {"champion": second.mlflow_version}  # shadow and canary removed
    tags = mlflow_registry.versions_with_tags(name)
    assert (tags[first.mlflow_version]["ledger_state"], tags[second.mlflow_version]["ledger_state"]) == (
        "DEPRECATED", "CHAMPION")


def test_an_alias_or_ledger_tag_changed_by_hand_is_reported_by_verify_and_fixed_by_reconcile_GOV7_REG3(
        ledger, mlflow_registry, suffix):
    """integrity verify compares the stage aliases and ledger tags with the mapping mirror_lifecycle writes;
    reconcile (the champion alias, then mirror_lifecycle, as ``governance reconcile`` runs them) repairs them."""
    tenant = f"mirrorv-{suffix}"
    first, second = _champion_and_shadow(ledger, mlflow_registry, tenant)
    name = mlflow_registry.model_name(tenant)
    for model in (first, second):  # the training run's lineage tags (the builders register bare versions)
        mlflow_registry.set_version_tags(name, model.mlflow_version, {"snapshot_root": model.snapshot_root})
    mirror_lifecycle(ledger, mlflow_registry, tenant)
    with ledger.connect(tenant) as conn:
        assert verify_mlflow(conn, mlflow_registry, tenant)[1] == []
        audit_seq = conn.execute("SELECT max(seq) AS s FROM audit_log WHERE model_id = %s", (first.model_id,)
                                 ).fetchone()["s"]
    assert mlflow_registry.versions_with_tags(name)[first.mlflow_version]["ledger_audit_seq"] == str(audit_seq)

    client = mlflow_registry.client()
    client.delete_registered_model_alias(name, "shadow")  # by hand, in the MLflow UI
    client.delete_registered_model_alias(name, "champion")
    client.set_model_version_tag(name, str(first.mlflow_version), "ledger_state", "DEPRECATED")
    client.delete_model_version_tag(name, str(second.mlflow_version), "ledger_audit_entry_sha256")
    with ledger.connect(tenant) as conn:
        found = {m.subject: m.detail for m in verify_mlflow(conn, mlflow_registry, tenant)[1]}
    assert found[f"{name}@shadow"] == f"alias points at nothing (the alias is missing); the ledger says " \
                                      f"v{second.mlflow_version}"
    assert found[f"{name}@champion"].startswith("alias points at vNone")
    assert found[f"{name}/{first.mlflow_version}"] == "tag ledger_state is 'DEPRECATED'; the ledger has 'CHAMPION'"
    assert found[f"{name}/{second.mlflow_version}"].startswith("tag ledger_audit_entry_sha256 is None")
    assert len(found) == 4

    reconcile_champion_alias(ledger, mlflow_registry, tenant)
    repaired = mirror_lifecycle(ledger, mlflow_registry, tenant)
    assert len(repaired) == 3  # shadow alias, the state tag, the audit-entry tag (the champion alias came first)
    with ledger.connect(tenant) as conn:
        assert verify_mlflow(conn, mlflow_registry, tenant)[1] == []
    assert mlflow_registry.aliases(name) == {"champion": first.mlflow_version, "shadow": second.mlflow_version}


def test_mirror_writes_do_not_read_the_registered_model_each_REG3(ledger, mlflow_registry, suffix, monkeypatch):
    """The mirror reads each registered model once (to compare), then writes only: MlflowClient's registry
    writes would each re-read the whole registered model to refuse prompts (issue 12, goal 3), a read per tag,
    alias and description that grows with the model's versions. The writes go through
    ``registry_writer()``, and they land (the aliases and tags the ledger says)."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    tenant = f"mirrorr-{suffix}"
    first, second = _champion_and_shadow(ledger, mlflow_registry, tenant)
    reads: list[str] = []
    original = SqlAlchemyStore.get_registered_model

    def counting(self, name):  # type: ignore[no-untyped-def]
        reads.append(name)
        return original(self, name)

    monkeypatch.setattr(SqlAlchemyStore, "get_registered_model", counting)
    changes = mirror_lifecycle(ledger, mlflow_registry, tenant)
    name = mlflow_registry.model_name(tenant)
    assert len(changes) >= 8, changes  # two versions' tags and descriptions, two aliases, the model's description
    assert reads == [name], f"{len(reads)} reads of the registered model for {len(changes)} writes"
    monkeypatch.undo()
    assert mlflow_registry.aliases(name) == {"champion": first.mlflow_version, "shadow": second.mlflow_version}
    assert mlflow_registry.versions_with_tags(name)[second.mlflow_version]["ledger_state"] == "SHADOW"
