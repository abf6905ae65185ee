"""Benchmark of memory at scale (issue 12, goal 6): peak RSS of the code server and of a run worker.

Usage::

    python benchmarks/memory.py [--tenants N] [--baseline-tenants B] [--out PATH]

Set-up (not measured): a temporary embedded Postgres ledger, local object store, MLflow store and a Dagster
instance on disk (``DAGSTER_HOME`` with the repository's ``dagster.yaml``: SQLite storage), all reached by the
child processes through the environment the code location reads (``RAI_STATE_DIR``, ``RAI_LEDGER_OWNER_URL``,
``DAGSTER_HOME``). Two RiceFarms tenants (the demo's data, two seasons each) are landed and registered; the
other tenants are synthetic (registered in the ledger, no uploads). Every tenant gets the tenant × season
dynamic partitions of all the panel's seasons.

Measured twice in the same run, first with ``B`` tenants in all (the baseline), then with ``N``:

* **code server**: ``dagster api grpc -m rai_assets.definitions`` (what the Helm chart's user deployment
  runs), peak RSS (``VmHWM`` of ``/proc/<pid>/status``) once it answers a ping (definitions loaded), and after
  gRPC calls through ``dagster._grpc.client.DagsterGrpcClient`` (what the webserver and daemon send): the
  repository snapshot, one partition's run tags (a run launched from the UI) and the execution parameters
  of a backfill of one season over every tenant (tags and run config of ``N`` partitions, keys listed from
  the instance as the webserver does: the code server cannot list dynamic partitions itself, it has no
  instance — Dagster's ``ExternalPartitionNames`` call fails for them);
* **run worker**: ``dagster job execute -m rai_assets.definitions -j tenant_season_job --tags <partition tags>`` for
  one RiceFarms tenant, first season (no training) then second (trains): the run worker process's
  ``VmHWM`` (sampled every 20 ms while it runs) and the largest step process's (the default multiprocess
  executor runs each step in a child process), the latter also from ``wait4``'s ``ru_maxrss`` (the largest
  of the worker and its descendants).

Every process started is stopped by its PID. The last line printed is
``code_server_peak_rss_<N/1000>k_mb=<peak RSS after the calls> MB``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore", message=".*currently in (beta|preview)")  # from the definitions, at import
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import psutil  # noqa: E402
from dagster import DagsterInstance  # noqa: E402
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin, RemoteRepositoryOrigin  # noqa: E402
from dagster._core.remote_representation.external_data import (  # noqa: E402
    PartitionSetExecutionParamSnap,
    PartitionTagsSnap,
)
from dagster._grpc.client import DagsterGrpcClient  # noqa: E402
from dagster._grpc.types import PartitionArgs, PartitionSetExecutionParamArgs  # noqa: E402
from dagster._serdes import deserialize_value  # noqa: E402
from report import write_result  # noqa: E402  (benchmarks/ is sys.path[0] when run as a script)

from rai_assets.adapters.ledger.embedded import start_embedded_postgres, stop_embedded_postgres  # noqa: E402
from rai_assets.adapters.ledger.resource import LedgerResource  # noqa: E402
from rai_assets.adapters.object_store import ObjectStoreResource  # noqa: E402
from rai_assets.assets.partitions import TENANT_DIMENSION, add_partitions  # noqa: E402
from rai_assets.definitions import TENANT_SEASON_JOB  # noqa: E402
from rai_assets.demo.ricefarms import load_panel  # noqa: E402
from rai_assets.demo.runner import land_and_register  # noqa: E402
from rai_assets_tests.loop.scale import register_tenants, tenant_ids  # noqa: E402

DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "memory.json"
BIN = Path(sys.executable).parent
REAL_TENANTS = 2  # RiceFarms tenants with uploads: one per measured run worker
SAMPLE_S = 0.02


def proc_status_mb(pid: int) -> dict[str, float]:
    """``VmHWM`` (peak RSS) and ``VmRSS`` of process ``pid`` in MB (10^6 bytes), from ``/proc/<pid>/status``.

    Raises:
        FileNotFoundError: the process is gone.
    """
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            fields[name] = int(value.split()[0]) * 1024 / 1e6  # kB (KiB) → MB
    return fields


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes], what: str) -> None:
    """Terminate ``proc`` by its PID (kill after 20 s) and say so."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print(f"{what} PID {proc.pid} stopped")


