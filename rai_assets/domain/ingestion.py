"""Ingestion rules for signed landing batches (ING-1..4), free of I/O.

A tenant upload is a pair of objects in the landing zone:

* ``<batch>.jsonl`` — one learning event per line (UTF-8 JSON, see the data contract);
* ``<batch>.manifest.json`` — the signed batch manifest: tenant, season, contract version,
  the data file's name, the line count and the SHA-256 of every line, plus an Ed25519
  signature (by the tenant's key) over the canonical JSON of all other manifest fields.

Verifying one signature per batch and one SHA-256 per line gives per-event integrity (a
tampered line is caught on its own) at a fraction of the cost of one signature per event.

Every input line ends in exactly one bucket: accepted, duplicate (identical payload already
stored — a no-op), conflict (same key, different payload — recorded, never overwritten) or
dead letter (with its reason, raw payload and source). Nothing is dropped silently.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic_core

from rai_assets.domain.canonical import canonical_json, sha256_hex
from rai_assets.domain.contract import Contract, ContractError
from rai_assets.domain.ids import InvalidIdentifierError, field_id
from rai_assets.domain.signing import KeyPair, SignatureError, verify

MANIFEST_KIND = "rai-assets/landing-manifest"
MANIFEST_SUFFIX = ".manifest.json"
DATA_SUFFIX = ".jsonl"


@dataclass(frozen=True)
class DeadLetter:
    """A rejected input line (or whole batch) with why it was rejected (ING-4)."""

    source: str
    line_no: int | None  # 1-based; None for a batch-level rejection without lines
    reason: str
    raw: str


@dataclass(frozen=True)
class AcceptedEvent:
    """A contract-valid, integrity-checked event, keyed by its field id."""

    field_id: str
    payload: dict[str, Any]
    payload_sha256: str
    source: str
    line_no: int
    canonical: bytes = b""  # the payload's canonical JSON: what is hashed and stored


@dataclass
class BatchOutcome:
    """What one batch produced: events to store and dead letters to record."""

    events: list[AcceptedEvent] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} overflows to a non-finite float")
    return value


def parse_json_line(raw: str | bytes) -> Any:
    """Strict JSON: NaN, Infinity and overflowing numbers are refused.

    The fast path is ``pydantic_core.from_json`` (Rust; NaN/Infinity refused); only when it
    fails, or a number overflowed to infinity, is the line re-parsed with the standard library
    to produce a precise error message.

    Raises:
        ValueError: the text is not strict JSON (``json.JSONDecodeError`` is a ValueError).
    """
    try:
        value = pydantic_core.from_json(raw, allow_inf_nan=False)
    except ValueError:
        value = None
    if value is None or _has_non_finite(value):
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    return value


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(v) for v in value)
    return False


def sign_manifest(manifest: Mapping[str, Any], key: KeyPair) -> dict[str, Any]:
    """Return ``manifest`` with an Ed25519 ``signature`` over its canonical JSON (tenant side)."""
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return {**body, "signature": key.sign(canonical_json(body))}


def build_manifest(
    tenant: str, season: str, data_file: str, lines: list[bytes], contract_version: str, key: KeyPair
) -> dict[str, Any]:
    """Build and sign the manifest of a batch whose data file holds ``lines`` (without newlines)."""
    return sign_manifest(
        {
            "kind": MANIFEST_KIND,
            "tenant_id": tenant,
            "season_id": season,
            "data_file": data_file,
            "contract": "learning-event",
            "contract_version": contract_version,
            "line_count": len(lines),
            "line_sha256": [sha256_hex(line) for line in lines],
        },
        key,
    )


def split_lines(data: bytes) -> list[bytes]:
    """Lines of a JSON Lines file without their ``\\n`` (a final newline adds no empty line)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def _whole_batch_rejected(source: str, lines: list[bytes], reason: str) -> BatchOutcome:
    out = BatchOutcome()
    if not lines:
        out.dead_letters.append(DeadLetter(source, None, reason, ""))
    for i, line in enumerate(lines, start=1):
        out.dead_letters.append(DeadLetter(source, i, reason, line.decode("utf-8", "replace")))
    return out


