"""``benchmarks/partition_run.py`` measures what it says it measures (issue 12, goal 3).

The benchmark once ran the demo's job on an in-memory Dagster instance while `rai-assets demo` runs on SQLite
files; these tests pin the parts that keep a benchmark honest: its ``demo`` instance is the repository's
``dagster.yaml``, its no-op floor is the demo job's asset graph, and its storage timer sees the run's calls.
Timings themselves are never asserted (the benchmark reports them).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import AssetKey, DagsterInstance
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage

from rai_assets.assets.partitions import add_partitions, partition_key
from rai_assets.definitions import TENANT_SEASON_JOB, defs

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO / "benchmarks"))
import partition_run  # noqa: E402  (benchmarks/ is not a package)


@pytest.fixture(scope="module")
def demo_job() -> Any:
    """The demo's job from the code location's one ``Definitions``."""
    return defs.resolve_job_def(TENANT_SEASON_JOB)


def test_demo_instance_is_the_repository_dagster_yaml(tmp_path: Path) -> None:
    """The headline instance is what ``make demo`` runs on: SQLite files and this repository's settings."""
    instance = partition_run.dagster_instance("demo", tmp_path)
    try:
        assert isinstance(instance.event_log_storage, SqliteEventLogStorage)
        assert isinstance(instance.run_storage, SqliteRunStorage)
        assert str(tmp_path) in instance.root_directory
        written = yaml.safe_load((tmp_path / "dagster-home" / "dagster.yaml").read_text(encoding="utf-8"))
        assert written == yaml.safe_load((REPO / "dagster.yaml").read_text(encoding="utf-8"))
        assert instance.get_settings("python_logs") == written["python_logs"]
    finally:
        instance.dispose()
    with pytest.raises(ValueError, match="'sqlite' is not one of demo, in-memory, postgres"):
        partition_run.dagster_instance("sqlite", tmp_path)
    with pytest.raises(ValueError, match="needs a Postgres server's URL"):
        partition_run.dagster_instance("postgres", tmp_path / "pg-kind")


def test_noop_floor_is_the_demo_jobs_asset_graph(demo_job: Any) -> None:
    """Same asset keys, dependencies with their partition mappings, and check specs (blocking included)."""
    noop = partition_run.noop_job(demo_job)
    real_graph, noop_graph = demo_job.asset_layer.asset_graph, noop.asset_layer.asset_graph
    real = {ad.key: ad for ad in real_graph.assets_defs}
    copies = {ad.key: ad for ad in noop_graph.assets_defs}
    assert set(copies) == set(real) and len(real) == 9
    for key, source in real.items():
        copy = copies[key]
        assert set(copy.dependency_keys) == set(source.dependency_keys), key
        for dep in source.dependency_keys:
            assert copy.get_partition_mapping_for_dep(dep) == source.get_partition_mapping_for_dep(dep), (key, dep)
        assert {(s.name, s.blocking) for s in copy.check_specs} == {(s.name, s.blocking) for s in source.check_specs}
        assert copy.partitions_def == source.partitions_def
    assert any(s.blocking for ad in noop_graph.assets_defs for s in ad.check_specs)


def test_storage_timer_counts_a_runs_storage_calls(demo_job: Any) -> None:
    """A no-op run on an in-memory instance: the timer sees the event writes and the dynamic-partition checks,
    and ``take`` restarts its counters."""
    instance = DagsterInstance.ephemeral()
    add_partitions(instance, ["village-a"], ["s01", "s02"])
    timer = partition_run.StorageTimer(instance)
    result = partition_run.noop_job(demo_job).execute_in_process(
        instance=instance, partition_key=partition_key("village-a", "s02"))
    assert result.success
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {AssetKey(k) for k in ("learning_events", "dataset_snapshot", "trained_model",
                                                   "serving_model", "model_evaluation", "drift_report", "bias_audit",
                                                   "yield_forecasts", "model_promotion")}
    taken = timer.take()
    calls = {name: count for name, (count, _) in taken["storage"].items()}
    assert calls["store_event"] >= len(result.all_events)
    assert calls["has_dynamic_partition"] > 0
    assert taken["storage_s"] == pytest.approx(sum(seconds for _, seconds in taken["storage"].values()))
    assert timer.take() == {"storage_s": 0, "storage": {}}
