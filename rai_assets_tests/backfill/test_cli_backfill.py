"""`rai-assets backfill`: season waves from the command line on the local instance; a bad request is one sentence
(issue 12 goal 4)."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from rai_assets.adapters.ledger.resource import APP_ROLE, with_user
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.cli import main as cli
from rai_assets.demo.runner import land_and_register
from rai_assets_tests.helpers import panel_slice

REPO = Path(__file__).resolve().parents[2]


def _deployment(tmp_path: Path, ledger, monkeypatch) -> DagsterInstance:
    """A local deployment under ``tmp_path`` as the CLI configures it from the environment."""
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("RAI_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("RAI_LEDGER_OWNER_URL", ledger.owner_url)
    monkeypatch.setenv("RAI_LEDGER_URL", with_user(ledger.owner_url, APP_ROLE))
    return DagsterInstance.from_config(str(home))


def test_backfill_command_runs_a_wave_per_season(ledger, suffix, tmp_path, monkeypatch):
    instance = _deployment(tmp_path, ledger, monkeypatch)
    panel = panel_slice(["sukaambit", "langan"], seasons=2, suffix=suffix)
    land_and_register(ledger, ObjectStoreResource(local_root=str(tmp_path / "objects")), instance, panel,
                      tmp_path / "keys")

    out = CliRunner().invoke(cli, ["backfill", "--seasons", "s01,s02", "--tenants-per-run", "5"])

    assert out.exit_code == 0, out.output
    lines = out.output.strip().splitlines()
    assert lines[0].startswith("2 tenants × 2 seasons in 2 runs (1 a season); log: ")
    assert [line.split(":")[0] for line in lines[1:3]] == ["s01 wave 1/1", "s02 wave 1/1"]
    backfill_id = lines[-1].split()[1].rstrip(":")
    assert lines[-1].startswith(f"backfill {backfill_id}: 2 runs, 0 failed")
    runs = instance.get_runs(RunsFilter(tags={"rai/backfill": backfill_id}))
    assert len(runs) == 2 and all(r.status == DagsterRunStatus.SUCCESS for r in runs)
    assert sorted(r.tags["rai/season"] for r in runs) == ["s01", "s02"]
    from dagster import AssetKey

    assert len(instance.get_materialized_partitions(AssetKey("model_promotion"))) == 2  # both tenants' s02


def test_an_unknown_season_is_one_sentence(ledger, suffix, tmp_path, monkeypatch):
    instance = _deployment(tmp_path, ledger, monkeypatch)
    land_and_register(ledger, ObjectStoreResource(local_root=str(tmp_path / "objects")), instance,
                      panel_slice(["langan"], seasons=1, suffix=suffix), tmp_path / "keys")
    out = CliRunner().invoke(cli, ["backfill", "--seasons", "s01,s09"])
    assert out.exit_code == 1
    assert out.output.strip() == ("Error: season 's09' is not a season partition of the Dagster instance (1 unknown); "
                                  "register it first")
    assert not instance.get_runs()
