"""Shared fixtures: a real embedded Postgres (pgserver) for the session, a fresh ledger database
per test, a temporary MLflow store, local object store and signer, and an ephemeral Dagster
instance. Nothing is mocked."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("RAI_METRICS_FILE", os.path.join(tempfile.mkdtemp(prefix="rai-metrics-"), "rai_assets.prom"))

from rai_assets.adapters.ledger.embedded import LEDGER_DATABASE, start_embedded_postgres, stop_embedded_postgres
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.adapters.signer import SignerResource

pytest_plugins = ["rai_assets_tests.s3_server"]


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the ledger database on a session-wide embedded Postgres, stopped by PID at the end."""
    state = tmp_path_factory.mktemp("pg")
    url, _pid = start_embedded_postgres(state)
    try:
        yield url
    finally:
        stop_embedded_postgres(state)


@pytest.fixture
def ledger(pg_server_url: str) -> LedgerResource:
    """A ledger on a brand-new database (migrated on first use)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return LedgerResource(owner_url=pg_server_url.replace(f"/{LEDGER_DATABASE}?", f"/{name}?"))


@pytest.fixture(scope="session")
def mlflow_registry(tmp_path_factory: pytest.TempPathFactory) -> MlflowRegistryResource:
    """MLflow tracking + registry on a temporary SQLite store (shared by the session; tenants are unique)."""
    return MlflowRegistryResource(state_dir=str(tmp_path_factory.mktemp("mlflow")))


@pytest.fixture
def resources(ledger: LedgerResource, mlflow_registry: MlflowRegistryResource, tmp_path: Path) -> dict[str, object]:
    """The code location's resources on temporary stores."""
    return {
        "ledger": ledger,
        "object_store": ObjectStoreResource(local_root=str(tmp_path / "objects")),
        "mlflow_registry": mlflow_registry,
        "signer": SignerResource(state_dir=str(tmp_path)),
    }


@pytest.fixture
def suffix() -> str:
    """A short random suffix that keeps tenant ids unique within the session's MLflow store."""
    return uuid.uuid4().hex[:6]
