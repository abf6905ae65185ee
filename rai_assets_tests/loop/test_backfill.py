"""A backfill over all seasons of a tenant, run by the Dagster daemon (`dagster dev` +
`dagster job backfill`), gives the same registry history as running the seasons one by one:
same snapshot roots, same model versions, same champions in the same order."""

from __future__ import annotations

import subprocess

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.execution.backfill import BulkActionStatus  # no public export in dagster 1.13

from rai_assets.assets.partitions import partition_key
from rai_assets.backfill.history import registry_history
from rai_assets.definitions import TENANT_SEASON_JOB, build_definitions
from rai_assets.demo.runner import land_and_register, materialize_partitions
from rai_assets_tests.dagster_dev import BIN, REPO, served_deployment, wait_for
from rai_assets_tests.helpers import panel_slice


def test_backfill_matches_season_by_season(resources, suffix, tmp_path):
    panel = panel_slice(["sukaambit"], seasons=4, suffix=suffix)
    keys = tmp_path / "keys"

    # reference: the seasons one by one, in process
    instance = DagsterInstance.ephemeral()
    tenants, seasons, _ = land_and_register(resources["ledger"], resources["object_store"], instance, panel, keys)
    tenant = tenants[0]
    runs = materialize_partitions(build_definitions(resources).resolve_job_def(TENANT_SEASON_JOB), instance,
                                  tenants, seasons, progress=lambda _: None)
    assert all(r.success for r in runs)
    expected = registry_history(resources["ledger"], tenant)
    assert expected["champions"], "the reference run should produce a champion"

    # the same uploads in a fresh deployment, materialized by one backfill through the daemon
    with served_deployment(tmp_path / "bf", panel, keys) as deployment:
        bf_instance = deployment.instance
        partitions = ",".join(str(partition_key(tenant, s)) for s in seasons)
        submitted = subprocess.run(
            [str(BIN / "dagster"), "job", "backfill", "-m", "rai_assets.definitions", "-j", TENANT_SEASON_JOB,
             "--partitions", partitions, "--noprompt"], env=deployment.env, cwd=REPO, capture_output=True,
            text=True, timeout=300)
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        backfill = wait_for(lambda: [b for b in bf_instance.get_backfills()
                                     if b.status in (BulkActionStatus.COMPLETED, BulkActionStatus.COMPLETED_SUCCESS,
                                                     BulkActionStatus.COMPLETED_FAILED, BulkActionStatus.FAILED)],
                            900, "the backfill to finish")[0]
        assert backfill.status in (BulkActionStatus.COMPLETED, BulkActionStatus.COMPLETED_SUCCESS), backfill.status
        tag = {"dagster/backfill": backfill.backfill_id}

        def finished() -> list:
            runs = bf_instance.get_runs(RunsFilter(tags=tag))
            done = [r for r in runs if r.status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE,
                                                    DagsterRunStatus.CANCELED)]
            return runs if runs and len(done) == len(runs) else []

        backfill_runs = wait_for(finished, 900, "the backfill's runs")
        assert len(backfill_runs) == len(seasons)
        assert all(r.status == DagsterRunStatus.SUCCESS for r in backfill_runs)
        got = registry_history(deployment.ledger, tenant)
    assert got == expected
