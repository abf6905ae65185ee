"""REG-8: executor per environment, the training step's Kubernetes shape, the CPU fallback, and the
step-pod creation check (dagster-io/dagster issue 24595). Fast; part of the default test run."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from rai_assets.deployment import (
    GPU_RESOURCE,
    GPU_RUN_TAG,
    K8S_CONFIG_TAG,
    TRAINING_OP_TAGS,
    executor_kind,
    pod_creation_failure,
    select_executor,
)
from rai_assets.domain.device import resolve_training_device


def test_executor_kind_reads_rai_executor():
    """REG-8: unset or `local` keeps the local executor; `k8s` selects the K8s one; anything else is refused."""
    assert executor_kind({}) == "local"
    assert executor_kind({"RAI_EXECUTOR": "local"}) == "local"
    assert executor_kind({"RAI_EXECUTOR": " K8S "}) == "k8s"
    with pytest.raises(ValueError, match="RAI_EXECUTOR"):
        executor_kind({"RAI_EXECUTOR": "celery"})
    assert select_executor({}) is None
    executor = select_executor({"RAI_EXECUTOR": "k8s"})
    assert executor is not None and executor.name == "k8s_job_executor"


@pytest.mark.parametrize(("env", "expected"), [("", "multi_or_in_process_executor"), ("k8s", "k8s_job_executor")])
def test_every_job_uses_the_selected_executor(monkeypatch, env, expected):
    """REG-8: RAI_EXECUTOR=k8s gives every job k8s_job_executor; unset keeps today's local executor."""
    monkeypatch.setenv("RAI_EXECUTOR", env)
    from rai_assets.definitions import build_definitions, build_resources

    defs = build_definitions(build_resources())
    repo = defs.get_repository_def()
    jobs = [j for j in repo.get_all_jobs() if not j.name.startswith("__ASSET_JOB")]
    assert {j.name for j in jobs} >= {"tenant_season_job", "retraining_job", "ingestion_job", "governance_job"}
    for job in jobs:
        assert job.executor_def.name == expected, job.name


def test_training_steps_ask_for_a_gpu_node_and_other_steps_do_not():
    """REG-8: trained_model (in tenant_season_job and retraining_job) and the season wave's step carry the GPU pod
    config; other assets none."""
    from rai_assets.definitions import ALL_ASSETS, tenant_season_job
    from rai_assets.loop.jobs import retraining_job

    config = TRAINING_OP_TAGS[K8S_CONFIG_TAG]
    assert config["container_config"]["resources"]["limits"][GPU_RESOURCE] == 1
    assert config["pod_spec_config"]["runtime_class_name"] == "nvidia"
    assert config["pod_spec_config"]["node_selector"]
    assert config["pod_spec_config"]["tolerations"][0]["key"] == GPU_RESOURCE
    for asset in ALL_ASSETS:
        tags = asset.op.tags
        if asset.op.name == "trained_model":
            assert json.loads(tags[K8S_CONFIG_TAG]) == config if isinstance(tags[K8S_CONFIG_TAG], str) \
                else tags[K8S_CONFIG_TAG] == config
        else:
            assert K8S_CONFIG_TAG not in tags, asset.op.name
    assert tenant_season_job.tags[GPU_RUN_TAG] == "true"
    assert retraining_job.tags[GPU_RUN_TAG] == "true"
    # a season wave trains too (issue 12 goal 4): GPU run and its one step on the GPU node
    from rai_assets.backfill.wave import season_wave_job

    assert season_wave_job.tags[GPU_RUN_TAG] == "true"
    (wave_op,) = season_wave_job.graph.node_defs
    assert wave_op.tags[K8S_CONFIG_TAG] == config or json.loads(wave_op.tags[K8S_CONFIG_TAG]) == config


def test_gpu_step_without_usable_cuda_trains_on_cpu_and_warns(caplog):
    """REG-8: a GPU was requested but CUDA is not usable -> "cpu" (recorded as such) and a warning."""
    log = logging.getLogger("test.device")
    with caplog.at_level(logging.WARNING, logger="test.device"):
        assert resolve_training_device("", gpu_requested=True, probe=lambda: False, log=log) == "cpu"
    assert "CUDA is not usable" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="test.device"):
        assert resolve_training_device("cuda", gpu_requested=False, probe=lambda: False, log=log) == "cpu"
        assert resolve_training_device("", gpu_requested=False, probe=lambda: False, log=log) == "cpu"
    assert caplog.text.count("CUDA is not usable") == 1  # only the forced request warns
    assert resolve_training_device("", gpu_requested=True, probe=lambda: True) == "cuda"
    assert resolve_training_device("cpu", gpu_requested=True, probe=lambda: True) == "cpu"


def _apis(status: dict, events: list):
    job = SimpleNamespace(status=SimpleNamespace(**{"active": None, "succeeded": None, "failed": None, **status}))
    batch = SimpleNamespace(read_namespaced_job_status=lambda name, ns: job)
    core = SimpleNamespace(list_namespaced_event=lambda ns, field_selector: SimpleNamespace(items=events))
    return batch, core


def test_pod_creation_failure_reports_a_refused_pod_after_the_grace():
    """Issue 24595: a step Job whose pod is refused (FailedCreate) fails once the refusal is older than the grace."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    refused = SimpleNamespace(reason="FailedCreate", message='pods "x" is forbidden: exceeded quota: rai-compute',
                              first_timestamp=now - timedelta(seconds=30), last_timestamp=now, event_time=None)
    other = SimpleNamespace(reason="SuccessfulCreate", message="created", first_timestamp=now,
                            last_timestamp=now, event_time=None)
    assert "exceeded quota" in pod_creation_failure(*_apis({}, [refused, other]), "ns", "job", grace_s=10, now=now)
    assert pod_creation_failure(*_apis({}, [refused]), "ns", "job", grace_s=60, now=now) is None  # still in grace
    assert pod_creation_failure(*_apis({"active": 1}, [refused]), "ns", "job", grace_s=0, now=now) is None
    assert pod_creation_failure(*_apis({}, [other]), "ns", "job", grace_s=0, now=now) is None
