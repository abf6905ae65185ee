"""The code server at a CI-sized scale (issue 12, goal 6): ``dagster api grpc -m rai_assets.definitions`` (the
user-code deployment's command, INF-1) loads, and answers the partition calls the webserver sends for a backfill
of one season over 500 tenants with the right tags for every partition.

The 10,000-tenant memory figures are measured by ``benchmarks/memory.py``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from dagster import DagsterInstance
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin, RemoteRepositoryOrigin
from dagster._core.remote_representation.external_data import (
    PartitionSetExecutionParamSnap,
    PartitionTagsSnap,
)
from dagster._grpc.client import DagsterGrpcClient
from dagster._grpc.types import PartitionArgs, PartitionSetExecutionParamArgs
from dagster._serdes import deserialize_value

from rai_assets.assets.partitions import add_partitions
from rai_assets.definitions import TENANT_SEASON_JOB
from rai_assets_tests.loop.scale import tenant_ids

PARTITION_SET = f"{TENANT_SEASON_JOB}_partition_set"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_inf1_code_server_answers_a_backfill_over_500_tenants(tmp_path: Path) -> None:
    (tmp_path / "dagster").mkdir()
    instance = DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster"))
    tenants = tenant_ids(500)
    add_partitions(instance, tenants=tenants, seasons=["s01", "s02", "s03"])
    port = _free_port()
    env = {**os.environ, "RAI_STATE_DIR": str(tmp_path / "state"), "DAGSTER_HOME": str(tmp_path / "dagster"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    log = tmp_path / "code-server.log"
    with log.open("wb") as out:
        server = subprocess.Popen([str(Path(sys.executable).parent / "dagster"), "api", "grpc", "-m",
                                   "rai_assets.definitions", "-h", "127.0.0.1", "-p", str(port)],
                                  env=env, stdout=out, stderr=out)
    try:
        client = DagsterGrpcClient(port=port, host="127.0.0.1")
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, f"code server exited with {server.returncode}: {log.read_text()}"
            try:
                client.ping("up")
                break
            except Exception:  # not listening yet
                assert time.monotonic() < deadline, f"code server silent for 120 s: {log.read_text()}"
                time.sleep(0.2)
        origin = RemoteRepositoryOrigin(GrpcServerCodeLocationOrigin(host="127.0.0.1", port=port,
                                                                     location_name="rai_assets"), "__repository__")
        keys = [f"s02|{t}" for t in instance.get_dynamic_partitions("tenant")]
        params = deserialize_value(client.external_partition_set_execution_params(PartitionSetExecutionParamArgs(
            repository_origin=origin, partition_set_name=PARTITION_SET, partition_names=keys,
            instance_ref=instance.get_ref())))
        assert isinstance(params, PartitionSetExecutionParamSnap), params
        assert [(p.name, p.tags["dagster/partition/tenant"], p.tags["dagster/partition/season"])
                for p in params.partition_data] == [(f"s02|{t}", t, "s02") for t in tenants]

        tags = deserialize_value(client.external_partition_tags(PartitionArgs(
            repository_origin=origin, partition_set_name=PARTITION_SET, partition_name=f"s03|{tenants[-1]}",
            job_name=TENANT_SEASON_JOB, instance_ref=instance.get_ref())))
        assert isinstance(tags, PartitionTagsSnap), tags
        assert tags.tags["dagster/partition/tenant"] == tenants[-1]

    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