def measure_code_server(env: dict[str, str], log: Path, season: str, tenants: int) -> dict[str, Any]:
    """Start the code server, wait until it answers, send the partition calls; peak RSS in MB at both points."""
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen([str(BIN / "dagster"), "api", "grpc", "-m", "rai_assets.definitions",
                                 "-h", "127.0.0.1", "-p", str(port)], env=env, stdout=out, stderr=out)
    try:
        client = DagsterGrpcClient(port=port, host="127.0.0.1")
        started = time.perf_counter()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"code server exited with {proc.returncode} before answering; see {log}")
            try:
                client.ping("up")
                break
            except Exception:  # not listening yet
                if time.perf_counter() - started > 300:
                    raise RuntimeError(f"code server on port {port} did not answer in 300 s; see {log}") from None
                time.sleep(0.2)
        load_s = time.perf_counter() - started
        loaded = proc_status_mb(proc.pid)
        origin = RemoteRepositoryOrigin(GrpcServerCodeLocationOrigin(host="127.0.0.1", port=port,
                                                                     location_name="rai_assets"), "__repository__")
        started = time.perf_counter()
        snapshot_chars = len(client.external_repository(origin))
        # the webserver lists dynamic partitions from the instance (the code server cannot: it has none);
        # it asks the code server for the tags/config of the partitions it launches
        instance = DagsterInstance.get()
        keys = [f"{season}|{t}" for t in instance.get_dynamic_partitions(TENANT_DIMENSION)]
        assert len(keys) == tenants, (len(keys), tenants)
        partition_set = f"{TENANT_SEASON_JOB}_partition_set"
        tags = deserialize_value(client.external_partition_tags(PartitionArgs(
            repository_origin=origin, partition_set_name=partition_set, partition_name=keys[-1],
            job_name=TENANT_SEASON_JOB, instance_ref=instance.get_ref())))
        if not isinstance(tags, PartitionTagsSnap):
            raise RuntimeError(f"partition tags call failed: {tags}")
        params = deserialize_value(client.external_partition_set_execution_params(PartitionSetExecutionParamArgs(
            repository_origin=origin, partition_set_name=partition_set, partition_names=keys,
            instance_ref=instance.get_ref())))
        if not isinstance(params, PartitionSetExecutionParamSnap):
            raise RuntimeError(f"partition execution params call failed: {params}")
        assert len(params.partition_data) == tenants, (len(params.partition_data), tenants)
        calls_s = time.perf_counter() - started
        after = proc_status_mb(proc.pid)
    finally:
        stop(proc, "code server")
    return {"load_s": load_s, "calls_s": calls_s, "peak_rss_loaded_mb": loaded["VmHWM"],
            "peak_rss_mb": after["VmHWM"], "rss_after_calls_mb": after["VmRSS"],
            "snapshot_chars": snapshot_chars, "backfill_partitions": len(keys)}


