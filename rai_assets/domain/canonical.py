"""Canonical JSON, SHA-256 digests and Merkle roots (SNAP-1, DRIFT-3, GOV-6).

Canonical JSON here is RFC 8785-style for the values this project emits: keys sorted, no
insignificant whitespace, UTF-8, and no NaN/Infinity (``allow_nan=False``), so the same report
always has the same bytes and therefore the same SHA-256 and signature.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

EMPTY_MERKLE_ROOT = hashlib.sha256(b"").hexdigest()


def canonical_json(value: Any) -> bytes:
    """Serialise ``value`` to canonical JSON bytes (sorted keys, compact, UTF-8).

    Raises:
        ValueError: ``value`` contains NaN or ±Infinity (not representable in JSON).
        TypeError: ``value`` contains a non-JSON type.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` as 64 lower-case hex characters."""
    return hashlib.sha256(data).hexdigest()


def merkle_root(leaf_digests: Sequence[str]) -> str:
    """Merkle root (hex) over ``leaf_digests`` (hex SHA-256 of each row, in row order).

    Construction: leaves are hashed again with a 0x00 prefix and inner nodes with a 0x01
    prefix (the domain separation of RFC 6962 §2.1, which prevents second-preimage attacks
    between leaves and nodes); an odd node at the end of a level is promoted unchanged.
    An empty input gives :data:`EMPTY_MERKLE_ROOT` (SHA-256 of the empty string).

    Raises:
        ValueError: a digest is not 64 hex characters.
    """
    if not leaf_digests:
        return EMPTY_MERKLE_ROOT
    level: list[bytes] = []
    for digest in leaf_digests:
        if len(digest) != 64:
            raise ValueError(f"leaf digest {digest!r} is not a 64-character hex SHA-256")
        level.append(hashlib.sha256(b"\x00" + bytes.fromhex(digest)).digest())
    while len(level) > 1:
        nxt = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0].hex()


def row_digests(rows: Iterable[dict[str, Any]]) -> list[str]:
    """SHA-256 hex of the canonical JSON of each row (one digest per row, same order)."""
    return [sha256_hex(canonical_json(row)) for row in rows]
