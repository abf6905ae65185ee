"""MLflow mirrors the ledger's lifecycle (the ledger is the source of truth, REG-3).

For one tenant, every model version it has in the registry carries a ``ledger_state`` tag with its
ledger state (``ledger_state-<tenant>`` on a cohort's shared model, one per member), and each live
stage has an alias: ``champion``, ``canary``, ``shadow`` on the tenant's own registered model,
``<stage>-<tenant>`` on a cohort's. An alias of a stage nobody is in is removed. Only differences are
written, so mirroring after every promotion step costs a read per registered model when nothing moved.
"""

from __future__ import annotations

from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.registry import MlflowRegistryResource

LIVE_STAGES = ("CHAMPION", "CANARY", "SHADOW")


def mirror_lifecycle(ledger: LedgerResource, registry: MlflowRegistryResource, tenant: str) -> list[str]:
    """Make MLflow's stage aliases and ``ledger_state`` tags of ``tenant`` match the ledger.

    Returns:
        One line per change made (empty when MLflow already matched).

    Raises:
        mlflow.exceptions.MlflowException: the tracking server refused a write.
    """
    from mlflow.exceptions import MlflowException

    with ledger.connect(tenant) as conn:
        rows = conn.execute(
            "SELECT model_id, mlflow_model_name, mlflow_version, state FROM model_versions"
            " WHERE tenant_id = %s AND mlflow_version IS NOT NULL ORDER BY model_id", (tenant,)).fetchall()
    by_model: dict[str, list[dict[str, object]]] = {}
    for r in rows:
        by_model.setdefault(str(r["mlflow_model_name"] or registry.model_name(tenant)), []).append(dict(r))
    changes: list[str] = []
    for name, versions in by_model.items():
        try:
            existing = registry.versions_with_tags(name)
            aliases = registry.aliases(name)
        except MlflowException:
            continue  # the registered model is gone: integrity verify reports that
        tag = registry.state_tag(tenant, name)
        for v in versions:
            version, state = int(str(v["mlflow_version"])), str(v["state"])
            if version in existing and existing[version].get(tag) != state:
                registry.set_version_tags(name, version, {tag: state})
                changes.append(f"{name}/{version}: {tag}={state}")
        for stage in LIVE_STAGES:
            alias = registry.stage_alias(stage.lower(), tenant, name)
            in_stage = [int(str(v["mlflow_version"])) for v in versions
                        if v["state"] == stage and int(str(v["mlflow_version"])) in existing]
            wanted = max(in_stage) if in_stage else None
            if aliases.get(alias) != wanted and not (wanted is None and alias not in aliases):
                registry.set_alias(name, alias, wanted)
                changes.append(f"{name}: alias {alias} → {'v' + str(wanted) if wanted else 'removed'}")
    return changes

