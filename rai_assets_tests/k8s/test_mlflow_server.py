"""Production stores: MLflow as a server (`mlflow server`, Postgres backend store, S3 artifacts on the moto
server, `--serve-artifacts`) and the project's registry resource talking to it over HTTP. Tier `k8s`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import psycopg
import pytest

from rai_assets.adapters.ledger.embedded import LEDGER_DATABASE
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.domain.training import predict

pytestmark = pytest.mark.k8s


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mlflow_server(pg_server_url: str, s3_endpoint: str, tmp_path: Path):
    """`mlflow server` on loopback: backend store a fresh Postgres database, artifacts proxied to S3 (moto).
    Stopped by signalling the process group of the PID it started."""
    db = f"mlflow_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db}")
    backend = pg_server_url.replace(f"/{LEDGER_DATABASE}?", f"/{db}?")
    bucket = f"mlflow-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    port = _free_port()
    env = {**os.environ, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint}
    mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
    log = (tmp_path / "mlflow-server.log").open("w")
    proc = subprocess.Popen([mlflow_bin, "server", "--backend-store-uri", backend, "--serve-artifacts",
                             "--artifacts-destination", f"s3://{bucket}/artifacts", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((tmp_path / "mlflow-server.log").read_text()[-4000:])
            time.sleep(0.5)
        yield url, bucket
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers: the group of the PID we started
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def test_registry_resource_logs_and_loads_models_through_the_server(mlflow_server, s3_endpoint, tmp_path):
    """REG-1 on the production stack: a model registered over HTTP lands in S3 through the server's artifact
    proxy, loads back identical, and the champion alias is set and read through the server."""
    import xgboost as xgb

    url, bucket = mlflow_server
    registry = MlflowRegistryResource(tracking_uri=url, artifact_root="mlflow-artifacts:/rai",
                                      state_dir=str(tmp_path / "unused"))
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
    target = 3 * features["a"].to_numpy() + 1
    model = xgb.XGBRegressor(n_estimators=5, max_depth=2, tree_method="hist", random_state=0).fit(features, target)
    tenant = f"srv-{uuid.uuid4().hex[:6]}"
    run_id, version = registry.log_trained_model(tenant=tenant, season="s02", model=model, example=features.head(5),
                                                 params={"seed": 0}, metrics={"mae": 0.1}, tags={"rai.tenant": tenant})
    assert version == 1 and run_id
    keys = [o["Key"] for o in boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(
        Bucket=bucket, Prefix="artifacts/")["Contents"]]
    assert any("model" in k for k in keys), keys  # the artifact went to S3, not to a local folder
    assert not (tmp_path / "unused").exists() or not any((tmp_path / "unused").rglob("*.json"))
    loaded = registry.load_model(tenant, version)
    np.testing.assert_allclose(predict(loaded, features), predict(model, features))
    registry.set_champion_alias(tenant, version)
    assert registry.champion_version(tenant) == version