def process_batch(
    *,
    tenant: str,
    season: str,
    data_source: str,
    data: bytes,
    manifest_bytes: bytes | None,
    public_key_b64: str | None,
    contract: Contract,
) -> BatchOutcome:
    """Check one landing batch and split it into accepted events and dead letters.

    Args:
        tenant, season: the partition being ingested (already validated ids).
        data_source: the data file's object key (recorded with each dead letter).
        data: the raw JSON Lines bytes.
        manifest_bytes: the raw signed manifest, or None when it is missing.
        public_key_b64: the tenant's registered Ed25519 public key, None for an unknown tenant.
        contract: the contract reader for the accepted major version.

    Returns:
        The batch outcome; never raises for bad input — every problem becomes a dead letter.
    """
    lines = split_lines(data)
    if public_key_b64 is None:
        return _whole_batch_rejected(data_source, lines, f"unknown tenant {tenant!r}: no registered public key")
    if manifest_bytes is None:
        return _whole_batch_rejected(data_source, lines, "signed manifest missing")
    try:
        manifest = parse_json_line(manifest_bytes.decode("utf-8"))
        if not isinstance(manifest, dict) or manifest.get("kind") != MANIFEST_KIND:
            raise ValueError(f"not a {MANIFEST_KIND} document")
        signature = manifest["signature"]
        body = {k: v for k, v in manifest.items() if k != "signature"}
        digests = list(body["line_sha256"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        return _whole_batch_rejected(data_source, lines, f"manifest unreadable: {exc}")
    try:
        verify(public_key_b64, canonical_json(body), str(signature))
    except SignatureError as exc:
        return _whole_batch_rejected(data_source, lines, f"batch signature invalid: {exc}")
    if body.get("tenant_id") != tenant or body.get("season_id") != season:
        return _whole_batch_rejected(
            data_source,
            lines,
            f"manifest is for tenant/season {body.get('tenant_id')!r}/{body.get('season_id')!r}, "
            f"landed under {tenant!r}/{season!r}",
        )

    out = BatchOutcome()
    for i, line in enumerate(lines, start=1):
        raw = line.decode("utf-8", "replace")
        if i > len(digests):
            out.dead_letters.append(DeadLetter(data_source, i, "line not covered by the signed manifest", raw))
            continue
        if sha256_hex(line) != digests[i - 1]:
            out.dead_letters.append(
                DeadLetter(data_source, i, "line digest does not match the signed manifest (tampered)", raw)
            )
            continue
        reason, event = check_event(line, tenant=tenant, season=season, contract=contract)
        if reason is not None or event is None:
            out.dead_letters.append(DeadLetter(data_source, i, reason or "invalid event", raw))
            continue
        canonical = canonical_json(event)
        out.events.append(
            AcceptedEvent(
                field_id=event["field_id"],
                payload=event,
                payload_sha256=sha256_hex(canonical),
                source=data_source,
                line_no=i,
                canonical=canonical,
            )
        )
    if len(lines) < len(digests):
        out.dead_letters.append(
            DeadLetter(
                data_source,
                None,
                f"data file has {len(lines)} lines but the signed manifest lists {len(digests)} (truncated)",
                "",
            )
        )
    return out


def check_event(raw: str | bytes, *, tenant: str, season: str, contract: Contract) -> tuple[str | None, dict | None]:
    """Decode and validate one event line for partition (tenant, season).

    Returns:
        ``(None, event)`` when valid, else ``(reason, None)`` with a reason naming the problem.
    """
    try:
        event = parse_json_line(raw)
    except ValueError as exc:
        return f"malformed JSON: {exc}", None
    try:
        contract.validate(event)
    except ContractError as exc:
        return str(exc), None
    if event["tenant_id"] != tenant:
        return f"tenant_id {event['tenant_id']!r} does not match the batch tenant {tenant!r}", None
    if event["season_id"] != season:
        return f"season_id {event['season_id']!r} does not match the batch season {season!r}", None
    try:
        field_id(event["field_id"])
    except InvalidIdentifierError as exc:
        return str(exc), None
    return None, event


@dataclass
class DedupResult:
    """Events split by the idempotency key (tenant, season, field) — ING-2."""

    new: list[AcceptedEvent] = field(default_factory=list)
    duplicates: list[AcceptedEvent] = field(default_factory=list)
    conflicts: list[tuple[AcceptedEvent, str]] = field(default_factory=list)  # (event, stored sha)


def deduplicate(events: Iterable[AcceptedEvent], stored: Mapping[str, str]) -> DedupResult:
    """Classify ``events`` against ``stored`` (field id → payload SHA-256 already in the ledger).

    Within the input, the first occurrence of a key wins and later ones are compared with it.
    """
    seen: dict[str, str] = dict(stored)
    out = DedupResult()
    for event in events:
        known = seen.get(event.field_id)
        if known is None:
            seen[event.field_id] = event.payload_sha256
            out.new.append(event)
        elif known == event.payload_sha256:
            out.duplicates.append(event)
        else:
            out.conflicts.append((event, known))
    return out
