"""Signed checkpoints of each tenant's audit-chain head, write-once in the object store (GOV-8, GOV-3).

The hash chain (:mod:`rai_assets.adapters.ledger.audit`) finds an edited, inserted or deleted
entry *inside* the chain, but not a cut tail: an owner who deletes the last entries leaves a
shorter chain that still verifies. A checkpoint anchors the head outside the database: the
canonical body ``{"kind": "audit_checkpoint", "tenant", "seq", "entry_hash"}`` signed with the
platform key (:mod:`rai_assets.domain.signing_envelope`) and stored write-once at
``tenants/<t>/audit-checkpoints/<seq:012d>.json``. :func:`verify_against_checkpoints` then
requires every checkpointed ``(seq, entry_hash)`` to be present in the ledger's chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from rai_assets.adapters.ledger.resource import Conn
from rai_assets.adapters.object_store import ObjectStoreResource, tenant_key, tenant_prefix
from rai_assets.domain.signing import KeyPair, SignatureError
from rai_assets.domain.signing_envelope import sign_document, verify_document

CHECKPOINT_DIR = "audit-checkpoints"


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint: the chain of ``tenant`` had entry ``seq`` with hash ``entry_hash``."""

    tenant: str
    seq: int
    entry_hash: str
    object_key: str


def checkpoint_key(tenant: str, seq: int) -> str:
    """``tenants/<tenant>/audit-checkpoints/<seq, 12 digits>.json`` (lexical order = seq order)."""
    return tenant_key(tenant, CHECKPOINT_DIR, f"{seq:012d}.json")


def chain_head(conn: Conn, tenant: str) -> tuple[int, str] | None:
    """``(seq, entry_hash)`` of the tenant's last audit entry, or None for an empty chain."""
    row = conn.execute("SELECT seq, entry_hash FROM audit_log WHERE tenant_id = %s ORDER BY seq DESC LIMIT 1",
                       (tenant,)).fetchone()
    return None if row is None else (int(row["seq"]), str(row["entry_hash"]))


def write_checkpoint(conn: Conn, store: ObjectStoreResource, key: KeyPair, tenant: str) -> Checkpoint | None:
    """Sign the tenant's current chain head and store it write-once (idempotent for the same head).

    Returns:
        The checkpoint written (or already there), or None when the chain is empty.
    """
    head = chain_head(conn, tenant)
    if head is None:
        return None
    seq, entry_hash = head
    doc = sign_document({"kind": "audit_checkpoint", "tenant": tenant, "seq": seq, "entry_hash": entry_hash}, key)
    object_key = checkpoint_key(tenant, seq)
    store.put_bytes(object_key, doc.to_bytes(), write_once=True, content_type="application/json")
    return Checkpoint(tenant, seq, entry_hash, object_key)


def read_checkpoints(store: ObjectStoreResource, tenant: str, public_key: str) -> tuple[list[Checkpoint], list[str]]:
    """Every stored checkpoint of ``tenant`` whose signature verifies with ``public_key``, oldest first,
    and a problem line for each that does not."""
    prefix = tenant_prefix(tenant) + CHECKPOINT_DIR + "/"
    found: list[Checkpoint] = []
    problems: list[str] = []
    for object_key in store.list_keys(prefix):
        try:
            doc = verify_document(store.get_bytes(object_key), public_key)
            body = doc.body
            if body.get("kind") != "audit_checkpoint" or body.get("tenant") != tenant:
                raise SignatureError("not an audit checkpoint of this tenant")
            checkpoint = Checkpoint(tenant, int(body["seq"]), str(body["entry_hash"]), object_key)
        except (SignatureError, ValueError, KeyError, TypeError, LookupError) as exc:
            problems.append(f"audit checkpoint {object_key}: does not verify ({exc})")
            continue
        if object_key != checkpoint_key(tenant, checkpoint.seq):
            problems.append(f"audit checkpoint {object_key}: names seq {checkpoint.seq}, stored under another key")
            continue
        found.append(checkpoint)
    return sorted(found, key=lambda c: c.seq), problems


def verify_against_checkpoints(conn: Conn, store: ObjectStoreResource, public_key: str, tenant: str
                               ) -> tuple[Checkpoint | None, list[str]]:
    """Check that every checkpointed ``(seq, entry_hash)`` is still in the ledger's chain.

    Returns:
        The latest valid checkpoint (or None) and a problem line per mismatch: a cut tail (the chain
        is shorter than a checkpoint), a rewritten entry (different hash at a checkpointed seq), or a
        checkpoint whose signature does not verify.
    """
    checkpoints, problems = read_checkpoints(store, tenant, public_key)
    if not checkpoints:
        return None, problems
    rows = conn.execute(
        "SELECT seq, entry_hash FROM audit_log WHERE tenant_id = %s AND seq = ANY(%s)",
        (tenant, [c.seq for c in checkpoints]),
    ).fetchall()
    hashes = {int(r["seq"]): str(r["entry_hash"]) for r in rows}
    head = chain_head(conn, tenant)
    for c in checkpoints:
        stored = hashes.get(c.seq)
        if stored is None:
            problems.append(f"entry seq {c.seq}: missing, but the signed checkpoint {c.object_key} anchors it "
                            f"(the chain ends at seq {head[0] if head else 0}: its tail was cut)")
        elif stored != c.entry_hash:
            problems.append(f"entry seq {c.seq}: entry_hash differs from the signed checkpoint {c.object_key}")
    return checkpoints[-1], problems
