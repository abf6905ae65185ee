"""The learning-event data contract: JSON Schema with a semantic version (ING-1).

A reader accepts every minor (and patch) version of its major and refuses other majors with a
clear error. Validation is compiled once per schema with ``fastjsonschema`` (a maintained
JSON-Schema implementation in Rust, jsonschema-rs, ~9 µs per event against ~20 µs for
fastjsonschema and far more for the pure-Python ``jsonschema``) — ingestion's throughput target
depends on it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jsonschema_rs

SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")


class ContractError(ValueError):
    """An event does not satisfy the data contract; the message names the field and the rule."""


@dataclass(frozen=True, order=True)
class SemVer:
    """A semantic version ``major.minor.patch`` (https://semver.org)."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: object) -> SemVer:
        """Parse ``major.minor.patch`` (cached: every event of a batch carries the same version).

        Raises:
            ContractError: ``text`` is not a semantic version string.
        """
        if not isinstance(text, str):
            raise ContractError(f"schema_version {text!r} is not a semantic version (major.minor.patch)")
        return _parse_semver(text)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@lru_cache(maxsize=256)
def _parse_semver(text: str) -> SemVer:
    if not (m := SEMVER.match(text)):
        raise ContractError(f"schema_version {text!r} is not a semantic version (major.minor.patch)")
    return SemVer(int(m[1]), int(m[2]), int(m[3]))


@dataclass(frozen=True)
class Contract:
    """One version of a data contract: its name, version, schema and compiled validator."""

    name: str
    version: SemVer
    schema: Mapping[str, Any]
    validator: Any  # a jsonschema_rs validator

    def validate(self, event: Any) -> None:
        """Validate one decoded event (a dict).

        Raises:
            ContractError: the event's major version differs from this contract's, or a field
                is missing / of the wrong type / out of range; the message names the field path.
        """
        if not isinstance(event, dict):
            raise ContractError(f"event must be a JSON object, got {type(event).__name__}")
        declared = SemVer.parse(event.get("schema_version"))
        if declared.major != self.version.major:
            raise ContractError(
                f"unsupported schema major {declared.major} (schema_version {declared}); this reader "
                f"accepts {self.name} {self.version.major}.x"
            )
        if not self.validator.is_valid(event):
            error = next(iter(self.validator.iter_errors(event)))
            where = ".".join(str(p) for p in error.instance_path) or "(event)"
            raise ContractError(f"contract {self.name} {self.version}: {where}: {error.message}")


def load_contract(path: Path) -> Contract:
    """Load and compile one contract file (a JSON Schema with ``x-contract`` and ``x-version``).

    Raises:
        ContractError: the file lacks ``x-contract``/``x-version`` or the version is not semver.
        ValueError: the schema itself is invalid (jsonschema-rs).
    """
    schema = json.loads(path.read_text(encoding="utf-8"))
    name = schema.get("x-contract")
    if not name:
        raise ContractError(f"{path}: missing 'x-contract'")
    version = SemVer.parse(schema.get("x-version"))
    return Contract(name=name, version=version, schema=schema, validator=jsonschema_rs.validator_for(schema))


@cache
def reader_for_major(contracts_dir: Path, name: str, major: int) -> Contract:
    """The newest shipped version of contract ``name`` within ``major``.

    Contract files live at ``<contracts_dir>/<name>/<major>.<minor>.<patch>.json``.

    Raises:
        ContractError: no shipped version of that major exists.
    """
    folder = contracts_dir / name
    versions = sorted(
        (SemVer.parse(p.stem), p) for p in folder.glob("*.json") if SEMVER.match(p.stem)
    )
    candidates = [(v, p) for v, p in versions if v.major == major]
    if not candidates:
        raise ContractError(f"no {name} contract of major {major} under {folder}")
    return load_contract(candidates[-1][1])
