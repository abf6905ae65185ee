"""Benchmark of one partition run of the demo (issue 12, goal 3), excluding the model fit, on the demo's Dagster
storage and on an in-memory instance, next to the floor of Dagster's own work for the same asset graph.

Usage::

    python benchmarks/partition_run.py [--tenants T] [--seasons S] [--instance {demo,in-memory,postgres} ...]
                                       [--rounds R] [--no-floor] [--profile PATH] [--out PATH]

For each round and each instance kind, in turn (set-up not timed): a temporary embedded Postgres, MLflow store,
local object store and Dagster instance; the RiceFarms panel (the demo's data) restricted to ``T`` tenants ×
``S`` seasons landed and registered. Then the demo's job (``tenant_season_job``: ingest → snapshot → train →
evaluate → …) runs once per partition, season by season, as ``rai-assets demo`` does. Each run's wall time minus
its model fits (``trained_model._timed_fit``: the regressor's training only) is that run's figure.

Instance kinds:

- ``demo`` (the headline): a ``DAGSTER_HOME`` holding a copy of the repository's ``dagster.yaml``, which is what
  ``make demo`` runs on: Dagster's SQLite storage in files, the JSON log handler (its lines go to
  ``<out>.log``, as the demo's go to its log file).
- ``in-memory``: ``DagsterInstance.ephemeral()`` (in-memory SQLite), the figure earlier stops reported: the
  project's code plus Dagster's step machinery with storage calls at their cheapest.
- ``postgres`` (only when asked for): the same ``dagster.yaml`` with Dagster's storage on the embedded Postgres,
  as the Helm values configure production (Dagster's Postgres storage opens a connection for each call).

Every Dagster storage call of a run (each public method of the instance's event log and run storage) is timed
and counted: the JSON result gives each method's calls and seconds a run.

The **floor** (unless ``--no-floor``) runs, on a fresh instance of each kind, the same asset graph — the same
asset keys, dependencies (with their partition mappings), check specs and partitions — with bodies that do
nothing but report a materialization and pass their checks: what Dagster itself costs a partition run of this
graph, before any of the project's code runs.

Runs up to the first that trains pay imports and MLflow's store creation, once per process: reported, not in
the medians. Each run's CPU time (``time.process_time`` of this process, fit included; the embedded Postgres is
another process) is reported too. ``--profile PATH`` runs cProfile over the warm runs and writes the top
functions to ``PATH``. The issue's measurement before this work: 3.9 s median, 2.7 s of it in
``trained_model``. The last line printed is ``partition_run_median_s=<median of the demo instance's warm runs> s``
(the first kind given when ``demo`` is not among them).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import inspect
import io
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import dagster as dg  # noqa: E402
import psycopg  # noqa: E402
import yaml  # noqa: E402
from dagster import DagsterInstance, JobDefinition  # noqa: E402
from report import write_result  # noqa: E402  (benchmarks/ is sys.path[0] when run as a script)

import rai_assets.assets.trained_model as trained_model  # noqa: E402
from rai_assets.adapters.ledger.embedded import (  # noqa: E402
    LEDGER_DATABASE,
    start_embedded_postgres,
    stop_embedded_postgres,
)
from rai_assets.adapters.ledger.resource import LedgerResource  # noqa: E402
from rai_assets.adapters.object_store import ObjectStoreResource  # noqa: E402
from rai_assets.adapters.registry import MlflowRegistryResource  # noqa: E402
from rai_assets.adapters.signer import SignerResource  # noqa: E402
from rai_assets.assets.partitions import add_partitions, partition_key, tenant_season_partitions  # noqa: E402
from rai_assets.definitions import TENANT_SEASON_JOB, build_definitions  # noqa: E402
from rai_assets.demo.quiet import log_to_file  # noqa: E402
from rai_assets.demo.ricefarms import load_panel  # noqa: E402
from rai_assets.demo.runner import land_and_register, materialize_partitions  # noqa: E402

DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "partition_run.json"
TARGET_S = 1.0
ISSUE_BASELINE_S = 3.9
KINDS = ("demo", "in-memory", "postgres")
DEFAULT_KINDS = ("demo", "in-memory")


def dagster_instance(kind: str, tmp: Path, postgres_url: str | None = None) -> DagsterInstance:
    """A Dagster instance of ``kind`` (files under ``tmp``): ``demo`` — a ``DAGSTER_HOME`` with a copy of the
    repository's ``dagster.yaml``, as ``make demo`` sets up; ``in-memory`` — ``DagsterInstance.ephemeral()``;
    ``postgres`` — the same ``dagster.yaml`` with Dagster's storage in a new database ``dagster`` of the Postgres
    server of ``postgres_url``, as the Helm values configure production.

    Raises:
        ValueError: an unknown kind, or ``postgres`` without ``postgres_url``.
    """
    if kind == "in-memory":
        return DagsterInstance.ephemeral()
    if kind not in KINDS:
        raise ValueError(f"instance kind {kind!r} is not one of {', '.join(KINDS)}")
    if kind == "postgres" and postgres_url is None:
        raise ValueError("instance kind 'postgres' needs a Postgres server's URL")
    home = tmp / "dagster-home"
    home.mkdir()
    config = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text(encoding="utf-8"))
    if postgres_url is not None and kind == "postgres":
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE dagster")
        config["storage"] = {"postgres": {"postgres_url": postgres_url.replace(f"/{LEDGER_DATABASE}?", "/dagster?")}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return DagsterInstance.from_config(str(home))


@contextlib.contextmanager
def embedded_postgres(tmp: Path) -> Iterator[str]:
    """An embedded Postgres server under ``tmp`` for the duration; yields the ledger database's URL and stops the
    server by its PID on the way out."""
    url, _pid = start_embedded_postgres(tmp / "pg")
    try:
        yield url
    finally:
        print(f"embedded Postgres PID {stop_embedded_postgres(tmp / 'pg')} stopped")


class StorageTimer:
    """Wall time and count of the Dagster storage calls a run makes, per method: every public method of an
    instance's event log and run storage is wrapped on that instance (the classes are untouched); a call made
    inside another wrapped call counts toward the outer one only. Read with :meth:`take` after each run."""

    def __init__(self, instance: DagsterInstance) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._depth = 0
        for storage in (instance.event_log_storage, instance.run_storage):
            for name in dir(type(storage)):
                attr = inspect.getattr_static(type(storage), name, None)
                if name.startswith("_") or not inspect.isfunction(attr) or name in ("dispose", "register_instance"):
                    continue
                setattr(storage, name, self._timed(name, getattr(storage, name)))

    def _timed(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._depth:
                return method(*args, **kwargs)
            self._depth += 1
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._depth -= 1
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1

        return timed

    def take(self) -> dict[str, Any]:
        """The calls since the last ``take``: ``storage_s`` (seconds, all methods) and ``storage`` (method →
        ``[calls, seconds]``); the counters restart."""
        taken = {"storage_s": sum(self.seconds.values()),
                 "storage": {name: [self.calls[name], self.seconds[name]] for name in sorted(self.calls)}}
        self.seconds.clear()
        self.calls.clear()
        return taken


def _noop_asset(key: dg.AssetKey, deps: list[dg.AssetDep], specs: list[dg.AssetCheckSpec]) -> dg.AssetsDefinition:
    """An asset ``key`` on the tenant × season partitions that only reports its materialization and passes
    ``specs``."""

    # ``context`` is left unannotated: Dagster reads the annotation of a nested function as a string and refuses it
    def body(context) -> Iterator[Any]:  # type: ignore[no-untyped-def]
        yield dg.MaterializeResult(metadata={"noop": True})
        for spec in specs:
            yield dg.AssetCheckResult(check_name=spec.name, asset_key=key, passed=True)

    return dg.asset(key=key, deps=deps, partitions_def=tenant_season_partitions, check_specs=specs)(body)


def noop_job(job: JobDefinition) -> JobDefinition:
    """``job``'s asset graph with bodies that do nothing: the same asset keys, dependencies (with their partition
    mappings), check specs (blocking or not) and partitions; each body reports its materialization and passes its
    checks."""
    assets = []
    for source in job.asset_layer.asset_graph.assets_defs:
        deps = [dg.AssetDep(dep, partition_mapping=source.get_partition_mapping_for_dep(dep))
                for dep in source.dependency_keys]
        assets.append(_noop_asset(source.key, deps, list(source.check_specs)))
    defs = dg.Definitions(assets=assets, jobs=[dg.define_asset_job(
        "noop_job", selection=[a.key for a in assets], partitions_def=tenant_season_partitions)])
    return defs.resolve_job_def("noop_job")


def floor_runs(job: JobDefinition, kind: str, tenants: list[str], seasons: list[str]) -> list[float]:
    """Wall seconds of each run of :func:`noop_job` over every (tenant, season), season by season, on a fresh
    instance of ``kind``; the first two runs (imports, table creation) are dropped."""
    noop = noop_job(job)
    with tempfile.TemporaryDirectory(prefix="rai-partition-floor-") as tmp_dir, contextlib.ExitStack() as stack:
        tmp = Path(tmp_dir)
        postgres_url = stack.enter_context(embedded_postgres(tmp)) if kind == "postgres" else None
        instance = dagster_instance(kind, tmp, postgres_url)
        add_partitions(instance, tenants, seasons)
        seconds = []
        for season in seasons:
            for tenant in tenants:
                started = time.perf_counter()
                result = noop.execute_in_process(
                    instance=instance, partition_key=partition_key(tenant, season),
                    run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
                seconds.append(time.perf_counter() - started)
                assert result.success, f"no-op run {tenant}/{season} failed"
        instance.dispose()
    return seconds[2:]


def partition_runs(kind: str, args: argparse.Namespace, fits: list[float], profiler: cProfile.Profile | None
                   ) -> tuple[list[dict[str, Any]], list[str], list[str], JobDefinition]:
    """Every partition run of the demo's job on a fresh deployment with a Dagster instance of ``kind``.

    Returns:
        (one dict a run: ``wall_s``, ``fit_s``, ``excl_fit_s``, ``cpu_s``, ``storage_s`` in seconds, ``warm``
        and ``storage``, as :meth:`StorageTimer.take` gives it), tenants, seasons, and the job.
    """
    with tempfile.TemporaryDirectory(prefix="rai-partition-bench-") as tmp_dir, \
            embedded_postgres(Path(tmp_dir)) as url:
        tmp = Path(tmp_dir)
        resources: dict[str, object] = {
            "ledger": LedgerResource(owner_url=url),
            "object_store": ObjectStoreResource(local_root=str(tmp / "objects")),
            "mlflow_registry": MlflowRegistryResource(state_dir=str(tmp / "mlflow")),
            "signer": SignerResource(state_dir=str(tmp)),
        }
        panel = load_panel()
        panel = panel[panel["tenant"].isin(sorted(panel["tenant"].unique())[:args.tenants])
                      & panel["season"].isin(sorted(panel["season"].unique())[:args.seasons])]
        instance = dagster_instance(kind, tmp, url)
        timer = StorageTimer(instance)
        tenants, seasons, _ = land_and_register(resources["ledger"], resources["object_store"],  # type: ignore[arg-type]
                                                instance, panel, tmp / "keys", bad_uploads=False)
        job = build_definitions(resources).resolve_job_def(TENANT_SEASON_JOB)
        per_run: list[dict[str, Any]] = []

        def progress(_: str) -> None:
            pass

        warm = False  # after the first run that trained: imports and MLflow's store creation are paid
        timer.take()
        for season in seasons:
            for tenant in tenants:
                if profiler and warm:
                    profiler.enable()
                before = len(fits)
                cpu_started = time.process_time()
                (run,) = materialize_partitions(job, instance, [tenant], [season], progress)
                cpu_s = time.process_time() - cpu_started
                if profiler and warm:
                    profiler.disable()
                assert run.success, f"{tenant}/{season} failed ({kind} instance)"
                fit_s = sum(fits[before:])
                per_run.append({"wall_s": run.seconds, "fit_s": fit_s, "excl_fit_s": run.seconds - fit_s,
                                "cpu_s": cpu_s, "warm": warm, **timer.take()})
                warm = warm or fit_s > 0
        instance.dispose()
    return per_run, tenants, seasons, job


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the warm runs (seconds): ``excl_fit_s`` (the figure), ``wall_s``, ``fit_s``, ``cpu_s``,
    ``storage_s`` (Dagster storage calls, :class:`StorageTimer`), and ``storage_per_run``: each storage method's
    median calls and seconds a run, most time first."""
    steady = [r for r in runs if r["warm"]] or runs
    result: dict[str, Any] = {"warm_runs": len(steady)}
    for name in ("excl_fit_s", "wall_s", "fit_s", "cpu_s", "storage_s"):
        result[f"median_{name}"] = statistics.median(r[name] for r in steady)
    methods = {name for r in steady for name in r["storage"]}
    per_method = {name: {"calls": statistics.median(r["storage"].get(name, (0, 0.0))[0] for r in steady),
                         "s": statistics.median(r["storage"].get(name, (0, 0.0))[1] for r in steady)}
                  for name in methods}
    result["storage_per_run"] = dict(sorted(per_method.items(), key=lambda item: -item[1]["s"]))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=2)
    # all six RiceFarms seasons: s01 does not train and s02 warms up, so 9 runs are timed (the later seasons, with
    # the longest histories, the cohort-free champion/challenger steps and every picture)
    parser.add_argument("--seasons", type=int, default=6)
    parser.add_argument("--instance", choices=KINDS, action="append", dest="kinds",
                        help="instance kind to run on (repeatable; default: demo and in-memory)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of all kinds, alternating kind by kind")
    parser.add_argument("--no-floor", action="store_true", help="skip the no-op graph's floor")
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    kinds: list[str] = list(dict.fromkeys(args.kinds or DEFAULT_KINDS))
    logging.getLogger("dagster").setLevel(logging.WARNING)

    fits: list[float] = []
    timed_fit = trained_model._timed_fit

    def counting_fit(*a: Any, **k: Any) -> Any:
        result = timed_fit(*a, **k)
        fits.append(result[1])
        return result

    trained_model._timed_fit = counting_fit
    profiler = cProfile.Profile() if args.profile else None
    log_path = args.out.with_suffix(".log")
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    floors: dict[str, list[float]] = {kind: [] for kind in kinds}
    with log_to_file(log_path, "partition_run benchmark"):  # Dagster's JSON log lines, as the demo's
        for _ in range(args.rounds):
            for kind in kinds:
                per_run, tenants, seasons, job = partition_runs(kind, args, fits, profiler)
                runs[kind] += per_run
                if not args.no_floor:
                    floors[kind] += floor_runs(job, kind, tenants, seasons)
    if profiler:
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(60)
        args.profile.parent.mkdir(parents=True, exist_ok=True)
        args.profile.write_text(text.getvalue(), encoding="utf-8")
        print(f"profile: {args.profile}")

    results: dict[str, Any] = {}
    for kind in kinds:
        result = summary(runs[kind])
        if floors[kind]:
            result["floor_runs"] = len(floors[kind])
            result["floor_median_s"] = statistics.median(floors[kind])
        results[kind] = result
        floor = f"; Dagster floor (no-op graph) {result['floor_median_s']:.2f} s" if floors[kind] else ""
        calls = ", ".join(f"{name} {m['calls']:.0f} × {m['s'] / max(m['calls'], 1) * 1000:.1f} ms"
                          for name, m in list(result["storage_per_run"].items())[:5])
        print(f"{kind} instance: {result['warm_runs']} warm runs ({args.tenants} tenants × {args.seasons} seasons × "
              f"{args.rounds} rounds): {result['median_excl_fit_s']:.2f} s median excluding the fit (wall "
              f"{result['median_wall_s']:.2f} s, fit {result['median_fit_s']:.2f} s, "
              f"CPU {result['median_cpu_s']:.2f} s); Dagster storage calls {result['median_storage_s']:.2f} s a run "
              f"({calls}){floor}")
    headline_kind = "demo" if "demo" in kinds else kinds[0]
    median_s = results[headline_kind]["median_excl_fit_s"]
    print(f"issue's baseline {ISSUE_BASELINE_S} s median wall; Dagster's JSON log lines: {log_path}")
    doc = {"benchmark": "partition_run", "tenants": args.tenants, "seasons": args.seasons, "rounds": args.rounds,
           "cpu_count": os.cpu_count(), "headline_instance": headline_kind, "instances": results,
           "runs": runs, "floor_runs_s": floors, "issue_baseline_median_wall_s": ISSUE_BASELINE_S,
           "profiled": bool(args.profile), "targets": {"seconds": TARGET_S, "met": median_s <= TARGET_S}}
    return write_result(args.out, doc, f"partition_run_median_s={median_s:.2f} s")


if __name__ == "__main__":
    raise SystemExit(main())
