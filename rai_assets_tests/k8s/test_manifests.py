"""INF-2: the cluster manifests in resources/k8s — strict-valid for current Kubernetes, and applied for real
to an API server, where the quota, the LimitRange, the RuntimeClass and the RBAC behave as intended."""

from __future__ import annotations

import json
import time

import kubernetes_validate
import pytest
import yaml

from rai_assets_tests.k8s.conftest import K8S_TARGET_VERSIONS, MANIFESTS, run, wait_for_quota

pytestmark = pytest.mark.k8s
SA = "system:serviceaccount:rai:rai-dagster"


def _docs() -> list[dict]:
    return [d for f in sorted(MANIFESTS.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


def test_manifests_validate_strictly_against_current_kubernetes():
    """INF-2: every manifest is strict-valid (no unknown field) for Kubernetes 1.30 and 1.35."""
    docs = _docs()
    kinds = {d["kind"] for d in docs}
    assert kinds >= {"Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "ServiceAccount", "Role",
                     "RoleBinding", "RuntimeClass"}
    for target in K8S_TARGET_VERSIONS:
        for doc in docs:
            kubernetes_validate.validate(doc, target, strict=True)
    ns = next(d for d in docs if d["kind"] == "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    quota = next(d for d in docs if d["kind"] == "ResourceQuota")["spec"]["hard"]
    assert {"requests.nvidia.com/gpu", "requests.cpu", "requests.memory"} <= set(quota)
    deny = next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    egress_ports = {p["port"] for d in docs if d["kind"] == "NetworkPolicy"
                    for rule in d["spec"].get("egress", []) for p in rule.get("ports", [])}
    assert {53, 5432, 443, 5000} <= egress_ports  # DNS, Postgres, S3, MLflow (+ the API server for launchers)


def test_manifests_apply_to_a_real_api_server_and_rbac_is_least_privilege(kube, kubectl):
    """INF-2: kubectl apply succeeds; the launcher's ServiceAccount may manage Jobs but not Secrets or Pods."""
    run([kubectl, "apply", "-f", str(MANIFESTS)], env=kube)
    got = json.loads(run([kubectl, "get", "resourcequota,limitrange,networkpolicy,serviceaccount,role,rolebinding",
                          "-n", "rai", "-o", "json"], env=kube).stdout)["items"]
    assert {i["kind"] for i in got} >= {"ResourceQuota", "LimitRange", "NetworkPolicy", "ServiceAccount", "Role",
                                       "RoleBinding"}
    run([kubectl, "get", "runtimeclass", "nvidia"], env=kube)

    def can(verb: str, resource: str) -> bool:
        proc = run([kubectl, "auth", "can-i", verb, resource, "-n", "rai", "--as", SA], env=kube, check=False)
        return proc.stdout.strip() == "yes"

    assert can("create", "jobs.batch") and can("get", "jobs.batch/status") and can("get", "pods/log")
    assert can("delete", "pods")  # run/step termination removes the pods
    assert not can("create", "pods") and not can("get", "secrets") and not can("create", "rolebindings")
    assert not can("deletecollection", "jobs.batch") and not can("create", "pods/exec")
    proc = run([kubectl, "auth", "can-i", "create", "jobs.batch", "-n", "default", "--as", SA], env=kube, check=False)
    assert proc.stdout.strip() == "no"  # nothing outside the namespace


def test_quota_refuses_a_pod_asking_for_more_gpus_than_the_namespace_has(kube, kubectl):
    """INF-2 / REG-8: a Job whose pod asks for 5 GPUs (quota: 4) gets FailedCreate "exceeded quota"."""
    run([kubectl, "apply", "-f", str(MANIFESTS)], env=kube)
    wait_for_quota(kubectl, kube, "rai", "rai-compute")
    job = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "too-many-gpus", "namespace": "rai"},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never", "runtimeClassName": "nvidia",
            "containers": [{"name": "train", "image": "registry.example.com/rai-assets:0.1.0",
                            "resources": {"limits": {"nvidia.com/gpu": 5, "cpu": "1", "memory": "1Gi"}}}]}}},
    }
    run([kubectl, "apply", "-f", "-"], env=kube, input=json.dumps(job))
    deadline = time.monotonic() + 60
    message = ""
    while time.monotonic() < deadline and "exceeded quota" not in message:
        events = json.loads(run([kubectl, "get", "events", "-n", "rai", "-o", "json",
                                 "--field-selector", "involvedObject.name=too-many-gpus"], env=kube).stdout)["items"]
        message = " ".join(e["message"] for e in events if e["reason"] == "FailedCreate")
        time.sleep(1)
    assert "exceeded quota" in message and "nvidia.com/gpu" in message, message
    run([kubectl, "delete", "job", "too-many-gpus", "-n", "rai"], env=kube)
