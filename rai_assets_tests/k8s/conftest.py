"""Fixtures of the Kubernetes tier (``make test-k8s``, marker ``k8s``; not in the default run).

The tools come from ``shared/tools/k8s`` (beside the repository, or ``RAI_SHARED_DIR``): helm and kubectl
(installed from PyPI into ``~/.cache/rai-tools``), and a real kube-apiserver + kube-controller-manager +
etcd started on loopback by ``kube-up.sh`` and stopped by ``kube-down.sh``, which signals only the PIDs it
recorded. No kubelet and no scheduler: Pods stay Pending, but everything the API server admits or refuses
(quota, LimitRange, RuntimeClass, RBAC) is real.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """``RAI_SHARED_DIR`` or the ``shared/`` folder beside the repository (CI lays a copy there)."""
    env = os.environ.get("RAI_SHARED_DIR")
    if env:
        return Path(env)
    for candidate in (REPO.parent / "shared", REPO.parent.parent / "shared"):
        if (candidate / "tools" / "k8s").is_dir():
            return candidate
    return REPO.parent / "shared"


TOOLS = shared_dir() / "tools" / "k8s"
CHART = shared_dir() / "reference" / "dagster-helm" / "chart"
VALUES = REPO / "helm-values.yaml"
MANIFESTS = REPO / "resources" / "k8s"
K8S_TARGET_VERSIONS = ("1.30.0", "1.35.0")  # kubernetes-validate schemas the manifests must satisfy (INF-2)


def run(cmd: list[str], check: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; with ``check``, raise with its output when it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} -> {proc.returncode}\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def wait_for_quota(kubectl: str, env: dict[str, str], namespace: str, name: str, timeout_s: float = 60) -> None:
    """Wait until the quota controller has computed ``status.hard`` of a ResourceQuota: until then the
    API server admits pods without counting them against it (a new quota is not enforced at once)."""
    import json
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        quota = json.loads(run([kubectl, "get", "resourcequota", name, "-n", namespace, "-o", "json"], env=env).stdout)
        if quota.get("status", {}).get("hard"):
            return
        time.sleep(0.5)
    raise AssertionError(f"ResourceQuota {namespace}/{name} has no status after {timeout_s} s")


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of the offline helm binary (installed once into the tools cache)."""
    if not TOOLS.is_dir():
        pytest.fail(f"shared tools not found at {TOOLS} (set RAI_SHARED_DIR)")
    return run(["bash", str(TOOLS / "install-helm.sh")]).stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def kubectl(helm: str) -> str:
    """Path of kubectl (installed next to helm)."""
    return str(Path(helm).with_name("kubectl"))


def render_chart(helm: str, *extra: str) -> list[dict]:
    """``helm template`` of the vendored official chart with ``helm-values.yaml``: the manifests, in order."""
    out = run([helm, "template", "rai", str(CHART), "-n", "rai", "-f", str(VALUES), "--skip-schema-validation",
               *extra]).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="session")
def rendered(helm: str) -> list[dict]:
    """The chart's manifests rendered with ``helm-values.yaml``."""
    return render_chart(helm)


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory, kubectl: str) -> Iterator[dict[str, str]]:
    """A real API server for the session: yields an environment with ``KUBECONFIG``; stopped by PID."""
    run(["bash", str(TOOLS / "build-kube.sh")], timeout=1800)  # 0.2 s when cached, ~5 min once
    state = tmp_path_factory.mktemp("kube")
    out = run(["bash", str(TOOLS / "kube-up.sh"), str(state)], timeout=300).stdout
    kubeconfig = next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("export KUBECONFIG="))
    env = {**os.environ, "KUBECONFIG": kubeconfig}
    try:
        yield env
    finally:
        subprocess.run(["bash", str(TOOLS / "kube-down.sh"), str(state), "--purge"], capture_output=True, timeout=120)
