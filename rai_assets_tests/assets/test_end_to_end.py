"""End to end: 2 tenants × 3 seasons of the RiceFarms panel through the tenant_season_job, twice.

Asserts the MLflow registry contents, the ledger's lifecycle state, snapshot roots that are stable
across re-runs (SNAP-1), idempotent re-ingestion (ING-2), no new model versions for unchanged
inputs, and drift reports and bias audits that verify against their signatures (DRIFT-3).
"""

from __future__ import annotations

from dagster import DagsterEventType, DagsterInstance

from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.definitions import TENANT_SEASON_JOB, build_definitions
from rai_assets.demo.runner import land_and_register, materialize_partitions
from rai_assets.domain.signing_envelope import verify_document
from rai_assets_tests.helpers import panel_slice


def _ledger_state(ledger: LedgerResource, tenants: list[str]) -> dict:
    state = {}
    for tenant in tenants:
        with ledger.connect(tenant) as conn:
            state[tenant] = {
                "snapshots": sorted((r["season_id"], r["merkle_root"]) for r in conn.execute(
                    "SELECT season_id, merkle_root FROM dataset_snapshots WHERE tenant_id = %s", (tenant,)).fetchall()),
                "models": sorted((r["season_id"], r["mlflow_version"], r["state"]) for r in conn.execute(
                    "SELECT season_id, mlflow_version, state FROM model_versions"
                    " WHERE tenant_id = %s AND kind <> 'naive'",
                    (tenant,)).fetchall()),
                "events": conn.execute("SELECT count(*) AS n FROM learning_events WHERE tenant_id = %s",
                                       (tenant,)).fetchone()["n"],
                "dead_letters": conn.execute("SELECT count(*) AS n FROM dead_letters WHERE tenant_id = %s",
                                             (tenant,)).fetchone()["n"],
            }
    return state


def test_two_tenants_three_seasons_end_to_end_and_rerun(resources, suffix, tmp_path):
    instance = DagsterInstance.ephemeral()
    panel = panel_slice(["langan", "sukaambit"], seasons=3, suffix=suffix)
    ledger, store, registry, signer = (resources[k] for k in ("ledger", "object_store", "mlflow_registry", "signer"))
    tenants, seasons, _ = land_and_register(ledger, store, instance, panel, tmp_path / "keys")
    job = build_definitions(resources).resolve_job_def(TENANT_SEASON_JOB)

    runs = materialize_partitions(job, instance, tenants, seasons, progress=lambda _: None)
    assert len(runs) == 6 and all(r.success for r in runs)
    first = _ledger_state(ledger, tenants)

    client = registry.client()
    for tenant in tenants:
        state = first[tenant]
        assert state["events"] == int((panel["tenant"] == tenant).sum())
        # one snapshot and one model per season that has a training window (s02, s03)
        assert [s for s, _ in state["snapshots"]] == seasons[1:]
        # (a naive baseline, REG-10, may take an MLflow version in between: it is not a trained model)
        assert [s for s, _, _ in state["models"]] == [seasons[1], seasons[2]]
        trained = [v for _, v, _ in state["models"]]
        assert trained == sorted(set(trained))
        versions = [v for v in client.search_model_versions(f"name='yield-{tenant}'")
                    if v.tags.get("kind") != "naive_baseline"]
        assert sorted(int(v.version) for v in versions) == trained
        for v in versions:
            assert v.tags["tenant"] == tenant and len(v.tags["snapshot_root"]) == 64
        champions = [v for s, v, st in state["models"] if st == "CHAMPION"]
        assert len(champions) <= 1
        with ledger.connect(tenant) as conn:
            champion = model_store.get_champion(conn, tenant)
        assert registry.champion_version(tenant) == (champion.mlflow_version if champion else None)
        experiment = client.get_experiment_by_name(f"rai-assets/{tenant}")
        kinds = [r.data.tags.get("kind", "training") for r in client.search_runs([experiment.experiment_id])]
        assert kinds.count("evaluation") == 2 and kinds.count("training") == 2

    # a report's metadata (its pictures: inline PNGs) is stored once, on the materialization: no step output
    # event carries metadata (Dagster copies a returned MaterializeResult's metadata onto both)
    pictured: set[str] = set()
    for run in runs:
        events = [entry.dagster_event for entry in instance.all_logs(run.run_id) if entry.dagster_event]
        outputs = [e for e in events if e.event_type == DagsterEventType.STEP_OUTPUT]
        assert outputs and all(not e.step_output_data.metadata for e in outputs), run.run_id
        pictured |= {e.step_key for e in events if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
                     and any(k.startswith("plot_") for k in e.step_materialization_data.materialization.metadata)}
    assert pictured == {"drift_report", "model_evaluation", "bias_audit"}

    # the forged batch (first tenant) and the malformed line (second tenant) are dead letters
    assert first[tenants[0]]["dead_letters"] == 2
    assert first[tenants[1]]["dead_letters"] == 1

    # every drift report and bias audit verifies against its signature and matches the ledger digest
    for tenant in tenants:
        with ledger.connect(tenant) as conn:
            rows = [*conn.execute("SELECT body_sha256, object_key FROM drift_reports WHERE tenant_id = %s",
                                  (tenant,)).fetchall(),
                    *conn.execute("SELECT body_sha256, object_key FROM bias_audits WHERE tenant_id = %s",
                                  (tenant,)).fetchall()]
        assert len(rows) == 4
        for row in rows:
            doc = verify_document(store.get_bytes(row["object_key"]), signer.key().public_key_b64)
            assert doc.body_sha256 == row["body_sha256"]

    # re-run everything: same snapshot roots, no new events, dead letters or model versions
    land_and_register(ledger, store, instance, panel, tmp_path / "keys")
    again = materialize_partitions(job, instance, tenants, seasons, progress=lambda _: None)
    assert all(r.success for r in again)
    assert _ledger_state(ledger, tenants) == first
    for tenant in tenants:
        assert len([v for v in client.search_model_versions(f"name='yield-{tenant}'")
                    if v.tags.get("kind") != "naive_baseline"]) == 2
