"""The alert rules are valid and every alert has a `promtool test rules` unit test that passes. REQ: OBS-4, OBS-5."""

from __future__ import annotations

import shutil
import subprocess

import yaml

from rai_assets.resource_files import resources_dir

OBS = resources_dir() / "observability"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make observability-tools` installs it (Debian package prometheus)"
    return subprocess.run([promtool, *args], cwd=OBS, capture_output=True, text=True, check=False)


def test_config_and_rules_are_valid():
    result = _promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass():
    """OBS-5: `promtool test rules` with input series and expected alerts."""
    result = _promtool("test", "rules", "rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_that_expects_it_to_fire():
    rules = yaml.safe_load((OBS / "rules.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((OBS / "rules_test.yml").read_text())
    firing = {case["alertname"] for t in tests["tests"] for case in t.get("alert_rule_test", [])
              if case.get("exp_alerts")}
    quiet = {case["alertname"] for t in tests["tests"] for case in t.get("alert_rule_test", [])
             if not case.get("exp_alerts")}
    assert alerts <= firing, f"alerts without a firing test: {sorted(alerts - firing)}"
    assert alerts <= quiet, f"alerts without a not-firing test: {sorted(alerts - quiet)}"
