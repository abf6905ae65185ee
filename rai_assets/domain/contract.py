"""The learning-event data contract: JSON Schema with a semantic version (ING-1).

A reader of one major (:class:`MajorReader`) holds every shipped minor of that major and checks an
event against the schema of the minor it declares, so the fields a known minor adds are accepted
(and a 1.0 event still may not carry them). An event of a minor this reader does not know, or of
another major, is refused with a reason that names the version.

Validation is compiled once per schema with ``fastjsonschema`` (a maintained JSON-Schema
implementation in Rust, jsonschema-rs, ~9 µs per event against ~20 µs for fastjsonschema and far
more for the pure-Python ``jsonschema``) — ingestion's throughput target depends on it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
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
        self.check_schema(event)

    def check_schema(self, event: dict[str, Any]) -> None:
        """The JSON-Schema part of :meth:`validate`, for a caller that has already checked the event is an
        object and its declared version's major (:meth:`MajorReader.validate`: no second version parse).

        Raises:
            ContractError: a field is missing / of the wrong type / out of range; the message names the path.
        """
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


@dataclass(frozen=True)
class MajorReader:
    """Every shipped minor of one major of a contract (ING-1).

    ``versions`` holds one :class:`Contract` per shipped file, oldest first; ``version`` is the
    newest. :meth:`validate` picks the schema of the event's declared ``major.minor`` (the newest
    shipped patch of it: patches do not change the schema).
    """

    name: str
    major: int
    versions: tuple[Contract, ...]
    # declared version → its contract, filled by validate (every event of a batch declares the same one)
    _by_version: dict[SemVer, Contract] = field(default_factory=dict, init=False, repr=False, compare=False)
    # the same, keyed by the declared ``schema_version`` text (skips the parse for every event after the first)
    _by_text: dict[str, Contract] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def version(self) -> SemVer:
        """The newest shipped version of this major."""
        return self.versions[-1].version

    def known_minors(self) -> list[str]:
        """``major.minor`` of every shipped minor, oldest first (e.g. ``["1.0", "1.1"]``)."""
        return sorted({f"{c.version.major}.{c.version.minor}" for c in self.versions},
                      key=lambda v: int(v.split(".")[1]))

    def contract_for(self, declared: SemVer) -> Contract:
        """The contract that checks events declaring ``declared``.

        Raises:
            ContractError: ``declared`` is of another major, or of a minor this reader does not know
                (the message names the version and the known minors).
        """
        if declared.major != self.major:
            raise ContractError(
                f"unsupported schema major {declared.major} (schema_version {declared}); this reader "
                f"accepts {self.name} {self.major}.x"
            )
        same_minor = [c for c in self.versions if c.version.minor == declared.minor]
        if not same_minor:
            raise ContractError(
                f"unknown minor version {declared.major}.{declared.minor} (schema_version {declared}) of "
                f"{self.name}: this reader knows {', '.join(self.known_minors())}"
            )
        return same_minor[-1]

    def validate(self, event: Any) -> None:
        """Validate one decoded event against the schema of the minor it declares.

        Raises:
            ContractError: not an object, no semantic ``schema_version``, another major, an unknown
                minor, or a field missing / of the wrong type / out of range (the message names it).
        """
        if not isinstance(event, dict):
            raise ContractError(f"event must be a JSON object, got {type(event).__name__}")
        text = event.get("schema_version")
        contract = self._by_text.get(text) if isinstance(text, str) else None
        if contract is None:
            declared = SemVer.parse(text)
            contract = self._by_version.get(declared)
            if contract is None:
                contract = self._by_version[declared] = self.contract_for(declared)
            self._by_text[str(text)] = contract
        # contract_for checked the declared major: only the schema remains (same errors as Contract.validate)
        contract.check_schema(event)


@cache
def reader_for_major(contracts_dir: Path, name: str, major: int) -> MajorReader:
    """A reader of every shipped version of contract ``name`` within ``major``.

    Contract files live at ``<contracts_dir>/<name>/<major>.<minor>.<patch>.json``.

    Raises:
        ContractError: no shipped version of that major exists, or a file's ``x-version`` differs
            from its file name.
    """
    folder = contracts_dir / name
    versions = sorted(
        (SemVer.parse(p.stem), p) for p in folder.glob("*.json") if SEMVER.match(p.stem)
    )
    contracts = []
    for version, path in versions:
        if version.major != major:
            continue
        contract = load_contract(path)
        if contract.version != version:
            raise ContractError(f"{path}: x-version {contract.version} differs from the file name")
        contracts.append(contract)
    if not contracts:
        raise ContractError(f"no {name} contract of major {major} under {folder}")
    return MajorReader(name=name, major=major, versions=tuple(contracts))
