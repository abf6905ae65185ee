"""Content-addressed dataset snapshots (SNAP-1).

A snapshot is the training window of a partition: every stored event of the tenant from the
seasons strictly before the partition's season, ordered by (season order, field id). Each row
is hashed as the SHA-256 of its canonical JSON payload; the Merkle root over the row digests
names the snapshot, so the same events always give the same root.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from rai_assets.domain.canonical import merkle_root, row_digests
from rai_assets.domain.features import events_frame
from rai_assets.domain.model_spec import ModelSpec


@dataclass(frozen=True)
class Snapshot:
    """The snapshot's rows as a frame, its Merkle root and which seasons it holds."""

    frame: pd.DataFrame
    merkle_root: str
    source_seasons: tuple[str, ...]

    @property
    def row_count(self) -> int:
        """Number of rows (events)."""
        return len(self.frame)

    def to_parquet(self) -> bytes:
        """Parquet bytes of the frame (pyarrow, no index)."""
        buf = io.BytesIO()
        self.frame.to_parquet(buf, index=False, engine="pyarrow")
        return buf.getvalue()


def build_snapshot(payloads: Sequence[dict[str, Any]], source_seasons: Sequence[str], spec: ModelSpec) -> Snapshot:
    """Build the snapshot of ``payloads`` (already in season-then-field order).

    Raises:
        ValueError: the payloads lack the target columns named by ``spec``.
    """
    return Snapshot(
        frame=events_frame(payloads, spec),
        merkle_root=merkle_root(row_digests(payloads)),
        source_seasons=tuple(source_seasons),
    )


def snapshot_from_parquet(data: bytes) -> pd.DataFrame:
    """Read a stored snapshot back into a frame."""
    return pd.read_parquet(io.BytesIO(data), engine="pyarrow")
