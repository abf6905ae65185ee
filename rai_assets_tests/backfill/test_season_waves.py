"""Season waves (issue 12 goal 4): a backfill over all seasons of several tenants launches a few runs per season
— not one per partition — and leaves the same registry history, the same materialized partitions and the same
asset check verdicts as running the partitions one by one, season by season (REG-1, REG-9, RET-7)."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from rai_assets.adapters.ledger.embedded import LEDGER_DATABASE
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.adapters.signer import SignerResource
from rai_assets.assets.graph import TENANT_SEASON_ASSETS
from rai_assets.backfill.driver import InProcessLauncher, run_season_backfill
from rai_assets.backfill.history import registry_history
from rai_assets.backfill.plan import plan_waves
from rai_assets.backfill.wave import SEASON_WAVE_JOB, wave_steps
from rai_assets.definitions import TENANT_SEASON_JOB, build_definitions
from rai_assets.demo.runner import land_and_register, materialize_partitions, opt_in_cohort
from rai_assets_tests.helpers import panel_slice

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def fresh_resources(pg_server_url: str, root: Path) -> dict[str, object]:
    """A deployment of its own: a new ledger database, object store, MLflow store and signing key."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return {
        "ledger": LedgerResource(owner_url=pg_server_url.replace(f"/{LEDGER_DATABASE}?", f"/{name}?")),
        "object_store": ObjectStoreResource(local_root=str(root / "objects")),
        "mlflow_registry": MlflowRegistryResource(state_dir=str(root / "mlflow")),
        "signer": SignerResource(state_dir=str(root)),
    }


def check_verdicts(instance: DagsterInstance) -> dict[tuple[str, str, str], bool]:
    """(asset, check, partition) → passed, over every run of ``instance``."""
    verdicts = {}
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
            evaluation = entry.dagster_event.event_specific_data  # type: ignore[union-attr]
            partition = evaluation.partition or run.tags.get("dagster/partition")
            verdicts[(evaluation.asset_key.to_user_string(), evaluation.check_name, partition)] = evaluation.passed
    return verdicts


def materialized(instance: DagsterInstance) -> dict[str, set[str]]:
    """Asset → its materialized partitions."""
    return {a.key.to_user_string(): set(instance.get_materialized_partitions(a.key)) for a in TENANT_SEASON_ASSETS}


def test_season_waves_match_season_by_season(pg_server_url, suffix, tmp_path):
    panel = panel_slice(["ciwangi", "langan", "sukaambit"], seasons=4, suffix=suffix)
    keys = tmp_path / "keys"  # the same tenant keys: both deployments land byte-identical signed uploads
    cohort = f"pool-{suffix}"

    # reference: one run per partition, season by season (the demo's way)
    ref = fresh_resources(pg_server_url, tmp_path / "ref")
    ref_instance = DagsterInstance.ephemeral()
    tenants, seasons, _ = land_and_register(ref["ledger"], ref["object_store"], ref_instance, panel, keys)
    members = tenants[:2]
    opt_in_cohort(ref["ledger"], members, cohort=cohort)  # type: ignore[arg-type]
    runs = materialize_partitions(build_definitions(ref).resolve_job_def(TENANT_SEASON_JOB), ref_instance,
                                  tenants, seasons, progress=lambda _: None)
    assert all(r.success for r in runs) and len(runs) == len(tenants) * len(seasons)
    expected = {t: registry_history(ref["ledger"], t) for t in tenants}  # type: ignore[arg-type]
    assert any(h["champions"] for h in expected.values()), "the reference should decide champions"

    # the wave executes the assets in the per-partition job's step order
    started = [e.dagster_event.step_key for e in ref_instance.all_logs(runs[-1].run_id,  # type: ignore[union-attr]
                                                                       of_type=DagsterEventType.STEP_START)]
    assert started == [s.key.to_user_string() for s in wave_steps()]

    # the same uploads in a fresh deployment, backfilled in season waves of at most 2 tenants
    new = fresh_resources(pg_server_url, tmp_path / "waves")
    instance = DagsterInstance.ephemeral()
    land_and_register(new["ledger"], new["object_store"], instance, panel, keys)
    opt_in_cohort(new["ledger"], members, cohort=cohort)  # type: ignore[arg-type]
    waves = plan_waves(tenants, seasons, tenants_per_run=2, cohort_of={m: cohort for m in members})
    assert [list(w.tenants) for w in waves[0]] == [members, tenants[2:]]  # the cohort shares a run
    launcher = InProcessLauncher(build_definitions(new).resolve_job_def(SEASON_WAVE_JOB), instance, QUIET)
    report = run_season_backfill(launcher, waves, progress=lambda _: None)

    assert report.succeeded and not report.stopped
    assert len(report.runs) == 2 * len(seasons)  # 8 runs instead of 12
    wave_runs = instance.get_runs(RunsFilter(tags={"rai/backfill": report.backfill_id}))
    assert len(wave_runs) == 2 * len(seasons) and all(r.status == DagsterRunStatus.SUCCESS for r in wave_runs)
    assert [label for label, _, _ in report.runs][:3] == ["s01 wave 1/2", "s01 wave 2/2", "s02 wave 1/2"]

    assert {t: registry_history(new["ledger"], t) for t in tenants} == expected  # type: ignore[arg-type]
    assert materialized(instance) == materialized(ref_instance)
    assert materialized(instance)["model_promotion"]  # not vacuous: later seasons were materialized
    verdicts = check_verdicts(instance)
    assert verdicts == check_verdicts(ref_instance) and len(verdicts) > 10


