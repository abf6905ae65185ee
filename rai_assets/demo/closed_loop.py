"""The closed loop, head-less: ``dagster dev`` (webserver + daemon) on the embedded stores, new
season files dropped into the landing zone, and the sensors doing the rest (RET-1..8, DRIFT-5).

Story (a synthetic tenant ``synth-coop`` of 1,200 fields resampled from the RiceFarms panel):

1. history: seasons s01 and s02 are materialized; the s02 model becomes the bootstrap champion;
2. s03 lands with a shifted input regime (more urea, dearer seed, lower yields); the landing
   sensor ingests it and reports drift against the champion's training data;
3. the drift sensor finds it actionable, the guards pass, and a retraining run trains the
   candidate for s04 on s01–s03;
4. s04 lands (the new regime persists); the landing run evaluates the candidate on s04's labels,
   audits its bias and takes it through shadow and canary to the promotion decision.

Every step is timed from the moment its file landed; the drift-detection latency (file arrival →
signed drift report) is the DRIFT-5 figure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from rai_assets.adapters.ledger import artifacts, loop
from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.ledger.tenants import register_season
from rai_assets.assets.common import spec_by_id
from rai_assets.assets.partitions import add_partitions
from rai_assets.demo.ricefarms import tenant_key_pair, to_event, write_batch
from rai_assets.demo.runner import SPEC_ID, land_and_register, materialize_partitions
from rai_assets.demo.synthetic import SeasonShape, synthetic_season
from rai_assets.domain.canonical import canonical_json

TENANT = "synth-coop"
FIELDS = 1200
NEW_REGIME = SeasonShape(inputs={"urea": 1.8, "seed": 1.4, "pseed": 1.5}, yield_factor=0.75)
SHAPES = {"s01": SeasonShape(), "s02": SeasonShape(), "s03": NEW_REGIME, "s04": NEW_REGIME}


@dataclass(frozen=True)
class Step:
    """One line of the timeline."""

    at_s: float
    what: str


def _wait(predicate: Callable[[], Any], timeout_s: float, what: str, poll_s: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def _runs(instance: DagsterInstance, job: str, season: str, statuses: list[DagsterRunStatus]) -> list[Any]:
    return list(instance.get_runs(RunsFilter(job_name=job, tags={"rai/tenant": TENANT, "rai/season": season},
                                             statuses=statuses)))


def run_closed_loop(state_dir: Path, *, dagster_bin: str, port: int = 3070, timeout_s: float = 900.0,
                    progress: Callable[[str], None] = print) -> list[Step]:
    """Run the scenario; returns the timeline. Starts and always stops ``dagster dev`` (by its PID)."""
    from rai_assets.definitions import TENANT_SEASON_JOB, build_definitions, build_resources, resolved_stores

    defs = build_definitions(build_resources())

    stores = resolved_stores()
    ledger, store = stores.ledger, stores.object_store
    instance = DagsterInstance.get()
    keys_dir = state_dir / "demo" / "tenant-keys"
    frames = {s: synthetic_season(TENANT, s, FIELDS, seed=7 + i, shape=shape)
              for i, (s, shape) in enumerate(SHAPES.items())}
    land_and_register(ledger, store, instance, pd.concat([frames["s01"], frames["s02"]]), keys_dir,
                      bad_uploads=False)
    with ledger.connect(TENANT) as conn:
        for i, season in enumerate(SHAPES, start=1):
            register_season(conn, TENANT, season, ordinal=i)
    add_partitions(instance, seasons=list(SHAPES))
    progress(f"history: materializing {TENANT} s01, s02 ({FIELDS} fields a season)")
    materialize_partitions(defs.resolve_job_def(TENANT_SEASON_JOB), instance, [TENANT], ["s01", "s02"], progress)
    with ledger.connect(TENANT) as conn:
        champion = model_store.get_champion(conn, TENANT)
    progress(f"champion before the loop: {'model ' + str(champion.model_id) if champion else 'none'}")

    log_path = state_dir / "closed-loop-dagster.log"
    env = {**os.environ, "RAI_SENSOR_INTERVAL_S": "5", "DAGSTER_HOME": str(instance.root_directory)}
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [dagster_bin, "dev", "-m", "rai_assets.definitions", "-h", "127.0.0.1", "-p", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    progress(f"dagster dev (webserver + daemon) started, PID {server.pid}, http://127.0.0.1:{port} — log {log_path}")
    timeline: list[Step] = []
    try:
        _wait(lambda: _http_ok(f"http://127.0.0.1:{port}/server_info"), 180, "the Dagster webserver")
        time.sleep(10)  # let the daemon load the code location and start the sensors
        t0 = time.monotonic()

        def mark(what: str) -> None:
            timeline.append(Step(time.monotonic() - t0, what))
            progress(f"  +{timeline[-1].at_s:6.1f} s  {what}")

        _land(store, keys_dir, frames["s03"], "s03")
        mark("s03 files landed (new input regime)")
        report = _wait(lambda: _drift(ledger, "s03"), timeout_s, "the s03 drift report")
        mark(f"s03 drift report signed: verdict {report['verdict']}, max PSI {report['max_psi']:.2f} "
             "(drift-detection latency)")
        _wait(lambda: _runs(instance, "retraining_job", "s04", [DagsterRunStatus.STARTED, DagsterRunStatus.SUCCESS,
                                                                 DagsterRunStatus.QUEUED]), timeout_s,
              "the retraining run")
        mark("drift sensor: guards passed, retraining run for s04 requested")
        run = _wait(lambda: _runs(instance, "retraining_job", "s04", [DagsterRunStatus.SUCCESS,
                                                                      DagsterRunStatus.FAILURE]), timeout_s,
                    "the retraining run to finish")[0]
        with ledger.connect(TENANT) as conn:
            candidate = model_store.latest_model_for_partition(conn, TENANT, "s04")
        mark(f"retraining run {run.run_id[:8]} {run.status.value}: candidate model "
             f"{candidate.model_id if candidate else '?'} (MLflow v{candidate.mlflow_version if candidate else '?'})")
        _land(store, keys_dir, frames["s04"], "s04")
        mark("s04 files landed (harvest labels for the candidate's season)")
        decision = _wait(lambda: _canary(ledger, candidate.model_id if candidate else -1), timeout_s,
                         "the canary decision")
        unit = spec_by_id(SPEC_ID).target_unit  # land_and_register registers the tenant with SPEC_ID
        mark(f"canary decision: {decision['decision']} (n={decision['sample_size']}, always-valid p="
             f"{decision['p_value']:.2g}, mean |error| reduction {decision['statistic']:.0f} {unit})")
        with ledger.connect(TENANT) as conn:
            final = model_store.get_champion(conn, TENANT)
        mark(f"champion now: model {final.model_id if final else '-'} (MLflow v{final.mlflow_version if final else '-'}"
             f"; MLflow alias v{stores.mlflow_registry.champion_version(TENANT)})")
    finally:
        _stop(server)
        progress(f"dagster dev stopped (PID {server.pid})")
    return timeline


def _land(store: Any, keys_dir: Path, frame: pd.DataFrame, season: str) -> None:
    lines = [canonical_json(to_event(r)) for _, r in frame.sort_values("field").iterrows()]
    write_batch(store, TENANT, season, f"upload-{season}", lines, tenant_key_pair(keys_dir, TENANT))


def _drift(ledger: Any, season: str) -> dict[str, Any] | None:
    with ledger.connect(TENANT) as conn:
        return artifacts.latest_signed(conn, "drift_reports", TENANT, season)


def _canary(ledger: Any, model_id: int) -> dict[str, Any] | None:
    with ledger.connect(TENANT) as conn:
        decisions = [d for d in loop.promotion_decisions(conn, TENANT, model_id) if d["stage"] in ("canary",)]
    return decisions[-1] if decisions else None


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _stop(server: subprocess.Popen[bytes]) -> None:
    """Stop ``dagster dev`` and every process it started (code servers, daemon, webserver, runs) by PID:
    SIGINT to its process group first, then SIGTERM / SIGKILL to whatever is left."""
    try:
        children = psutil.Process(server.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    for sig, wait_s in ((signal.SIGINT, 30), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=wait_s)
            break
    _, alive = psutil.wait_procs(children, timeout=10)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(alive, timeout=10)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    if server.poll() is None:
        print(f"warning: dagster dev PID {server.pid} did not stop", file=sys.stderr)
