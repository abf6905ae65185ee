"""Season waves submitted to a real Dagster webserver (`dagster dev`: its run queue, daemon and run launcher), as
production submits them (issue 12 goal 4): a season's runs are queued together, the next season's only after them,
and the registry history equals running the partitions one by one."""

from __future__ import annotations

import itertools

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from rai_assets.backfill.driver import GraphQLLauncher, run_season_backfill
from rai_assets.backfill.history import registry_history
from rai_assets.backfill.plan import plan_waves
from rai_assets.definitions import TENANT_SEASON_JOB, build_definitions
from rai_assets.demo.runner import land_and_register, materialize_partitions
from rai_assets_tests.dagster_dev import served_deployment
from rai_assets_tests.helpers import panel_slice


def test_season_waves_through_the_webserver(resources, suffix, tmp_path):
    panel = panel_slice(["langan", "sukaambit"], seasons=3, suffix=suffix)
    keys = tmp_path / "keys"
    instance = DagsterInstance.ephemeral()
    tenants, seasons, _ = land_and_register(resources["ledger"], resources["object_store"], instance, panel, keys)
    runs = materialize_partitions(build_definitions(resources).resolve_job_def(TENANT_SEASON_JOB), instance,
                                  tenants, seasons, progress=lambda _: None)
    assert all(r.success for r in runs)
    expected = {t: registry_history(resources["ledger"], t) for t in tenants}

    with served_deployment(tmp_path / "deployment", panel, keys) as deployment:
        # one tenant a run: each season's two runs are queued side by side
        waves = plan_waves(tenants, seasons, tenants_per_run=1)
        report = run_season_backfill(GraphQLLauncher(deployment.url, poll_s=1.0, timeout_s=900), waves,
                                     progress=lambda _: None)
        assert report.succeeded, report.runs
        wave_runs = deployment.instance.get_runs(RunsFilter(tags={"rai/backfill": report.backfill_id}))
        assert len(wave_runs) == 2 * len(seasons) and all(r.status == DagsterRunStatus.SUCCESS for r in wave_runs)
        # a season's runs all started after the previous season's had ended
        by_season: dict[str, list] = {}
        for run in wave_runs:
            record = deployment.instance.get_run_record_by_id(run.run_id)
            assert record is not None and record.start_time and record.end_time
            by_season.setdefault(run.tags["rai/season"], []).append(record)
        for earlier, later in itertools.pairwise(seasons):
            assert max(r.end_time for r in by_season[earlier]) <= min(r.start_time for r in by_season[later])
        got = {t: registry_history(deployment.ledger, t) for t in tenants}
    assert got == expected
