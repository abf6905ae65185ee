"""The local MLflow store (SQLite, the embedded default) is created safely when several processes open it at once
— a season's parallel runs on a fresh deployment did race MLflow's table creation ("table … already exists")."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

WORKER = """
import sys, time
from pathlib import Path
from rai_assets.adapters.registry import MlflowRegistryResource
state, go, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
while not go.exists():
    time.sleep(0.01)
client = MlflowRegistryResource(state_dir=state).client()
client.create_experiment(name)
client.create_registered_model(f"model-{name}")
print("ok", name)
"""


def test_processes_creating_the_local_store_at_once_all_succeed(tmp_path: Path):
    go = tmp_path / "go"
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path / "state"), str(go), f"w{i}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    time.sleep(8)  # every worker has imported MLflow and waits for the start signal
    go.touch()
    outcomes = [w.communicate(timeout=240) for w in workers]
    failed = [err[-800:] for w, (_, err) in zip(workers, outcomes, strict=True) if w.returncode != 0]
    assert not failed, failed
    assert sorted(out.strip() for out, _ in outcomes) == [f"ok w{i}" for i in range(4)]

    from rai_assets.adapters.registry import MlflowRegistryResource

    client = MlflowRegistryResource(state_dir=str(tmp_path / "state")).client()
    assert {e.name for e in client.search_experiments()} >= {f"w{i}" for i in range(4)}
    assert len(client.search_registered_models()) == 4
