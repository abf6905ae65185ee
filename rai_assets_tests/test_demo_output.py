"""`rai-assets demo` prints progress per partition and the summary only; library output goes to a log file
under the state directory. REQ: OBS-3 (the JSON log lines still exist: in the log file)."""

from __future__ import annotations

from click.testing import CliRunner

from rai_assets.adapters.ledger.resource import APP_ROLE, LedgerResource, with_user
from rai_assets.adapters.ledger.schema import upgrade
from rai_assets.cli import main as cli


def test_demo_console_is_progress_and_summary_only(ledger: LedgerResource, tmp_path, monkeypatch):
    owner = ledger.owner_url
    upgrade(owner)
    monkeypatch.setenv("RAI_LEDGER_OWNER_URL", owner)
    monkeypatch.setenv("RAI_LEDGER_URL", with_user(owner, APP_ROLE))
    monkeypatch.setenv("RAI_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))  # restored after the demo sets it
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_ARTIFACT_ROOT", "RAI_S3_BUCKET"):
        monkeypatch.delenv(name, raising=False)

    out = CliRunner().invoke(cli, ["demo", "--tenants", "1", "--seasons", "2", "--no-cohort"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert [line[:9] for line in lines if line.startswith("[")] == ["[ 1/2] s0", "[ 2/2] s0"]
    assert "2 partition runs, 0 failed" in out.output
    assert not [line for line in lines if '"level"' in line], "Dagster's JSON log lines belong in the log file"
    assert "Warning" not in out.output and "Created version" not in out.output
    assert "Blocking asset check" not in out.output

    log = (tmp_path / "demo" / "demo.log").read_text()
    assert '"level": "debug"' in log and '"run_id"' in log  # OBS-3: the JSON lines are kept, in the file
    assert "Created version" in log  # MLflow's notices too
