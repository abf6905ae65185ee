"""A cohort's shared registered model mirrors every member's lifecycle (issue 10 item 4; REG-9): each member has
its own ``<stage>-<tenant>`` aliases and ``<tag>-<tenant>`` version tags on ``yield-cohort-<cohort>``, and after
the partition runs nothing differs between the ledger and MLflow. REQ: REG-3, REG-9, GOV-3.

Real pgserver ledger, local object store, MLflow on SQLite, ephemeral Dagster instance; two real villages.
"""

from __future__ import annotations

from dagster import DagsterInstance

from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.lifecycle_mirror import expected_mirror, mirror_differences
from rai_assets.definitions import TENANT_SEASON_JOB, build_definitions
from rai_assets.demo.runner import land_and_register, materialize_partitions, opt_in_cohort
from rai_assets_tests.helpers import panel_slice


def test_a_cohort_model_carries_each_members_aliases_and_tags(resources, suffix, tmp_path):
    ledger, registry = resources["ledger"], resources["mlflow_registry"]
    instance = DagsterInstance.ephemeral()
    panel = panel_slice(["ciwangi", "malausma"], seasons=3, suffix=suffix)
    tenants, seasons, _ = land_and_register(ledger, resources["object_store"], instance, panel, tmp_path / "keys",
                                            bad_uploads=False)
    cohort = f"pool-{suffix}"
    assert sorted(opt_in_cohort(ledger, tenants, cohort=cohort)) == sorted(tenants)
    job = build_definitions(resources).resolve_job_def(TENANT_SEASON_JOB)
    runs = materialize_partitions(job, instance, tenants, seasons, progress=lambda _line: None)
    assert all(r.success for r in runs), [r for r in runs if not r.success]

    name = registry.cohort_model_name(cohort)
    model = registry.client().get_registered_model(name)
    aliases = {a: int(v) for a, v in model.aliases.items()}
    cohort_champions = 0
    for tenant in tenants:
        with ledger.connect(tenant) as conn:
            champion = model_store.get_champion(conn, tenant)
            plans = expected_mirror(conn, registry, tenant)
        assert mirror_differences(registry, plans) == [], tenant  # whatever serves, MLflow says the same
        if champion is None or champion.kind != "cohort":
            continue  # e.g. the naive baseline, on the tenant's own registered model
        cohort_champions += 1
        assert champion.mlflow_model_name == name
        assert aliases[registry.champion_alias(tenant, name)] == champion.mlflow_version  # champion-<tenant>
        version = registry.client().get_model_version(name, str(champion.mlflow_version))
        assert registry.state_tag(tenant, name).endswith(f"-{tenant}")
        assert version.tags[registry.state_tag(tenant, name)] == "CHAMPION"
    assert cohort_champions >= 1, "setup: at least one member should be served by the cohort model"
    assert "champion" not in aliases  # the bare alias belongs to a tenant's own model, never to a cohort's
