"""MLflow mirrors the ledger's lifecycle: stage aliases and ledger_state tags. REQ: REG-3, REG-6."""

from __future__ import annotations

from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.lifecycle_mirror import mirror_lifecycle
from rai_assets.domain.lifecycle import ModelState
from rai_assets_tests.governance.builders import passed_verified_audit, setup_tenant, validated_model


def test_stage_aliases_and_state_tags_follow_the_ledger(ledger, mlflow_registry, suffix):
    tenant = f"mirror-{suffix}"
    setup_tenant(ledger, tenant)
    first = validated_model(ledger, mlflow_registry, tenant, "s02")
    second = validated_model(ledger, mlflow_registry, tenant, "s03")
    passed_verified_audit(ledger, tenant, first)
    passed_verified_audit(ledger, tenant, second)
    with ledger.connect(tenant) as conn:
        model_store.promote_bootstrap_champion(conn, model_store.get_model(conn, first.model_id), reason="first")
        model_store.transition(conn, model_store.get_model(conn, second.model_id), ModelState.SHADOW, reason="t")
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
