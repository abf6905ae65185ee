"""REG-8 / INF-1: a `tenant_season_job` run launched through K8sRunLauncher on a real API server, its run worker
running k8s_job_executor and creating the GPU step Job; and the GPU quota's refusal failing the run.

No kubelet here, so the run Job's pod stays Pending. The run worker is therefore started the way the run
pod would start it — the exact `dagster api execute_run …` command of the run Job's container — as a local
process (same instance, kubeconfig instead of in-cluster config), stopped by its PID. The run is a subset of
`tenant_season_job` (asset `trained_model` only), so its first step is the GPU training step.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, MultiPartitionKey
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._serdes import serialize_value

from rai_assets.deployment import GPU_NODE_SELECTOR, GPU_RESOURCE, GPU_RUNTIME_CLASS
from rai_assets_tests.k8s.conftest import MANIFESTS, REPO, run, wait_for_quota

pytestmark = pytest.mark.k8s
IMAGE = "registry.example.com/rai-assets:0.1.0"


def _namespace_manifests(namespace: str, gpus: str) -> str:
    """resources/k8s re-targeted to ``namespace`` (cluster-scoped objects unchanged), with a GPU quota of ``gpus``."""
    items = []
    for f in sorted(MANIFESTS.glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if not doc:
                continue
            doc = copy.deepcopy(doc)
            if doc["kind"] == "Namespace":
                doc["metadata"]["name"] = namespace
            elif "namespace" in doc["metadata"]:
                doc["metadata"]["namespace"] = namespace
            for subject in doc.get("subjects", []):
                subject["namespace"] = namespace
            if doc["kind"] == "ResourceQuota":
                doc["spec"]["hard"]["requests.nvidia.com/gpu"] = gpus
            items.append(doc)
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def _instance(tmp_path: Path, rendered: list[dict], kubeconfig: str, namespace: str) -> DagsterInstance:
    """A Dagster instance whose run launcher is the chart's K8sRunLauncher config (from helm-values.yaml),
    pointed at the test API server by kubeconfig instead of in-cluster config; storage: SQLite in tmp_path."""
    cm = next(d for d in rendered if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-instance"))
    launcher = yaml.safe_load(cm["data"]["dagster.yaml"])["run_launcher"]
    launcher["config"].update(load_incluster_config=False, kubeconfig_file=kubeconfig, job_namespace=namespace)
    home = tmp_path / f"dagster-{namespace}"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump({"run_launcher": launcher, "telemetry": {"enabled": False}}))
    return DagsterInstance.from_config(str(home))


def _launch_training_run(instance: DagsterInstance) -> str:
    """Create and launch (through the instance's K8sRunLauncher) a trained_model-only run of tenant_season_job."""
    recon_repo = ReconstructableRepository.for_module("rai_assets.definitions", "defs", working_directory=str(REPO),
                                                      container_image=IMAGE)
    recon_job = recon_repo.get_reconstructable_job("tenant_season_job")
    selection = {AssetKey("trained_model")}
    job_def = recon_job.get_definition().get_subset(asset_selection=selection)
    instance.add_dynamic_partitions("tenant", ["k8s-tenant"])
    instance.add_dynamic_partitions("season", ["s02"])
    key = MultiPartitionKey({"tenant": "k8s-tenant", "season": "s02"})
    tags = {"dagster/partition": str(key), "dagster/partition/tenant": "k8s-tenant", "dagster/partition/season": "s02"}
    dagster_run = instance.create_run_for_job(job_def=job_def, asset_selection=selection, tags=tags,
                                              job_code_origin=recon_job.get_python_origin())
    instance.launch_run(dagster_run.run_id, workspace=None)  # type: ignore[arg-type]
    return dagster_run.run_id


def _get_json(kubectl: str, env: dict[str, str], *args: str) -> dict:
    return json.loads(run([kubectl, "get", *args, "-o", "json"], env=env).stdout)


def _start_run_worker(run_job: dict, env: dict[str, str], kubeconfig: str, grace_s: str) -> subprocess.Popen:
    """Run the run Job's container command locally, as the run pod would (RAI_EXECUTOR=k8s from the deployment)."""
    container = run_job["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[:3] == ["dagster", "api", "execute_run"], args
    bindir = str(Path(sys.executable).parent)
    worker_env = {**env, "RAI_EXECUTOR": "k8s", "KUBECONFIG": kubeconfig, "RAI_STEP_POD_CREATE_GRACE_S": grace_s,
                  "PATH": bindir + os.pathsep + env.get("PATH", "")}
    worker_env.pop("HOSTNAME", None)
    return subprocess.Popen([str(Path(bindir) / args[0]), *args[1:]], env=worker_env, cwd=str(REPO),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.terminate()  # by PID: the process this test started
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.stdout.read() if proc.stdout else ""


def _wait(predicate, timeout_s: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(1)
    output = _stop(proc) if proc is not None else ""
    raise AssertionError(f"timed out waiting for {what}\n{output[-6000:]}")


def test_run_job_and_gpu_step_job_on_a_real_api_server(kube, kubectl, rendered, tmp_path):
    """REG-8: K8sRunLauncher creates the run Job; the run worker's k8s_job_executor creates the trained_model
    step Job whose pod spec has the GPU limit, node selector, toleration and runtime class; the pod is admitted."""
    ns = "rai-run"
    run([kubectl, "apply", "-f", "-"], env=kube, input=_namespace_manifests(ns, gpus="4"))
    wait_for_quota(kubectl, kube, ns, "rai-compute")
    instance = _instance(tmp_path, rendered, kube["KUBECONFIG"], ns)
    run_id = _launch_training_run(instance)

    run_jobs = _get_json(kubectl, kube, "jobs", "-n", ns, "-l", f"dagster/run-id={run_id}")["items"]
    assert [j["metadata"]["name"] for j in run_jobs] == [f"dagster-run-{run_id}"]
    run_job = run_jobs[0]
    pod_spec = run_job["spec"]["template"]["spec"]
    assert pod_spec["serviceAccountName"] == "rai-dagster"
    assert pod_spec["containers"][0]["image"] == IMAGE
    assert {"secretRef": {"name": "rai-assets-env"}} in pod_spec["containers"][0]["envFrom"]
    assert pod_spec["securityContext"]["runAsNonRoot"] is True

    worker = _start_run_worker(run_job, kube, kube["KUBECONFIG"], grace_s="300")
    try:
        def step_job():
            jobs = _get_json(kubectl, kube, "jobs", "-n", ns, "-l", f"dagster/run-id={run_id},dagster/op=trained_model")
            return jobs["items"][0] if jobs["items"] else None

        job = _wait(step_job, 180, "the trained_model step Job", worker)
        spec = job["spec"]["template"]["spec"]
        container = spec["containers"][0]
        assert container["resources"]["limits"][GPU_RESOURCE] == "1"
        assert spec["nodeSelector"] == GPU_NODE_SELECTOR
        assert {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
        assert spec["runtimeClassName"] == GPU_RUNTIME_CLASS
        assert {"name": "RAI_GPU_REQUESTED", "value": "1"} in container["env"]
        assert container["image"] == IMAGE and spec["serviceAccountName"] == "rai-dagster"
        # admitted: quota (1 of 4 GPUs), LimitRange and RuntimeClass accept the pod, which waits for a GPU node
        pods = _wait(lambda: _get_json(kubectl, kube, "pods", "-n", ns, "-l",
                                       f"job-name={job['metadata']['name']}")["items"], 60, "the step pod")
        assert pods[0]["status"]["phase"] == "Pending"
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED
    finally:
        _stop(worker)


def test_gpu_quota_refusal_fails_the_run_instead_of_hanging(kube, kubectl, rendered, tmp_path):
    """REG-8 / issue 24595: in a namespace whose quota allows no GPU, the step Job's pod is refused
    (FailedCreate: exceeded quota); the step fails its health check with that reason and the run ends FAILURE."""
    ns = "rai-nogpu"
    run([kubectl, "apply", "-f", "-"], env=kube, input=_namespace_manifests(ns, gpus="0"))
    wait_for_quota(kubectl, kube, ns, "rai-compute")
    instance = _instance(tmp_path, rendered, kube["KUBECONFIG"], ns)
    run_id = _launch_training_run(instance)
    run_job = _get_json(kubectl, kube, "jobs", "-n", ns, "-l", f"dagster/run-id={run_id}")["items"][0]

    worker = _start_run_worker(run_job, kube, kube["KUBECONFIG"], grace_s="0")
    try:
        worker.wait(timeout=240)
    except subprocess.TimeoutExpired:
        output = _stop(worker)
        raise AssertionError(f"the run hung on a refused step pod\n{output[-6000:]}") from None
    output = _stop(worker)
    dagster_run = instance.get_run_by_id(run_id)
    assert dagster_run is not None and dagster_run.status == DagsterRunStatus.FAILURE, output[-4000:]
    messages = " ".join(serialize_value(e) for e in instance.all_logs(run_id))  # incl. the step failure's error
    assert "cannot create its pod" in messages and "exceeded quota" in messages, messages[-4000:]
