"""The per-tenant model spec: features, target, subgroups, thresholds — a versioned file.

Specs live in ``resources/model_specs/<name>.json``; a tenant is registered with the spec it
uses, so changing features — or the crop — is a new spec file, not a code change. A spec owns:

* its data contract: ``"contract": {"name": "<contract>", "major": <n>}`` — the JSON Schema files
  ``resources/contracts/<contract>/<n>.<minor>.<patch>.json`` its tenants' events are checked against;
* its Great Expectations suite: ``"expectations": "<suite>"`` — ``resources/expectations/<suite>.json``,
  the blocking check on its training snapshots (SNAP-3);
* its target and the target's unit: ``target.unit`` (``"kg/ha"`` for rice-yield-v1), which labels its
  forecasts, exports and metadata.

A spec without ``contract`` / ``expectations`` (``rice-yield-v1``, written before specs named them)
reads the ``learning-event`` contract of major 1 and the ``dataset_snapshot`` suite
(:data:`DEFAULT_CONTRACT`, :data:`DEFAULT_CONTRACT_MAJOR`, :data:`DEFAULT_EXPECTATIONS`), so its file —
and the sha256 recorded in its models' lineage — stays as it was.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rai_assets.domain.bias import BiasThresholds
from rai_assets.domain.canonical import canonical_json, sha256_hex
from rai_assets.domain.drift import DriftThresholds

#: The contract, major and suite of a spec that does not name its own (specs older than these keys).
DEFAULT_CONTRACT = "learning-event"
DEFAULT_CONTRACT_MAJOR = 1
DEFAULT_EXPECTATIONS = "dataset_snapshot"

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


#: XGBoost objectives a spec may name (``xgboost.objective``); a spec without one fits squared error.
XGBOOST_OBJECTIVES = ("reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror")
DEFAULT_OBJECTIVE = "reg:squarederror"


class ModelSpecError(ValueError):
    """A model spec file is missing a key or has a value of the wrong type; names which."""


@dataclass(frozen=True)
class SubgroupSpec:
    """A bias-audit subgroup: a categorical column, or a numeric column cut into classes."""

    name: str
    column: str
    edges: tuple[float, ...] | None = None
    labels: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ClassicModelSpec:
    """The domain's classic model: a Cobb-Douglas production function (OLS in logs)."""

    output: str
    inputs: tuple[str, ...]
    log_offset: float


@dataclass(frozen=True)
class PromotionSpec:
    """Staged promotion: share of fields in the canary slice, test level and minimum sample (RET-7), and
    ``refit_margin``: the non-inferiority margin of a refit of the champion's recipe, as a share of the
    older fit's MAE (0.05: the refit may serve unless its MAE is plausibly more than 5 % worse; see
    :func:`rai_assets.domain.promotion_test.refit_noninferiority`).

    Raises:
        ValueError: a share, level or margin out of its range, or a minimum sample below 1.
    """

    canary_share: float = 0.5
    alpha: float = 0.05
    min_sample: int = 30
    refit_margin: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 < self.canary_share <= 1.0:
            raise ValueError(f"canary_share must be in (0, 1], got {self.canary_share!r}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha!r}")
        if not 0.0 <= self.refit_margin < 1.0:
            raise ValueError(f"refit_margin must be in [0, 1), got {self.refit_margin!r}")
        if isinstance(self.min_sample, bool) or not isinstance(self.min_sample, int) or self.min_sample < 1:
            raise ValueError(f"min_sample must be a whole number >= 1, got {self.min_sample!r}")


@dataclass(frozen=True)
class RetrainingSpec:
    """Retraining guards (RET-4..6): cooldown after a rollback, breaker threshold, GPU quota and budget."""

    cooldown_days: float = 7.0
    failure_threshold: int = 3
    gpu_hours_per_month: float = 100.0
    monthly_budget: float | None = None
    gpu_hour_cost: float = 2.5


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec. ``sha256`` is the digest of its canonical JSON (its identity)."""

    name: str
    version: str
    sha256: str
    target_name: str
    target_numerator: str
    target_denominator: str
    numeric_features: tuple[str, ...]
    categorical_features: dict[str, tuple[str, ...]]
    subgroups: tuple[SubgroupSpec, ...]
    classic_model: ClassicModelSpec
    xgboost_params: dict[str, Any]
    seed: int
    drift: DriftThresholds
    bias: BiasThresholds
    promotion: PromotionSpec = PromotionSpec()
    retraining: RetrainingSpec = RetrainingSpec()
    target_unit: str = ""
    # the target's physically plausible range (min, max); None: that side unbounded (ING-1)
    target_range: tuple[float | None, float | None] = (None, None)
    # the data contract (name, accepted major) and the snapshot expectations suite this spec's tenants use
    contract_name: str = DEFAULT_CONTRACT
    contract_major: int = DEFAULT_CONTRACT_MAJOR
    expectations_suite: str = DEFAULT_EXPECTATIONS

    @property
    def spec_id(self) -> str:
        """``<name>-v<major>`` — the file stem tenants are registered with."""
        return f"{self.name}-v{self.version.split('.')[0]}"

    @property
    def model_columns(self) -> list[str]:
        """Feature columns after one-hot encoding, in model order."""
        cols = list(self.numeric_features)
        for column, levels in self.categorical_features.items():
            cols.extend(f"{column}={level}" for level in levels)
        return cols


def _req(doc: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in doc:
        raise ModelSpecError(f"{where}: missing key {key!r}")
    value = doc[key]
    if not isinstance(value, kind):
        raise ModelSpecError(f"{where}: {key!r} must be {kind.__name__}, got {type(value).__name__}")
    return value


def _plausible_range(target: dict[str, Any], where: str) -> tuple[float | None, float | None]:
    """``target.plausible_range`` ``{"min": …, "max": …}`` (either may be absent) as finite floats."""
    spec = target.get("plausible_range", {})
    if not isinstance(spec, dict):
        raise ModelSpecError(f"{where} target: 'plausible_range' must be an object with 'min'/'max'")
    bounds: list[float | None] = []
    for side in ("min", "max"):
        value = spec.get(side)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not math.isfinite(value)):
            raise ModelSpecError(f"{where} target: plausible_range.{side} must be a finite number, got {value!r}")
        bounds.append(None if value is None else float(value))
    low, high = bounds
    if low is not None and high is not None and low > high:
        raise ModelSpecError(f"{where} target: plausible_range min {low} exceeds max {high}")
    return low, high


def _contract(doc: dict[str, Any], where: str) -> tuple[str, int]:
    """``contract`` ``{"name": <slug>, "major": <int ≥ 0>}``; the defaults when the key is absent."""
    if "contract" not in doc:
        return DEFAULT_CONTRACT, DEFAULT_CONTRACT_MAJOR
    spec = _req(doc, "contract", dict, where)
    name = _req(spec, "name", str, f"{where} contract")
    major = _req(spec, "major", int, f"{where} contract")
    if not _SLUG.match(name):
        raise ModelSpecError(f"{where} contract: name {name!r} is not a folder name under resources/contracts "
                             "(lower-case letters, digits, '-', '_')")
    if isinstance(major, bool) or major < 0:
        raise ModelSpecError(f"{where} contract: major must be an integer >= 0, got {major!r}")
    return name, major


def _expectations(doc: dict[str, Any], where: str) -> str:
    """``expectations``: the suite's file stem under ``resources/expectations``; the default when absent."""
    if "expectations" not in doc:
        return DEFAULT_EXPECTATIONS
    suite = _req(doc, "expectations", str, where)
    if not _SLUG.match(suite):
        raise ModelSpecError(f"{where}: expectations {suite!r} is not a suite file stem under "
                             "resources/expectations (lower-case letters, digits, '-', '_')")
    return suite


