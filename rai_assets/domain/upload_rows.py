"""A tenant's rows file (CSV or JSON Lines) as canonical learning events for one signed batch.

Pure: text in, canonical JSON lines out. ``rai-assets upload`` reads the file, calls
:func:`events_from_rows` and signs what it returns (:func:`rai_assets.domain.ingestion.build_manifest`).

* JSON Lines: one learning event per line, as the contract ``learning-event`` describes it.
* CSV: one event per row; nested fields are dotted column names (``farm.size_ha``,
  ``inputs.seed_kg``, ``harvest.gross_output_kg`` …); a cell is converted to the type the contract's
  schema gives the field (``number`` → float, ``integer`` → int); an empty cell leaves the field out.

In both, a missing ``tenant_id`` / ``season_id`` / ``schema_version`` is filled in from the upload's
tenant, season and contract version; one that is present must agree with them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from rai_assets.domain.canonical import canonical_json


class UploadRowsError(ValueError):
    """A rows file that cannot become a batch; the message names the file's line and the field."""


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """``node`` with a local ``$ref`` (``#/$defs/…``) followed; other nodes as they are."""
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return node
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part]
    return _resolve(target, root)


def _field_types(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None,
                 prefix: str = "") -> dict[str, str]:
    """Dotted path → JSON Schema ``type`` of every leaf property of ``schema`` (untyped leaves: string)."""
    root = schema if root is None else root
    out: dict[str, str] = {}
    for name, raw in schema.get("properties", {}).items():
        prop, path = _resolve(raw, root), f"{prefix}{name}"
        if prop.get("type") == "object" or "properties" in prop:
            out.update(_field_types(prop, root, f"{path}."))
        else:
            kind = prop.get("type", "string")
            out[path] = str(kind[0] if isinstance(kind, list) else kind)
    return out


def _cell(value: str, kind: str, where: str) -> Any:
    try:
        if kind == "number":
            return float(value)
        if kind == "integer":
            return int(value)
    except ValueError:
        raise UploadRowsError(f"{where}: {value!r} is not a {kind}") from None
    return value


def _csv_events(text: str, schema: Mapping[str, Any], source: str) -> list[tuple[int, dict[str, Any]]]:
    types = _field_types(schema)
    reader = csv.DictReader(io.StringIO(text))
    unknown = [c for c in reader.fieldnames or [] if c not in types]
    if unknown:
        raise UploadRowsError(f"{source}: column {unknown[0]!r} is no field of the contract "
                              f"(nested fields are dotted, e.g. 'farm.size_ha')")
    events = []
    for row in reader:
        line = reader.line_num
        event: dict[str, Any] = {}
        for column, value in row.items():
            if value is None or value == "":
                continue
            node = event
            *parents, leaf = column.split(".")
            for parent in parents:
                node = node.setdefault(parent, {})
            node[leaf] = _cell(value, types[column], f"{source} line {line}, column {column!r}")
        events.append((line, event))
    return events


def _jsonl_events(text: str, source: str) -> list[tuple[int, dict[str, Any]]]:
    events = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            event = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise UploadRowsError(f"{source} line {number}: not JSON ({exc.msg})") from None
        if not isinstance(event, dict):
            raise UploadRowsError(f"{source} line {number}: a learning event must be a JSON object")
        events.append((number, event))
    return events


def events_from_rows(text: str, fmt: str, *, tenant: str, season: str, contract_version: str,
                     schema: Mapping[str, Any], source: str = "rows") -> list[tuple[int, dict[str, Any]]]:
    """The learning events of a rows file, with tenant, season and schema version filled in.

    Args:
        text: the file's content (UTF-8 decoded).
        fmt: ``"csv"`` or ``"jsonl"``.
        tenant, season: the batch's tenant and season (slugs).
        contract_version: ``schema_version`` given to events that declare none (e.g. ``"1.0.0"``).
        schema: the contract's JSON Schema (CSV cells are typed by it).
        source: the file's name, for messages.

    Returns:
        ``(line number in the file, event)`` per row, in file order.

    Raises:
        UploadRowsError: an unknown format or CSV column, a cell of the wrong type, a line that is
            not a JSON object, an event of another tenant or season, or no rows at all.
    """
    if fmt == "csv":
        events = _csv_events(text, schema, source)
    elif fmt == "jsonl":
        events = _jsonl_events(text, source)
    else:
        raise UploadRowsError(f"{source}: unknown format {fmt!r} (csv or jsonl)")
    if not events:
        raise UploadRowsError(f"{source}: no rows")
    for number, event in events:
        for key, expected in (("tenant_id", tenant), ("season_id", season)):
            found = event.setdefault(key, expected)
            if found != expected:
                raise UploadRowsError(f"{source} line {number}: {key} is {found!r}, the upload is for {expected!r}")
        event.setdefault("schema_version", contract_version)
    return events


def canonical_lines(events: list[tuple[int, dict[str, Any]]]) -> list[bytes]:
    """The events as canonical JSON lines (no newline), the bytes a manifest signs line by line."""
    return [canonical_json(event) for _, event in events]
