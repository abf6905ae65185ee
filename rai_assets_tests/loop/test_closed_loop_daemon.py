"""The closed loop end to end with the Dagster daemon: `rai-assets closed-loop` on a fresh state
directory (embedded ledger, SQLite Dagster and MLflow) — sensors, retraining run and the canary
promotion all happen in `dagster dev`, started and stopped by the command. REQ: RET-1, RET-7, DRIFT-5."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import psutil


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_closed_loop_with_the_daemon(tmp_path: Path):
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RAI_", "MLFLOW_", "DAGSTER_")) and not k.startswith("AWS_")}
    env["RAI_STATE_DIR"] = str(state)
    cli = Path(sys.executable).parent / "rai-assets"
    done = subprocess.run([str(cli), "closed-loop", "--port", str(_free_port())], env=env, capture_output=True,
                          text=True, timeout=1200, cwd=Path(__file__).resolve().parents[2])
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-4000:]
    assert "verdict drift" in out
    assert "retraining run" in out and "SUCCESS: candidate model 2" in out
    decision = re.search(r"canary decision: (\w+) \(n=(\d+), always-valid p=([0-9.e+-]+)", out)
    assert decision is not None and decision[1] == "promote" and int(decision[2]) >= 30 and float(decision[3]) < 0.05
    assert "champion now: model 2 (MLflow v2; MLflow alias v2)" in out
    latency = re.search(r"drift_detection_latency_s=([0-9.]+) s", out)
    assert latency is not None and float(latency[1]) < 4 * 3600
    # every server the command started is gone (dagster dev and its children, the embedded Postgres)
    leftovers = [p.info for p in psutil.process_iter(["pid", "cmdline"])
                 if str(state) in " ".join(p.info["cmdline"] or [])]
    assert leftovers == []