def measure_run_worker(env: dict[str, str], log: Path, tenant: str, season: str) -> dict[str, Any]:
    """``dagster job execute`` of one partition; peak RSS in MB of the worker and of its largest step process."""
    # the CLI of this Dagster version has no --partition: the partition is given by the tags it would set
    tags = {"dagster/partition": f"{season}|{tenant}", "dagster/partition/season": season,
            "dagster/partition/tenant": tenant, "rai/tenant": tenant, "rai/season": season}
    started = time.perf_counter()
    with log.open("ab") as out:
        proc = subprocess.Popen([str(BIN / "dagster"), "job", "execute", "-m", "rai_assets.definitions",
                                 "-j", TENANT_SEASON_JOB, "--tags", json.dumps(tags)],
                                env=env, stdout=out, stderr=out)
    worker_mb, steps_mb, status, maxrss_kb = 0.0, 0.0, None, 0
    try:
        while status is None:
            try:
                worker_mb = max(worker_mb, proc_status_mb(proc.pid).get("VmHWM", 0.0))  # none once a zombie
                for child in psutil.Process(proc.pid).children(recursive=True):
                    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                        steps_mb = max(steps_mb, proc_status_mb(child.pid).get("VmHWM", 0.0))
            except (FileNotFoundError, ProcessLookupError, psutil.NoSuchProcess):
                pass
            pid, wait_status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                status = os.waitstatus_to_exitcode(wait_status)
                proc.returncode = status
                maxrss_kb = usage.ru_maxrss
            else:
                time.sleep(SAMPLE_S)
    finally:
        if status is None:
            stop(proc, "run worker")
    if status != 0:
        raise RuntimeError(f"run of {season}|{tenant} exited with {status}; see {log}")
    return {"partition": f"{season}|{tenant}", "seconds": time.perf_counter() - started,
            "worker_peak_rss_mb": worker_mb, "sampled_step_peak_rss_mb": steps_mb,
            # wait4: the largest of the worker and every step process, short-lived ones included
            "largest_step_peak_rss_mb": max(steps_mb, maxrss_kb * 1024 / 1e6)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--baseline-tenants", type=int, default=10)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if not REAL_TENANTS <= args.baseline_tenants < args.tenants:
        parser.error(f"need {REAL_TENANTS} <= --baseline-tenants < --tenants")
    logging.getLogger("dagster").setLevel(logging.WARNING)

    phases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rai-memory-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        pid = None
        try:
            url, pid = start_embedded_postgres(tmp / "pg")
            home = tmp / "dagster"
            home.mkdir()
            shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
            env = {**os.environ, "DAGSTER_HOME": str(home), "RAI_STATE_DIR": str(tmp / "state"),
                   "RAI_LEDGER_OWNER_URL": url, "RAI_LEDGER_URL": "", "GX_ANALYTICS_ENABLED": "false",
                   "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "PYTHONPATH": str(REPO_ROOT)}
            os.environ.update({k: env[k] for k in ("DAGSTER_HOME", "RAI_STATE_DIR", "RAI_LEDGER_OWNER_URL")})
            ledger = LedgerResource(owner_url=url)
            store = ObjectStoreResource(local_root=str(tmp / "state" / "objects"))
            instance = DagsterInstance.get()
            panel = load_panel()
            all_seasons = sorted(panel["season"].unique())
            real = sorted(panel["tenant"].unique())[:REAL_TENANTS]
            landed = panel[panel["tenant"].isin(real) & panel["season"].isin(all_seasons[:2])]
            land_and_register(ledger, store, instance, landed, tmp / "keys", bad_uploads=False)
            synthetic = tenant_ids(args.tenants - REAL_TENANTS)
            registered = 0
            log = args.out.with_suffix(".children.log")  # the child processes' output
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_bytes(b"")
            for phase, (size, tenant) in enumerate(((args.baseline_tenants, real[0]), (args.tenants, real[1]))):
                started = time.perf_counter()
                new = synthetic[registered:size - REAL_TENANTS]
                register_tenants(ledger, new)
                add_partitions(instance, tenants=(real if phase == 0 else []) + new, seasons=all_seasons)
                registered += len(new)
                setup_s = time.perf_counter() - started
                print(f"{size:,} tenants ({len(new):,} added in {setup_s:.1f} s, not measured), "
                      f"{size * len(all_seasons):,} partitions")
                server = measure_code_server(env, log, all_seasons[1], size)
                print(f"  code server: loaded in {server['load_s']:.1f} s, peak RSS "
                      f"{server['peak_rss_loaded_mb']:.0f} MB; after the partition calls "
                      f"({server['calls_s']:.1f} s) {server['peak_rss_mb']:.0f} MB")
                runs = [measure_run_worker(env, log, tenant, season) for season in all_seasons[:2]]
                for run in runs:
                    print(f"  run worker {run['partition']}: {run['seconds']:.1f} s, peak RSS "
                          f"{run['worker_peak_rss_mb']:.0f} MB, largest step process "
                          f"{run['largest_step_peak_rss_mb']:.0f} MB")
                phases.append({"tenants": size, "partitions": size * len(all_seasons), "setup_s": setup_s,
                               "code_server": server, "runs": runs})
        finally:
            if pid is not None:
                print(f"embedded Postgres PID {stop_embedded_postgres(tmp / 'pg')} stopped")

    base, full = phases
    added = full["tenants"] - base["tenants"]

    def figures(phase: dict[str, Any]) -> dict[str, float]:
        return {"code_server_mb": phase["code_server"]["peak_rss_mb"],
                "run_worker_mb": max(r["worker_peak_rss_mb"] for r in phase["runs"]),
                "step_process_mb": max(r["largest_step_peak_rss_mb"] for r in phase["runs"])}

    b, f = figures(base), figures(full)
    delta = {k: f[k] - b[k] for k in f}
    print(f"{base['tenants']:,} → {full['tenants']:,} tenants adds: code server {delta['code_server_mb']:+.0f} MB "
          f"({delta['code_server_mb'] * 1e3 / added:+.1f} kB a tenant), run worker {delta['run_worker_mb']:+.1f} MB, "
          f"largest step process {delta['step_process_mb']:+.1f} MB")
    doc = {"benchmark": "memory", "tenants": full["tenants"], "baseline_tenants": base["tenants"],
           "cpu_count": os.cpu_count(), "unit": "MB (10^6 bytes), VmHWM", "phases": phases,
           "peak_rss_mb": f, "baseline_peak_rss_mb": b, "added_mb": delta,
           "code_server_kb_per_tenant": delta["code_server_mb"] * 1e3 / added}
    headline = f"code_server_peak_rss_{full['tenants'] // 1000}k_mb={f['code_server_mb']:.0f} MB"
    return write_result(args.out, doc, headline)


if __name__ == "__main__":
    raise SystemExit(main())
