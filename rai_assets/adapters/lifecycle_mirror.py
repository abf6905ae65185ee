"""MLflow mirrors the ledger's lifecycle (the ledger is the source of truth, REG-3).

For one tenant, every model version it has in the registry carries, from the ledger:

* ``ledger_state``: its lifecycle state;
* ``ledger_audit_seq`` / ``ledger_audit_entry_sha256``: the seq and entry hash of its latest lifecycle
  entry in the hash-chained audit log (GOV-3), so a version page names the audit entry behind its state;
* ``validation_mae``: the held-out MAE (in the spec's target unit) it was validated with, once recorded;

(on a cohort's shared model each tag is ``<tag>-<tenant>``, one per member). Each live stage has an
alias: ``champion``, ``canary``, ``shadow`` on the tenant's own registered model, ``<stage>-<tenant>``
on a cohort's; an alias of a stage nobody is in is removed. The registered model's description says
whose it is, its spec and what the aliases mean; each version's says the season it was trained for,
its training window, its kind and (own model) its ledger state.

:func:`expected_mirror` derives all of that from the ledger, :func:`mirror_differences` compares it with
MLflow (``rai-assets integrity verify`` reports those), :func:`mirror_lifecycle` writes the differences
only, so mirroring after every promotion step costs a few reads per registered model when nothing moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rai_assets.adapters.ledger.models import ModelVersion
from rai_assets.adapters.ledger.resource import Conn, LedgerResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.domain.model_spec import load_model_spec
from rai_assets.domain.signing_envelope import SignedDocument
from rai_assets.resource_files import resources_dir

LIVE_STAGES = ("CHAMPION", "CANARY", "SHADOW")
#: The ledger-derived version tags (before the ``-<tenant>`` suffix of a cohort's model).
LEDGER_TAGS = ("ledger_state", "ledger_audit_seq", "ledger_audit_entry_sha256", "validation_mae")
_ALIAS_MEANING = ("champion = the version serving forecasts; canary = the challenger serving a canary share of "
                  "traffic; shadow = the challenger scored beside the champion without serving")


@dataclass
class MirrorPlan:
    """What MLflow should show of one registered model for one tenant, as the ledger says.

    ``aliases`` maps each live-stage alias to its version (None: the alias must not exist);
    ``version_tags`` / ``version_descriptions`` are keyed by MLflow version number.
    """

    name: str
    description: str
    aliases: dict[str, int | None] = field(default_factory=dict)
    version_tags: dict[int, dict[str, str]] = field(default_factory=dict)
    version_descriptions: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Difference:
    """One place where MLflow differs from the ledger: ``what`` is ``alias``, ``tag``, ``description``
    (of a version) or ``model_description``; ``key`` the alias or tag name; ``version`` the MLflow version
    (the alias's wanted one; None for the model description or a removed alias)."""

    name: str
    what: str
    key: str
    version: int | None
    actual: str | None
    wanted: str | None

    def __str__(self) -> str:
        if self.what == "alias":
            return (f"{self.name}: alias {self.key} → {'v' + str(self.version) if self.version else 'removed'}"
                    f" (was {'v' + self.actual if self.actual else 'absent'})")
        where = self.name if self.version is None else f"{self.name}/{self.version}"
        if self.what == "tag":
            return f"{where}: {self.key}={self.wanted} (was {self.actual!r})"
        return f"{where}: {self.what.replace('_', ' ')} set"


def _window(sources: list[str] | None, season: str) -> str:
    if not sources:
        return f"the seasons before {season}"
    ordered = list(sources)
    return ordered[0] if len(ordered) == 1 else f"{ordered[0]}–{ordered[-1]} ({len(ordered)} seasons)"


def expected_mirror(conn: Conn, registry: MlflowRegistryResource, tenant: str) -> list[MirrorPlan]:
    """What MLflow should show for ``tenant``, per registered model it has versions in (reads the ledger only).

    The audit entry of a version is its latest ``lifecycle.*`` row of ``audit_log``; the training window
    is the source seasons of its recorded snapshot (``dataset_snapshots``).
    """
    rows = conn.execute(
        "SELECT m.model_id, m.mlflow_model_name, m.mlflow_version, m.state, m.season_id, m.kind, m.cohort_id,"
        " m.validation_mae, a.seq AS audit_seq, a.entry_hash AS audit_hash,"
        " (SELECT d.source_seasons FROM dataset_snapshots d WHERE d.tenant_id = m.tenant_id"
        "   AND d.season_id = m.season_id AND d.merkle_root = m.snapshot_root LIMIT 1) AS source_seasons"
        " FROM model_versions m LEFT JOIN LATERAL (SELECT seq, entry_hash FROM audit_log l"
        "   WHERE l.tenant_id = m.tenant_id AND l.model_id = m.model_id AND l.action LIKE 'lifecycle.%%'"
        "   ORDER BY seq DESC LIMIT 1) a ON true"
        " WHERE m.tenant_id = %s AND m.mlflow_version IS NOT NULL ORDER BY m.model_id", (tenant,)).fetchall()
    spec = conn.execute("SELECT model_spec FROM tenants WHERE tenant_id = %s", (tenant,)).fetchone()
    spec_id = str(spec["model_spec"]) if spec else "unknown"
    unit = load_model_spec(resources_dir() / "model_specs", spec_id).target_unit if spec else "unknown unit"
    plans: dict[str, MirrorPlan] = {}
    for r in rows:
        name = str(r["mlflow_model_name"] or registry.model_name(tenant))
        own = name == registry.model_name(tenant)
        plan = plans.get(name)
        if plan is None:
            if own:
                description = (f"Crop-yield model ({unit}) of tenant {tenant}, model spec {spec_id}; one version per "
                               f"training. The rai-assets ledger is the source of truth of each version's lifecycle; "
                               f"MLflow mirrors it. Aliases: {_ALIAS_MEANING}. Version tags ledger_state, "
                               "ledger_audit_seq, ledger_audit_entry_sha256 and validation_mae mirror the ledger.")
            else:
                description = (f"Crop-yield model ({unit}) shared by cohort {r['cohort_id'] or name}, model spec "
                               f"{spec_id}; one version per refit, used by every member. The rai-assets ledger is "
                               f"the source of truth of each member's lifecycle; MLflow mirrors it per member. "
                               f"Aliases <stage>-<tenant>: {_ALIAS_MEANING}. Version tags <tag>-<tenant> "
                               "(ledger_state, ledger_audit_seq, ledger_audit_entry_sha256, validation_mae) mirror "
                               "each member's ledger.")
            plan = plans[name] = MirrorPlan(name, description)
        version = int(r["mlflow_version"])
        tags = {registry.ledger_tag("ledger_state", tenant, name): str(r["state"])}
        if r["audit_seq"] is not None:
            tags[registry.ledger_tag("ledger_audit_seq", tenant, name)] = str(r["audit_seq"])
            tags[registry.ledger_tag("ledger_audit_entry_sha256", tenant, name)] = str(r["audit_hash"])
        if r["validation_mae"] is not None:
            tags[registry.ledger_tag("validation_mae", tenant, name)] = f"{float(r['validation_mae']):.3f}"
        plan.version_tags.setdefault(version, {}).update(tags)
        trained = (f"Trained for season {r['season_id']} on {_window(r['source_seasons'], str(r['season_id']))}; "
                   f"kind {r['kind']}")
        plan.version_descriptions[version] = (
            f"{trained}; ledger state {r['state']} (ledger model {r['model_id']})." if own
            else f"{trained}; each member's ledger state is the tag ledger_state-<tenant>.")
    for plan in plans.values():
        for stage in LIVE_STAGES:
            in_stage = [int(r["mlflow_version"]) for r in rows if r["state"] == stage
                        and str(r["mlflow_model_name"] or registry.model_name(tenant)) == plan.name]
            plan.aliases[registry.stage_alias(stage.lower(), tenant, plan.name)] = max(in_stage) if in_stage else None
    return list(plans.values())


def mirror_differences(registry: MlflowRegistryResource, plans: list[MirrorPlan]) -> list[Difference]:
    """Where MLflow differs from ``plans`` (versions MLflow lacks and registered models that are gone are
    skipped: integrity verify reports those on its own)."""
    from mlflow.exceptions import MlflowException

    client = registry.client()
    out: list[Difference] = []
    for plan in plans:
        try:
            model = client.get_registered_model(plan.name)
        except MlflowException:
            continue
        versions = {int(v.version): v for v in client.search_model_versions(f"name='{plan.name}'")}
        if (model.description or "") != plan.description:
            out.append(Difference(plan.name, "model_description", "description", None, model.description,
                                  plan.description))
        for version, tags in plan.version_tags.items():
            mv = versions.get(version)
            if mv is None:
                continue
            existing = dict(mv.tags or {})
            out.extend(Difference(plan.name, "tag", k, version, existing.get(k), v)
                       for k, v in tags.items() if existing.get(k) != v)
            wanted = plan.version_descriptions[version]
            if (mv.description or "") != wanted:
                out.append(Difference(plan.name, "description", "description", version, mv.description, wanted))
        aliases = {a: int(v) for a, v in model.aliases.items()}
        for alias, wanted_version in plan.aliases.items():
            target = wanted_version if wanted_version in versions else None
            if aliases.get(alias) != target:
                actual = aliases.get(alias)
                out.append(Difference(plan.name, "alias", alias, target, str(actual) if actual else None,
                                      str(target) if target else None))
    return out


def apply_difference(registry: MlflowRegistryResource, diff: Difference) -> None:
    """Write what the ledger says at ``diff``'s place in MLflow (through
    :meth:`~rai_assets.adapters.registry.MlflowRegistryResource.registry_writer`)."""
    client = registry.registry_writer()
    if diff.what == "alias":
        registry.set_alias(diff.name, diff.key, diff.version)
    elif diff.what == "tag" and diff.version is not None:
        registry.set_version_tags(diff.name, diff.version, {diff.key: str(diff.wanted)})
    elif diff.what == "description" and diff.version is not None:
        client.update_model_version(diff.name, str(diff.version), description=diff.wanted)
    elif diff.what == "model_description":
        client.update_registered_model(diff.name, description=diff.wanted)


def mirror_lifecycle(ledger: LedgerResource, registry: MlflowRegistryResource, tenant: str) -> list[str]:
    """Make MLflow's stage aliases, ledger tags and descriptions of ``tenant`` match the ledger.

    Returns:
        One line per change made (empty when MLflow already matched).

    Raises:
        mlflow.exceptions.MlflowException: the tracking server refused a write.
    """
    with ledger.connect(tenant) as conn:
        plans = expected_mirror(conn, registry, tenant)
    changes = mirror_differences(registry, plans)
    for diff in changes:
        apply_difference(registry, diff)
    return [str(d) for d in changes]


def log_signed_report(registry: MlflowRegistryResource, model: ModelVersion | None, name: str,
                      doc: SignedDocument) -> str | None:
    """Log a signed report (drift report, bias audit: the stored envelope's canonical JSON bytes) as the
    artifact ``name`` of ``model``'s training run — the run its pictures are on, so the report sits next
    to them: the candidate's for a bias audit, the reference model's for a drift report.

    The object store and the ledger hold the report of record; a failed log is not an error of the
    asset (MLflow only mirrors), so it returns None instead of raising.

    Returns:
        The artifact path within the run, or None when there is no run or MLflow refused.
    """
    if model is None or not model.mlflow_run_id:
        return None
    try:
        return registry.log_artifact_bytes(model.mlflow_run_id, name, doc.to_bytes())
    except Exception:  # MLflow unreachable or the run deleted: the ledger keeps the report of record
        return None


def verified_differences(conn: Conn, registry: MlflowRegistryResource, tenant: str) -> list[Difference]:
    """The differences integrity verify reports: live-stage aliases other than the champion's (checked on
    its own) and the ledger tags (:data:`LEDGER_TAGS`) — one that holds another value than the ledger's
    always, a missing one only on a version in a live stage (a version is mirrored from its first
    promotion step on: before that a missing tag is not yet written, not wrong). Descriptions are
    presentation, not evidence: :func:`mirror_lifecycle` keeps them without verify reporting them."""
    plans = expected_mirror(conn, registry, tenant)
    champion_aliases = {registry.champion_alias(tenant, plan.name) for plan in plans}
    live = {(plan.name, version) for plan in plans for version, tags in plan.version_tags.items()
            if tags.get(registry.state_tag(tenant, plan.name)) in LIVE_STAGES}
    return [d for d in mirror_differences(registry, plans)
            if (d.what == "alias" and d.key not in champion_aliases)
            or (d.what == "tag" and (d.actual is not None or (d.name, d.version) in live))]