def parse_model_spec(doc: dict[str, Any], where: str = "model spec") -> ModelSpec:
    """Parse a decoded spec document.

    Raises:
        ModelSpecError: a key is missing or has the wrong type (the message names it and ``where``).
    """
    target = _req(doc, "target", dict, where)
    classic = _req(doc, "classic_model", dict, where)
    xgb = dict(_req(doc, "xgboost", dict, where))
    seed = int(xgb.pop("seed", 0))
    if xgb.get("objective", DEFAULT_OBJECTIVE) not in XGBOOST_OBJECTIVES:
        raise ModelSpecError(f"{where} xgboost: objective {xgb['objective']!r} is not one of "
                             f"{list(XGBOOST_OBJECTIVES)}")
    contract_name, contract_major = _contract(doc, where)
    subgroups = tuple(
        SubgroupSpec(
            name=name,
            column=_req(sg, "column", str, f"{where} subgroup {name}"),
            edges=tuple(float(e) for e in sg["edges"]) if "edges" in sg else None,
            labels=tuple(sg["labels"]) if "labels" in sg else None,
        )
        for name, sg in _req(doc, "subgroups", dict, where).items()
    )
    return ModelSpec(
        name=_req(doc, "spec", str, where),
        version=_req(doc, "spec_version", str, where),
        sha256=sha256_hex(canonical_json(doc)),
        target_name=_req(target, "name", str, f"{where} target"),
        target_numerator=_req(target, "numerator", str, f"{where} target"),
        target_denominator=_req(target, "denominator", str, f"{where} target"),
        numeric_features=tuple(_req(doc, "numeric_features", list, where)),
        categorical_features={
            k: tuple(v) for k, v in _req(doc, "categorical_features", dict, where).items()
        },
        subgroups=subgroups,
        classic_model=ClassicModelSpec(
            output=_req(classic, "output", str, f"{where} classic_model"),
            inputs=tuple(_req(classic, "inputs", list, f"{where} classic_model")),
            log_offset=float(classic.get("log_offset", 1.0)),
        ),
        xgboost_params=xgb,
        seed=seed,
        drift=_section(DriftThresholds, doc, "drift", where),
        bias=_section(BiasThresholds, doc, "bias", where),
        promotion=_section(PromotionSpec, doc, "promotion", where),
        retraining=_section(RetrainingSpec, doc, "retraining", where),
        target_unit=str(target.get("unit", "")),
        target_range=_plausible_range(target, where),
        contract_name=contract_name,
        contract_major=contract_major,
        expectations_suite=_expectations(doc, where),
    )


_Section = TypeVar("_Section")


def _section(cls: Callable[..., _Section], doc: dict[str, Any], key: str, where: str) -> _Section:
    """``cls(**doc[key])`` (``{}`` when absent); an unknown key or a bad value is a :class:`ModelSpecError`
    naming the section."""
    section = doc.get(key, {})
    if not isinstance(section, dict):
        raise ModelSpecError(f"{where}: {key!r} must be an object, got {type(section).__name__}")
    try:
        return cls(**section)
    except (TypeError, ValueError) as exc:
        raise ModelSpecError(f"{where}: section {key!r}: {exc}") from exc


def load_model_spec(specs_dir: Path, spec_id: str) -> ModelSpec:
    """Load ``<specs_dir>/<spec_id>.json``.

    Raises:
        ModelSpecError: the file does not exist or does not parse as a spec.
    """
    path = specs_dir / f"{spec_id}.json"
    if not path.is_file():
        raise ModelSpecError(f"model spec {spec_id!r} not found at {path}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelSpecError(f"{path}: not valid JSON: {exc}") from exc
    return parse_model_spec(doc, where=str(path))
