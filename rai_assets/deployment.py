"""How the code location runs: the executor per environment and the Kubernetes shape of each step (REG-8).

``RAI_EXECUTOR=k8s`` (set by ``helm-values.yaml`` on the user deployment) runs every job with
``dagster_k8s.k8s_job_executor``: one Kubernetes Job per step, launched by the run worker that
``K8sRunLauncher`` started. Unset (or ``local``), Dagster's default multiprocess executor runs the
steps in the run's process tree, as on a laptop.

Step pods are small CPU pods (:data:`CPU_STEP_K8S_CONFIG`) unless the op carries
:data:`TRAINING_OP_TAGS`: one ``nvidia.com/gpu``, a GPU node selector and toleration, the ``nvidia``
RuntimeClass, and CPU/memory for XGBoost's ``hist`` trainer. Runs that train carry
:data:`GPU_RUN_TAG`, which the run queue caps (``helm-values.yaml``). A training pod that lands where
CUDA is not usable trains on CPU (``rai_assets.domain.device``).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from dagster import ExecutorDefinition

EXECUTOR_ENV = "RAI_EXECUTOR"
K8S_CONFIG_TAG = "dagster-k8s/config"  # the op/job tag dagster-k8s reads raw Kubernetes config from
GPU_RESOURCE = "nvidia.com/gpu"
GPU_NODE_SELECTOR = {"rai.io/accelerator": "nvidia-gpu"}
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
GPU_RUNTIME_CLASS = "nvidia"
# Run tag of every job that trains; the run queue allows at most `helm-values.yaml`'s limit at once.
GPU_RUN_TAG = "rai/gpu-run"
GPU_RUN_TAGS = {GPU_RUN_TAG: "true"}

# Sizing. A tenant-season snapshot is at most a few 10^4 rows × 20 features (RiceFarms: 1,026 rows; the
# synthetic cooperative: 1,200 fields × seasons), so XGBoost `hist` needs < 1 GiB; the limits leave room for
# MLflow's model logging and pandas copies. Non-training steps (ingestion, snapshots, reports) stream
# small JSONL batches.
TRAINING_RESOURCES: dict[str, dict[str, Any]] = {
    "requests": {"cpu": "2", "memory": "4Gi", GPU_RESOURCE: 1},
    "limits": {"cpu": "4", "memory": "8Gi", GPU_RESOURCE: 1},
}
CPU_STEP_RESOURCES: dict[str, dict[str, Any]] = {
    "requests": {"cpu": "250m", "memory": "512Mi"},
    "limits": {"cpu": "1", "memory": "2Gi"},
}

CPU_STEP_K8S_CONFIG: dict[str, Any] = {"container_config": {"resources": CPU_STEP_RESOURCES}}
TRAINING_STEP_K8S_CONFIG: dict[str, Any] = {
    "container_config": {
        "resources": TRAINING_RESOURCES,
        # rai_assets.domain.device: a GPU was asked for, so a CPU fallback is worth a warning
        "env": [{"name": "RAI_GPU_REQUESTED", "value": "1"}],
    },
    "pod_spec_config": {
        "node_selector": GPU_NODE_SELECTOR,
        "tolerations": [GPU_TOLERATION],
        "runtime_class_name": GPU_RUNTIME_CLASS,
    },
}
TRAINING_OP_TAGS: dict[str, Any] = {K8S_CONFIG_TAG: TRAINING_STEP_K8S_CONFIG}


def executor_kind(env: dict[str, str] | None = None) -> str:
    """``"k8s"`` or ``"local"`` from ``RAI_EXECUTOR`` (case-insensitive; unset or empty = ``"local"``).

    Args:
        env: the environment to read (default ``os.environ``).

    Raises:
        ValueError: any other value, naming the accepted ones.
    """
    value = (env if env is not None else os.environ).get(EXECUTOR_ENV, "").strip().lower()
    if value in ("", "local"):
        return "local"
    if value == "k8s":
        return "k8s"
    raise ValueError(f"{EXECUTOR_ENV}={value!r}: expected 'k8s' or 'local' (or unset)")


def select_executor(env: dict[str, str] | None = None) -> ExecutorDefinition | None:
    """The executor for every job of the code location, or ``None`` for Dagster's default.

    ``RAI_EXECUTOR=k8s`` gives :func:`rai_k8s_job_executor` configured with :data:`CPU_STEP_K8S_CONFIG`
    for every step (ops tagged with :data:`TRAINING_OP_TAGS` override it); otherwise ``None``, which keeps
    the local multiprocess executor. Namespace, image, env and service account come from the run launcher.

    Raises:
        ValueError: ``RAI_EXECUTOR`` has an unknown value (see :func:`executor_kind`).
    """
    if executor_kind(env) == "local":
        return None
    return rai_k8s_job_executor().configured({"step_k8s_config": CPU_STEP_K8S_CONFIG}, name="k8s_job_executor")


def pod_create_grace_seconds() -> float:
    """Seconds a step Job may go without creating its pod before the step fails (``RAI_STEP_POD_CREATE_GRACE_S``,
    default 300: long enough for a transient quota shortage to clear, short of a silent hang)."""
    return float(os.environ.get("RAI_STEP_POD_CREATE_GRACE_S", "300"))


def rai_k8s_job_executor() -> ExecutorDefinition:
    """``dagster_k8s.k8s_job_executor`` whose step health check also fails a step whose Job cannot create its pod.

    Kubernetes does not fail a Job whose pod is refused at admission (an exceeded ResourceQuota, a missing
    ServiceAccount or RuntimeClass): the Job controller retries forever and dagster-k8s's health check, which
    only looks at ``status.failed``, waits with it (dagster-io/dagster issue 24595). Here a step whose Job has
    no pod and a ``FailedCreate`` event older than :func:`pod_create_grace_seconds` fails with the event's
    message, so the run ends FAILURE with the reason instead of hanging. Same config schema as the original.
    """
    from dagster import executor
    from dagster._core.definitions.executor_definition import multiple_process_executor_requirements
    from dagster_k8s import k8s_job_executor
    from dagster_k8s.executor import K8sStepHandler

    class PodCreationAwareK8sStepHandler(K8sStepHandler):
        """K8sStepHandler + a FailedCreate check in :meth:`check_step_health` (issue 24595)."""

        def check_step_health(self, step_handler_context: Any) -> Any:
            result = super().check_step_health(step_handler_context)
            if not result.is_healthy:
                return result
            from dagster._core.executor.step_delegating.step_handler.base import CheckStepHealthResult

            job_name = self._get_k8s_step_job_name(step_handler_context)
            namespace = str(self._get_container_context(step_handler_context).namespace)
            reason = pod_creation_failure(self._api_client.batch_api, self._api_client.core_api, namespace, job_name,
                                          grace_s=pod_create_grace_seconds())
            if reason is None:
                return result
            step_key = self._get_step_key(step_handler_context)
            return CheckStepHealthResult.unhealthy(
                reason=f"Kubernetes job {job_name} for step {step_key} cannot create its pod: {reason}")

    @executor(name="k8s", config_schema=k8s_job_executor.config_schema.as_field(),
              requirements=multiple_process_executor_requirements())
    def _executor(init_context: Any) -> Any:
        delegating: Any = k8s_job_executor.executor_creation_fn(init_context)  # type: ignore[misc]
        # Same handler state, one overridden method: swap the class rather than copy dagster-k8s's constructor.
        assert isinstance(delegating._step_handler, K8sStepHandler)
        delegating._step_handler.__class__ = PodCreationAwareK8sStepHandler
        return delegating

    return _executor


def pod_creation_failure(batch_api: Any, core_api: Any, namespace: str, job_name: str, *, grace_s: float,
                         now: datetime | None = None) -> str | None:
    """Why the Job ``job_name`` cannot create its pod, or ``None`` while it can (or may still).

    Args:
        batch_api / core_api: ``kubernetes.client.BatchV1Api`` / ``CoreV1Api``.
        namespace, job_name: the step's Job.
        grace_s: a ``FailedCreate`` younger than this (seconds since its first occurrence) is not yet final.
        now: the current time (UTC); tests pass one.

    Returns the latest ``FailedCreate`` event message (e.g. ``pods "…" is forbidden: exceeded quota: …``)
    when the Job has no active, succeeded or failed pod and such an event is at least ``grace_s`` old.
    """
    status = batch_api.read_namespaced_job_status(job_name, namespace).status
    if status.active or status.succeeded or status.failed:
        return None
    events = core_api.list_namespaced_event(
        namespace, field_selector=f"involvedObject.kind=Job,involvedObject.name={job_name}").items
    refused = [e for e in events if e.reason == "FailedCreate"]
    if not refused:
        return None
    now = now or datetime.now(UTC)
    first = min((e.first_timestamp or e.event_time or now) for e in refused)
    if (now - first).total_seconds() < grace_s:
        return None
    latest = max(refused, key=lambda e: e.last_timestamp or e.first_timestamp or now)
    return str(latest.message)


LANDING_EXPIRE_DAYS = 90  # raw tenant uploads: in the ledger once ingested; kept a season for re-plays
TMP_EXPIRE_DAYS = 1  # INF-3: tmp/ goes after 24 h


def provision_bucket(client: Any, bucket: str, tenants: list[str], *, region: str = "us-east-1") -> None:
    """Create (or update) the production object-store bucket (INF-3).

    Object Lock is enabled at creation (it implies versioning; it cannot be switched on later), with no
    default retention: snapshots and signed reports get COMPLIANCE retention per object when written
    write-once (``ObjectStoreResource.s3_object_lock_days``). Public access is blocked, objects are
    encrypted (SSE-S3), and lifecycle rules expire ``tmp/`` after :data:`TMP_EXPIRE_DAYS` and each tenant's
    landing zone (``tenants/<tenant>/landing/``) after :data:`LANDING_EXPIRE_DAYS`, with noncurrent versions
    and incomplete multipart uploads cleaned up.

    Args:
        client: a boto3 S3 client.
        bucket: bucket name; an existing bucket owned by the caller is updated in place.
        tenants: tenant ids whose landing zones get a rule (S3 prefixes have no wildcard).
        region: the bucket's region (no LocationConstraint for us-east-1).

    Raises:
        botocore.exceptions.ClientError: S3 refused a call (e.g. the bucket belongs to someone else).
    """
    from botocore.exceptions import ClientError

    create: dict[str, Any] = {"Bucket": bucket, "ObjectLockEnabledForBucket": True}
    if region != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**create)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise
    client.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    client.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})

    def rule(rule_id: str, prefix: str, days: int) -> dict[str, Any]:
        return {"ID": rule_id, "Filter": {"Prefix": prefix}, "Status": "Enabled", "Expiration": {"Days": days},
                "NoncurrentVersionExpiration": {"NoncurrentDays": days},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}

    rules = [rule("tmp", "tmp/", TMP_EXPIRE_DAYS)]
    rules += [rule(f"landing-{t}", f"tenants/{t}/landing/", LANDING_EXPIRE_DAYS) for t in sorted(set(tenants))]
    client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
