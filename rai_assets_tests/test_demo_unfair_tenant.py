"""`rai-assets demo --unfair-tenant`: the synthetic tenant's last bias audit fails for a real reason, and the
lifecycle acts on it. REQ: REG-5 (a failed audit refuses the candidate; the verdict is on evidence)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from rai_assets.adapters.ledger.resource import APP_ROLE, LedgerResource, with_user
from rai_assets.adapters.ledger.schema import upgrade
from rai_assets.cli import main as cli
from rai_assets.demo.unfair_tenant import HIT_VARIETY, OUTBREAK_YIELD_FACTOR, TENANT, unfair_tenant_panel


def test_outbreak_hits_one_variety_in_the_last_season_only():
    panel = unfair_tenant_panel(n_seasons=3)
    yields = (panel["goutput"] / panel["size"]).groupby([panel["season"], panel["varieties"] == HIT_VARIETY]).mean()
    assert yields[("s03", True)] / yields[("s02", True)] == pytest.approx(OUTBREAK_YIELD_FACTOR, rel=0.35)
    assert yields[("s03", False)] / yields[("s02", False)] == pytest.approx(1.0, rel=0.15)
    with pytest.raises(ValueError, match="at least 2 seasons"):
        unfair_tenant_panel(n_seasons=1)


def test_unfair_tenant_fails_its_last_bias_audit_on_the_variety_subgroup_reg5(ledger: LedgerResource, tmp_path,
                                                                               monkeypatch):
    owner = ledger.owner_url
    upgrade(owner)
    monkeypatch.setenv("RAI_LEDGER_OWNER_URL", owner)
    monkeypatch.setenv("RAI_LEDGER_URL", with_user(owner, APP_ROLE))
    monkeypatch.setenv("RAI_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_ARTIFACT_ROOT", "RAI_S3_BUCKET"):
        monkeypatch.delenv(name, raising=False)

    out = CliRunner().invoke(cli, ["demo", "--tenants", "1", "--seasons", "3", "--no-cohort", "--unfair-tenant"])
    assert out.exit_code == 0, out.output
    assert "6 partition runs, 0 failed" in out.output
    with ledger.connect(TENANT) as conn:
        audits = {r["season_id"]: r for r in conn.execute(
            "SELECT season_id, passed, body FROM bias_audits WHERE tenant_id = %s", (TENANT,)).fetchall()}
    last = audits["s03"]
    assert last["passed"] is False and last["body"]["audit"]["verdict"] == "fail"
    failing = [s for s in last["body"]["audit"]["subgroups"] if s["verdict"] == "fail"]
    assert [s["subgroup"] for s in failing] == ["variety"], failing
    assert any("entirely above" in r and f"'{HIT_VARIETY}'" in r for r in failing[0]["reasons"]), failing
    assert audits["s02"]["body"]["audit"]["verdict"] != "fail"  # before the outbreak, no evidence of disparity
    summary = next(line for line in out.output.splitlines() if line.startswith(TENANT))
    assert "fail" in summary and "refused: bias audit not passed" in summary, summary
