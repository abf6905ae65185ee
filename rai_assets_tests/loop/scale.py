"""Synthetic tenants, uploads and drift reports at scale, cheaply: for the at-scale sensor tests (CI-sized) and
``benchmarks/landing_sensor.py`` / ``benchmarks/drift_sensor.py`` (10,000 tenants).

Uploads are bare manifests (the landing sensor only lists keys); drift reports are ledger rows plus runless
``drift_report`` materializations (what the drift sensor reads).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from dagster import AssetMaterialization, DagsterInstance
from psycopg.types.json import Jsonb

from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.ledger.tenants import register_season, register_tenant
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.assets.partitions import add_partitions, partition_key
from rai_assets.domain.ingestion import MANIFEST_SUFFIX
from rai_assets.domain.signing import KeyPair

SPEC = "rice-yield-v1"
NOT_ACTIONABLE = {"verdict": "no_drift", "reasons": [],
                  "assessment": {"n_current": 500, "min_sample": 30, "max_psi": 0.01, "features": []}}


def tenant_ids(n: int, prefix: str = "t") -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(n)]


def register_tenants(ledger: LedgerResource, tenants: Iterable[str], seasons: Iterable[str] = ()) -> None:
    """Register tenants (one shared public key) and seasons, in one transaction."""
    public_key = KeyPair.generate().public_key_b64
    seasons = list(seasons)
    with ledger.connect() as conn:
        for tenant in tenants:
            LedgerResource.switch_tenant(conn, tenant)
            register_tenant(conn, tenant, public_key, SPEC)
            for ordinal, season in enumerate(seasons, start=1):  # each tenant's own calendar
                register_season(conn, tenant, season, ordinal)


def land_manifests(store: ObjectStoreResource, uploads: Iterable[tuple[str, str]], name: str = "batch",
                   mtime: float | None = None) -> list[str]:
    """One manifest per (tenant, season); ``mtime`` (local mode) back-dates the file and its directory."""
    keys = []
    for tenant, season in uploads:
        key = f"tenants/{tenant}/landing/{season}/{name}{MANIFEST_SUFFIX}"
        store.put_bytes(key, b"{}", write_once=True, content_type="application/json")
        keys.append(key)
        path = store.local_path(key)
        if mtime is not None and path is not None:
            os.utime(path, (mtime, mtime))
            os.utime(Path(path).parent, (mtime, mtime))
    return keys


def add_drift_reports(ledger: LedgerResource, instance: DagsterInstance, reports: list[tuple[str, str]],
                      body: dict | None = None) -> list[str]:
    """A drift report (ledger row + runless materialization) per (tenant, season); returns their digests."""
    shas = []
    with ledger.connect() as conn:
        for tenant, season in reports:
            doc = {**(body or NOT_ACTIONABLE), "tenant": tenant, "season": season}
            sha = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
            LedgerResource.switch_tenant(conn, tenant)
            conn.execute(
                "INSERT INTO drift_reports (tenant_id, season_id, body_sha256, signature, signer_public_key,"
                " object_key, verdict, max_psi, body) VALUES (%s, %s, %s, 'x', 'x', 'x', %s, %s, %s)",
                (tenant, season, sha, doc["verdict"], doc["assessment"]["max_psi"], Jsonb(doc)))
            shas.append(sha)
    add_partitions(instance, tenants=sorted({t for t, _ in reports}), seasons=sorted({s for _, s in reports}))
    for (tenant, season), sha in zip(reports, shas, strict=True):
        instance.report_runless_asset_event(AssetMaterialization(
            "drift_report", partition=str(partition_key(tenant, season)), metadata={"sha256": sha}))
    return shas


def module_at_revision(rev: str, path: str, name: str) -> ModuleType:
    """Load ``path`` as it was at git revision ``rev`` (a benchmark's baseline: the code before the change)."""
    root = Path(__file__).resolve().parents[2]
    source = subprocess.run(["git", "-C", str(root), "show", f"{rev}:{path}"], check=True, capture_output=True,
                            text=True).stdout
    module = ModuleType(name)
    module.__file__ = f"{rev}:{path}"
    sys.modules[name] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module
