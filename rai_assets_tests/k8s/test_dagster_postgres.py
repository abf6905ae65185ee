"""Production stores: Dagster's instance on Postgres (dagster-postgres against the embedded Postgres). With a
``dagster.yaml`` that is the project's (run queue, tag limits, run monitoring) plus ``storage: postgres`` —
the URL from the environment, as the Helm chart passes the password from a Secret —, the daemon evaluates a
sensor (its tick and its partitioned run), and a backfill submitted with ``dagster job backfill`` completes;
runs, event logs, dynamic partitions, ticks and the backfill are rows of that Postgres database. Tier ``k8s``
(INF-1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
import yaml
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.execution.backfill import BulkActionStatus  # no public export in dagster 1.13
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from rai_assets.adapters.ledger.embedded import LEDGER_DATABASE
from rai_assets.assets.partitions import SEASON_DIMENSION, TENANT_DIMENSION, partition_key
from rai_assets_tests.dagster_dev import wait_for
from rai_assets_tests.k8s.pg_instance_location import JOB, SENSOR_PARTITION

pytestmark = pytest.mark.k8s

REPO = Path(__file__).resolve().parents[2]
LOCATION = "rai_assets_tests.k8s.pg_instance_location"
PG_URL_ENV = "RAI_DAGSTER_PG_URL"
BACKFILL = [("village-b", "s01"), ("village-b", "s02")]


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop the process group the daemon leads (its code server and run workers) by the PID we started."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def pg_dagster_home(pg_server_url: str, tmp_path: Path) -> tuple[Path, dict[str, str], str]:
    """A fresh ``dagster`` database on the embedded Postgres and a DAGSTER_HOME whose dagster.yaml points at it."""
    db = f"dagster_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db}")
    url = pg_server_url.replace(f"/{LEDGER_DATABASE}?", f"/{db}?")
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    config["storage"] = {"postgres": {"postgres_url": {"env": PG_URL_ENV}}}
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "RAI_"))}
    env.update({"DAGSTER_HOME": str(home), PG_URL_ENV: url})
    return home, env, url


def test_partitioned_run_sensor_tick_and_backfill_on_postgres(pg_dagster_home, monkeypatch):
    home, env, url = pg_dagster_home
    monkeypatch.setenv(PG_URL_ENV, url)
    instance = DagsterInstance.from_config(str(home))
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    # the tenant × season dimensions are dynamic: their partitions are rows of the instance
    instance.add_dynamic_partitions(TENANT_DIMENSION, ["village-a", "village-b"])
    instance.add_dynamic_partitions(SEASON_DIMENSION, ["s01", "s02"])

    bin_dir = Path(sys.executable).parent
    backfill = subprocess.run(
        [str(bin_dir / "dagster"), "job", "backfill", "-m", LOCATION, "-j", JOB, "--noprompt",
         "--partitions", ",".join(str(partition_key(t, s)) for t, s in BACKFILL)],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert backfill.returncode == 0, backfill.stdout[-3000:] + backfill.stderr[-3000:]
    [submitted] = instance.get_backfills()

    log = (home / "daemon.log").open("wb")
    daemon = subprocess.Popen([str(bin_dir / "dagster-daemon"), "run", "-m", LOCATION], env=env, cwd=REPO,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def runs_done(filters: RunsFilter, count: int) -> list:
            runs = instance.get_runs(filters)
            finished = [r for r in runs if r.is_finished]
            return runs if len(runs) == count and len(finished) == count else []

        sensor_runs = wait_for(lambda: runs_done(RunsFilter(tags={"dagster/sensor_name": "season_sensor"}), 1),
                            300, "the sensor's run", poll_s=1.0)
        backfill_runs = wait_for(lambda: runs_done(RunsFilter(tags={"dagster/backfill": submitted.backfill_id}),
                                                len(BACKFILL)), 300, "the backfill's runs", poll_s=1.0)
        done = wait_for(lambda: [b for b in instance.get_backfills() if b.status in (
            BulkActionStatus.COMPLETED, BulkActionStatus.COMPLETED_SUCCESS, BulkActionStatus.COMPLETED_FAILED,
            BulkActionStatus.FAILED)], 120, "the backfill to complete", poll_s=1.0)[0]
    finally:
        _stop_group(daemon)
        log.close()
    daemon_log = (home / "daemon.log").read_text(errors="replace")[-3000:]

    assert [r.status for r in sensor_runs] == [DagsterRunStatus.SUCCESS], daemon_log
    assert sensor_runs[0].tags["dagster/partition"] == str(partition_key(*SENSOR_PARTITION))
    assert [r.status for r in backfill_runs] == [DagsterRunStatus.SUCCESS] * len(BACKFILL), daemon_log
    assert done.status in (BulkActionStatus.COMPLETED, BulkActionStatus.COMPLETED_SUCCESS), done.status
    assert instance.get_materialized_partitions(AssetKey("season_marker")) == {
        str(partition_key(t, s)) for t, s in [SENSOR_PARTITION, *BACKFILL]}

    # the sensor's ticks: the first one requested the run; later ones are skipped by its run key
    [state] = [s for s in instance.all_instigator_state() if s.instigator_name == "season_sensor"]
    ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id)
    assert ticks and any(sensor_runs[0].run_id in t.run_ids for t in ticks)

    # and all of it is in Postgres
    with psycopg.connect(url) as conn:
        counts = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
                  for table in ("runs", "event_logs", "job_ticks", "bulk_actions", "dynamic_partitions")}
    assert counts["runs"] == 1 + len(BACKFILL)
    assert counts["bulk_actions"] == 1 and counts["dynamic_partitions"] == 4
    assert counts["job_ticks"] >= 1 and counts["event_logs"] > 0
