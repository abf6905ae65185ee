"""Season waves submitted to a real Dagster webserver (`dagster dev`: its run queue, daemon and run launcher), as
production submits them (issue 12 goal 4): a season's runs are queued together, the next season's only after them,
and the registry history equals running the partitions one by one."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from rai_assets.adapters.ledger.embedded import start_embedded_postgres, stop_embedded_postgres
from rai_assets.adapters.ledger.resource import APP_ROLE, LedgerResource, with_user
from rai_assets.adapters.ledger.schema import upgrade
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.backfill.driver import GraphQLLauncher, run_season_backfill
from rai_assets.backfill.plan import plan_waves
from rai_assets.definitions import TENANT_SEASON_JOB, build_definitions
from rai_assets.demo.closed_loop import _stop
from rai_assets.demo.runner import land_and_register, materialize_partitions
from rai_assets_tests.helpers import panel_slice
from rai_assets_tests.loop.test_backfill import _free_port, _http_ok, _wait, registry_history

REPO = Path(__file__).resolve().parents[2]


def test_season_waves_through_the_webserver(resources, suffix, tmp_path):
    panel = panel_slice(["langan", "sukaambit"], seasons=3, suffix=suffix)
    keys = tmp_path / "keys"
    instance = DagsterInstance.ephemeral()
    tenants, seasons, _ = land_and_register(resources["ledger"], resources["object_store"], instance, panel, keys)
    runs = materialize_partitions(build_definitions(resources).resolve_job_def(TENANT_SEASON_JOB), instance,
                                  tenants, seasons, progress=lambda _: None)
    assert all(r.success for r in runs)
    expected = {t: registry_history(resources["ledger"], t) for t in tenants}

    state = tmp_path / "deployment"
    home = state / "dagster"
    home.mkdir(parents=True)
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    owner, _pid = start_embedded_postgres(state)
    server = None
    try:
        upgrade(owner)
        ledger = LedgerResource(owner_url=owner)
        dagster = DagsterInstance.from_config(str(home))
        land_and_register(ledger, ObjectStoreResource(local_root=str(state / "objects")), dagster, panel, keys)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAI_", "MLFLOW_", "DAGSTER_"))}
        env.update({"RAI_STATE_DIR": str(state), "DAGSTER_HOME": str(home), "RAI_LEDGER_OWNER_URL": owner,
                    "RAI_LEDGER_URL": with_user(owner, APP_ROLE)})
        port = _free_port()
        server = subprocess.Popen([str(Path(sys.executable).parent / "dagster"), "dev", "-m", "rai_assets.definitions",
                                   "-h", "127.0.0.1", "-p", str(port)], env=env, cwd=REPO,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        _wait(lambda: _http_ok(f"http://127.0.0.1:{port}/server_info"), 180, "the Dagster webserver")

        # one tenant a run: each season's two runs are queued side by side
        waves = plan_waves(tenants, seasons, tenants_per_run=1)
        report = run_season_backfill(GraphQLLauncher(f"http://127.0.0.1:{port}", poll_s=1.0, timeout_s=900),
                                     waves, progress=lambda _: None)
        assert report.succeeded, report.runs
        wave_runs = dagster.get_runs(RunsFilter(tags={"rai/backfill": report.backfill_id}))
        assert len(wave_runs) == 2 * len(seasons) and all(r.status == DagsterRunStatus.SUCCESS for r in wave_runs)
        # a season's runs all started after the previous season's had ended
        by_season: dict[str, list] = {}
        for run in wave_runs:
            record = dagster.get_run_record_by_id(run.run_id)
            assert record is not None and record.start_time and record.end_time
            by_season.setdefault(run.tags["rai/season"], []).append(record)
        for earlier, later in itertools.pairwise(seasons):
            assert max(r.end_time for r in by_season[earlier]) <= min(r.start_time for r in by_season[later])
        got = {t: registry_history(ledger, t) for t in tenants}
    finally:
        if server is not None:
            _stop(server)
        stop_embedded_postgres(state)
    assert got == expected
