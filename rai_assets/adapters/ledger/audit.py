"""The hash-chained audit log (GOV-3): appending governance actions and verifying a tenant's chain.

Each row's ``entry`` is the canonical text the database built from its fields, and
``entry_hash = sha256(prev_hash || entry)``; ``prev_hash`` is the previous row's hash (64 zeros for
the first) and ``seq`` counts 1, 2, 3, … per tenant. An edited, inserted or deleted row therefore
breaks the chain at that point, which :func:`verify_chain` reports.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from rai_assets.adapters import metrics
from rai_assets.adapters.ledger.resource import Conn
from rai_assets.adapters.tracing import current_trace_id

GENESIS = "0" * 64
_FIELDS = ("tenant_id", "seq", "action", "actor", "db_role", "model_id", "before", "after", "reason", "trace_id",
           "prev_hash")


def append(conn: Conn, *, tenant: str, action: str, actor: str, reason: str, model_id: int | None = None,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None, trace_id: str = "") -> int:
    """Append one governance action to the tenant's chain; returns its ``seq``.

    The database fills ``seq``, ``prev_hash``, ``at``, ``db_role``, ``entry`` and ``entry_hash``;
    ``trace_id`` defaults to the current span's (OBS-2).
    """
    row = conn.execute(
        "INSERT INTO audit_log (tenant_id, action, actor, db_role, model_id, before, after, reason, trace_id, at,"
        " prev_hash, entry, entry_hash, seq) VALUES (%s, %s, %s, '', %s, %s, %s, %s, %s, now(), '', '', '', 0)"
        " RETURNING seq",
        (tenant, action, actor, model_id, Jsonb(before) if before is not None else None,
         Jsonb(after) if after is not None else None, reason, trace_id or current_trace_id()),
    ).fetchone()
    assert row is not None
    return int(row["seq"])


@dataclass(frozen=True)
class ChainVerification:
    """Outcome of verifying one tenant's audit chain."""

    tenant: str
    entries: int
    ok: bool
    problems: tuple[str, ...]


def verify_chain(conn: Conn, tenant: str) -> ChainVerification:
    """Recompute the tenant's chain from its rows and report every break (gap, edit, reordering)."""
    rows = conn.execute(
        "SELECT tenant_id, seq, action, actor, db_role, model_id, before, after, reason, trace_id, prev_hash, entry,"
        " entry_hash FROM audit_log WHERE tenant_id = %s ORDER BY seq",
        (tenant,),
    ).fetchall()
    problems: list[str] = []
    expected_prev = GENESIS
    for index, row in enumerate(rows, start=1):
        where = f"entry seq {row['seq']}"
        if row["seq"] != index:
            problems.append(f"{where}: expected seq {index} (a row is missing or out of order)")
        if row["prev_hash"] != expected_prev:
            problems.append(f"{where}: prev_hash does not match the previous entry's hash")
        digest = hashlib.sha256((row["prev_hash"] + row["entry"]).encode("utf-8")).hexdigest()
        if digest != row["entry_hash"]:
            problems.append(f"{where}: entry_hash does not match its entry (edited)")
        try:
            entry = json.loads(row["entry"])
        except ValueError:
            problems.append(f"{where}: entry is not JSON")
            entry = {}
        mismatched = [f for f in _FIELDS if entry.get(f) != row[f]]
        if mismatched:
            problems.append(f"{where}: columns {mismatched} differ from the hashed entry (edited)")
        expected_prev = row["entry_hash"]
    if problems:
        metrics.integrity_failures.labels(tenant=tenant, check="audit_chain").inc()
    return ChainVerification(tenant=tenant, entries=len(rows), ok=not problems, problems=tuple(problems))