def test_a_failing_tenant_fails_its_wave_run_but_not_the_other_tenants(pg_server_url, suffix, tmp_path):
    """A tenant whose season fails (here: in Dagster's partitions but not registered in the ledger) is named in the
    run's failure; the wave's other tenants are materialized in full, the failed tenant's downstream assets are
    skipped, and nothing is recorded for them."""
    panel = panel_slice(["sukaambit"], seasons=2, suffix=suffix)
    res = fresh_resources(pg_server_url, tmp_path)
    instance = DagsterInstance.ephemeral()
    tenants, seasons, _ = land_and_register(res["ledger"], res["object_store"], instance, panel, tmp_path / "keys")
    ghost = f"ghost-{suffix}"
    from rai_assets.assets.partitions import add_partitions, partition_key

    add_partitions(instance, tenants=[ghost])
    launcher = InProcessLauncher(build_definitions(res).resolve_job_def(SEASON_WAVE_JOB), instance, QUIET)
    first = run_season_backfill(launcher, plan_waves(tenants, seasons[:1], 5), progress=lambda _: None)
    assert first.succeeded
    waves = plan_waves([ghost, *tenants], seasons[1:], tenants_per_run=5)
    report = run_season_backfill(launcher, waves, progress=lambda _: None)

    assert not report.succeeded and len(report.runs) == 1
    assert report.stopped == {t: f"s02 wave 1/1 (run {report.runs[0][1]}) failed" for t in [ghost, *tenants]}
    failures = [e.dagster_event.event_specific_data.error.message  # type: ignore[union-attr]
                for e in instance.all_logs(report.runs[0][1], of_type=DagsterEventType.STEP_FAILURE)]
    assert len(failures) == 1 and f"1 of 2 tenants did not finish season s02: {ghost} (dataset_snapshot: " \
        "UnknownTenantError" in failures[0]
    done = materialized(instance)
    tenant_s02, ghost_s02 = str(partition_key(tenants[0], "s02")), str(partition_key(ghost, "s02"))
    for asset in ("dataset_snapshot", "trained_model", "model_evaluation", "bias_audit", "model_promotion"):
        assert tenant_s02 in done[asset] and ghost_s02 not in done[asset], asset  # the other tenant in full
    assert ghost_s02 in done["learning_events"]  # its uploads were dead-lettered before the failure
