"""Governance actions: approve, reject, rollback, baseline reset (GOV-3, GOV-4, REG-3, RET-8).

Each action runs as the database role of the actor's role (``manager`` or ``admin``), so the
ledger's grants and triggers check it a second time; each is appended to the tenant's
hash-chained audit log with actor, role, before/after state and reason. MLflow's ``champion``
alias follows the ledger (:func:`reconcile_champion_alias`).
"""

from __future__ import annotations

from dataclasses import dataclass

from rai_assets.adapters.ledger import audit, cohorts
from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.ledger.resource import Conn, LedgerResource
from rai_assets.adapters.ledger.tenants import get_tenant
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.domain.lifecycle import ModelState

ACTION_ROLES: dict[str, frozenset[str]] = {
    "approve": frozenset({"manager", "admin"}),
    "reject": frozenset({"manager", "admin"}),
    "rollback": frozenset({"admin"}),
    "baseline-reset": frozenset({"admin"}),
    "breaker-reset": frozenset({"admin"}),
    "cohort-join": frozenset({"manager", "admin"}),
    "cohort-leave": frozenset({"manager", "admin"}),
    "bootstrap-override": frozenset({"manager", "admin"}),
    "season-register": frozenset({"manager", "admin"}),
}


class GovernanceError(ValueError):
    """A governance action that cannot apply (wrong role, wrong state, unknown version); says why."""


@dataclass(frozen=True)
class GovernanceResult:
    """What an action did."""

    action: str
    tenant: str
    model_id: int
    mlflow_version: int | None
    before: str
    after: str
    audit_seq: int


def _model_by_version(conn: Conn, tenant: str, version: int) -> model_store.ModelVersion:
    row = conn.execute(
        "SELECT model_id FROM model_versions WHERE tenant_id = %s AND mlflow_version = %s", (tenant, version)
    ).fetchone()
    if row is None:
        raise GovernanceError(f"tenant {tenant!r} has no model version {version} in the ledger")
    return model_store.get_model(conn, int(row["model_id"]))


def _check_role(action: str, role: str) -> None:
    allowed = ACTION_ROLES[action]
    if role not in allowed:
        raise GovernanceError(f"{action} needs role {' or '.join(sorted(allowed))}; {role!r} may not (GOV-4)")


@dataclass(frozen=True)
class StoredEvidence:
    """Where the objects a governance action relies on are stored, re-verified when it acts (GOV-5, REG-5).

    ``platform_key``: the platform's Ed25519 public key that signed reports must carry (None: the
    signer recorded in the ledger row is used).
    """

    object_store: ObjectStoreResource
    platform_key: str | None = None


def _verify_evidence(conn: Conn, evidence: StoredEvidence | None, action: str, model: model_store.ModelVersion,
                     target: ModelState) -> None:
    from rai_assets.governance import integrity

    if evidence is None:
        return
    problem = None
    if target is ModelState.SHADOW:
        problem = integrity.verify_bias_audit_for_approval(conn, evidence.object_store, model.tenant_id,
                                                           model.model_id, evidence.platform_key)
        if problem is not None:
            problem = f"the bias audit it relies on does not verify on its stored object: {problem}"
    elif action == "baseline-reset":  # snapshots are the pipeline's (rai_app) rows: read them as rai_app
        problem = integrity.verify_snapshot_for_action(conn, evidence.object_store, model.tenant_id,
                                                       model.season_id, model.snapshot_root)
        if problem is not None:
            problem = f"the training snapshot it relies on does not match its stored object: {problem}"
    if problem is not None:
        raise GovernanceError(f"{action} of version {model.mlflow_version} of {model.tenant_id} refused: {problem}")


def _apply(ledger: LedgerResource, action: str, *, tenant: str, version: int, actor: str, reason: str, role: str,
           target_for: dict[ModelState, ModelState], evidence: StoredEvidence | None = None) -> GovernanceResult:
    _check_role(action, role)
    if not reason.strip():
        raise GovernanceError("a governance action needs a reason")
    with ledger.connect(tenant, role=role, actor=actor) as conn:
        model = _model_by_version(conn, tenant, version)
        target = target_for.get(model.state)
        if target is None:
            raise GovernanceError(
                f"{action} applies to versions in {sorted(s.value for s in target_for)}; "
                f"version {version} of {tenant} is {model.state}"
            )
        _verify_evidence(conn, evidence, action, model, target)
        moved = model_store.transition(conn, model, target, reason=f"{action}: {reason}", actor=actor)
        seq = audit.append(conn, tenant=tenant, action=f"governance.{action}", actor=actor, reason=reason,
                           model_id=model.model_id, before={"state": model.state.value},
                           after={"state": moved.state.value})
    return GovernanceResult(action, tenant, model.model_id, version, model.state.value, moved.state.value, seq)


def approve(ledger: LedgerResource, *, tenant: str, version: int, actor: str, reason: str, role: str = "manager",
            evidence: StoredEvidence | None = None) -> GovernanceResult:
    """Approve a version: QUARANTINED → VALIDATED (review cleared) or VALIDATED → SHADOW (the gated path;
    the ledger requires a passed, verified bias audit — REG-5). With ``evidence`` (the CLI and the
    governance job always pass it) the bias audit's stored object is re-read and verified now: an
    object edited since it was recorded refuses the approval."""
    return _apply(ledger, "approve", tenant=tenant, version=version, actor=actor, reason=reason, role=role,
                  target_for={ModelState.QUARANTINED: ModelState.VALIDATED,
                              ModelState.VALIDATED: ModelState.SHADOW}, evidence=evidence)


def reject(ledger: LedgerResource, *, tenant: str, version: int, actor: str, reason: str, role: str = "manager"
           ) -> GovernanceResult:
    """Reject a candidate: VALIDATED / SHADOW / CANARY / QUARANTINED → DEPRECATED."""
    return _apply(ledger, "reject", tenant=tenant, version=version, actor=actor, reason=reason, role=role,
                  target_for={s: ModelState.DEPRECATED for s in (ModelState.VALIDATED, ModelState.SHADOW,
                                                                 ModelState.CANARY, ModelState.QUARANTINED)})


def rollback(ledger: LedgerResource, registry: MlflowRegistryResource, *, tenant: str, version: int, actor: str,
             reason: str, role: str = "admin") -> GovernanceResult:
    """Force a rollback to a previous champion (DEPRECATED → CHAMPION); the current champion is
    deprecated in the same transaction by the ledger, and the MLflow alias follows."""
    _check_role("rollback", role)
    with ledger.connect(tenant, role=role) as conn:
        model = _model_by_version(conn, tenant, version)
        was_champion = conn.execute(
            "SELECT 1 FROM audit_log WHERE tenant_id = %s AND model_id = %s AND after->>'state' = 'CHAMPION'",
            (tenant, model.model_id),
        ).fetchone()
    if was_champion is None:
        raise GovernanceError(f"version {version} of {tenant} was never champion; a rollback restores a previous one")
    _require_mlflow_version(registry, tenant, model)
    result = _apply(ledger, "rollback", tenant=tenant, version=version, actor=actor, reason=reason, role=role,
                    target_for={ModelState.DEPRECATED: ModelState.CHAMPION})
    reconcile_champion_alias(ledger, registry, tenant)
    return result


def baseline_reset(ledger: LedgerResource, *, tenant: str, version: int, actor: str, reason: str,
                   role: str = "admin", evidence: StoredEvidence | None = None) -> GovernanceResult:
    """Make version ``version``'s training snapshot the tenant's drift reference from now on (with
    ``evidence``: only while that snapshot's stored object still matches the ledger)."""
    _check_role("baseline-reset", role)
    if not reason.strip():
        raise GovernanceError("a governance action needs a reason")
    with ledger.connect(tenant, role=role, actor=actor) as conn:
        model = _model_by_version(conn, tenant, version)
        if evidence is not None:
            with ledger.connect(tenant, actor=actor) as app_conn:
                _verify_evidence(app_conn, evidence, "baseline-reset", model, model.state)
        conn.execute("INSERT INTO drift_baselines (tenant_id, model_id, actor, reason) VALUES (%s, %s, %s, %s)",
                     (tenant, model.model_id, actor, reason))
        seq = audit.append(conn, tenant=tenant, action="governance.baseline-reset", actor=actor, reason=reason,
                           model_id=model.model_id, after={"drift_reference_snapshot": model.snapshot_root})
    return GovernanceResult("baseline-reset", tenant, model.model_id, version, model.state.value,
                            model.state.value, seq)


def breaker_reset(ledger: LedgerResource, *, tenant: str, actor: str, reason: str, role: str = "admin") -> int:
    """Close the tenant's circuit breaker after consecutive retraining failures (RET-5); audited.

    Returns:
        The audit log sequence number of the reset.
    """
    _check_role("breaker-reset", role)
    if not reason.strip():
        raise GovernanceError("a governance action needs a reason")
    with ledger.connect(tenant, role=role, actor=actor) as conn:
        conn.execute("INSERT INTO breaker_resets (tenant_id, actor, reason) VALUES (%s, %s, %s)",
                     (tenant, actor, reason))
        return audit.append(conn, tenant=tenant, action="governance.breaker-reset", actor=actor, reason=reason)


@dataclass(frozen=True)
class SeasonRegistration:
    """A governed season registration: the season's 1-based position in the tenant's calendar, the
    calendar after it, and the audit sequence number (None when the season was already there)."""

    tenant: str
    season: str
    position: int
    calendar: tuple[str, ...]
    audit_seq: int | None


def season_register(ledger: LedgerResource, *, tenant: str, season: str, actor: str, reason: str,
                    role: str = "manager", ordinal: int | None = None, follows: str | None = None
                    ) -> SeasonRegistration:
    """Add ``season`` to ``tenant``'s calendar as a governance action (issue 8 item 3; GOV-3, GOV-4).

    The one way besides a verified upload that a season enters a calendar: as ``role`` (manager or
    admin) through the ledger's ``rai_register_season``, with an audit entry
    ``governance.season-register`` (actor, reason, the season's position and predecessor). ``follows``
    places it right after that season, ``ordinal`` at that calendar value; with neither, last.
    Re-registering where it already is changes nothing and is not audited again.

    Raises:
        GovernanceError: the role may not, the reason is empty, or the calendar refuses the placement
            (unknown ``follows``, taken ordinal, the season registered elsewhere).
        InvalidIdentifierError: ``tenant``, ``season`` or ``follows`` is not a slug.
    """
    from rai_assets.adapters.ledger.tenants import UnknownSeasonError, register_season, season_order

    _check_role("season-register", role)
    if not reason.strip():
        raise GovernanceError("a governance action needs a reason")
    with ledger.connect(tenant, role=role, actor=actor) as conn:
        get_tenant(conn, tenant)
        before = season_order(conn, tenant)
        try:
            position = register_season(conn, tenant, season, ordinal, follows=follows)
        except (ValueError, UnknownSeasonError) as exc:
            raise GovernanceError(f"season-register of {season!r} for {tenant!r} refused: {exc}") from exc
        calendar = season_order(conn, tenant)
        seq = None
        if calendar != before:
            seq = audit.append(conn, tenant=tenant, action="governance.season-register", actor=actor, reason=reason,
                               before={"calendar": before},
                               after={"season": season, "position": position,
                                      "follows": calendar[position - 2] if position > 1 else None})
    return SeasonRegistration(tenant, season, position, tuple(calendar), seq)


def reconcile_champion_alias(ledger: LedgerResource, registry: MlflowRegistryResource, tenant: str) -> str:
    """Make MLflow's ``champion`` alias point where the ledger's champion is (the ledger is the truth).

    Returns:
        A sentence saying what was done.

    Raises:
        GovernanceError: the ledger's champion names an MLflow version that no longer exists.
    """
    with ledger.connect(tenant) as conn:
        champion = model_store.get_champion(conn, tenant)
    name = champion.mlflow_model_name if champion is not None else None
    current = registry.champion_version(tenant, name)
    wanted = champion.mlflow_version if champion is not None else None
    if champion is not None:
        _require_mlflow_version(registry, tenant, champion)
    if current == wanted:
        return f"{tenant}: MLflow alias already follows the ledger (champion v{wanted})"
    if wanted is None:
        if current is not None:
            registry.delete_champion_alias(tenant)
        return f"{tenant}: removed the MLflow champion alias (v{current}); the ledger has no champion"
    registry.set_champion_alias(tenant, wanted, name)
    return f"{tenant}: MLflow champion alias moved from v{current} to v{wanted} to follow the ledger"


def _require_mlflow_version(registry: MlflowRegistryResource, tenant: str, model: model_store.ModelVersion) -> None:
    from mlflow.exceptions import MlflowException

    name = model.mlflow_model_name or registry.model_name(tenant)
    if model.mlflow_version is None:
        raise GovernanceError(f"ledger model {model.model_id} of {tenant} names no MLflow version")
    try:
        registry.client().get_model_version(name, str(model.mlflow_version))
    except MlflowException as exc:
        raise GovernanceError(
            f"the ledger's model {model.model_id} of {tenant} is MLflow {name} v{model.mlflow_version}, which no "
            "longer exists in the registry; restore it or roll back to another version "
            "(`rai-assets integrity verify` lists every mismatch)") from exc


def cohort_join(ledger: LedgerResource, *, tenant: str, cohort: str, actor: str, reason: str,
                role: str = "manager") -> int:
    """Opt ``tenant`` in to pooled training with ``cohort`` (REG-9): a manager's governed, audited action.

    The cohort is created for the tenant's model spec if it does not exist; the database refuses a
    tenant of another spec, a tenant already in a cohort, and any role but manager/admin.

    Returns:
        The audit-log sequence number of the decision.

    Raises:
        GovernanceError: wrong role, no reason, or the tenant is already in a cohort.
    """
    _check_role("cohort-join", role)
    if not reason.strip():
        raise GovernanceError("a governance action needs a reason")
    with ledger.connect(tenant, role=role, actor=actor) as conn:
        spec = get_tenant(conn, tenant).model_spec
        current = cohorts.active_membership(conn, tenant)
        if current is not None:
            raise GovernanceError(f"tenant {tenant!r} is already in cohort {current.cohort_id!r}; leave it first")
        cohorts.create_cohort(conn, cohort, spec)
        membership = cohorts.join(conn, tenant=tenant, cohort=cohort, actor=actor)
        return audit.append(conn, tenant=tenant, action="governance.cohort-join", actor=actor, reason=reason,
                            before={"cohort": None}, after={"cohort": cohort, "membership_id": membership,
                                                            "model_spec": spec})


def cohort_leave(ledger: LedgerResource, *, tenant: str, actor: str, reason: str, role: str = "manager") -> int:
    """Take ``tenant`` out of its cohort (REG-9): no model trained after this reads its rows.

    Returns:
        The audit-log sequence number of the decision.

    Raises:
        GovernanceError: wrong role, no reason, or the tenant is in no cohort.
    """
    _check_role("cohort-leave", role)
    if not reason.strip():
        raise GovernanceError("a governance action needs a reason")
    with ledger.connect(tenant, role=role, actor=actor) as conn:
        left = cohorts.leave(conn, tenant=tenant, actor=actor)
        if left is None:
            raise GovernanceError(f"tenant {tenant!r} is in no cohort")
        return audit.append(conn, tenant=tenant, action="governance.cohort-leave", actor=actor, reason=reason,
                            before={"cohort": left}, after={"cohort": None})


def bootstrap_override(ledger: LedgerResource, *, tenant: str, version: int, actor: str, reason: str,
                       role: str = "manager") -> int:
    """Let a validated version become the tenant's first champion without a passed bias audit (REG-5
    override): recorded in ``bootstrap_overrides`` and the audit log; the next promotion step or the
    database's bootstrap gate honours it.

    Raises:
        GovernanceError: wrong role, no reason, unknown version.
    """
    _check_role("bootstrap-override", role)
    if not reason.strip():
        raise GovernanceError("a governance action needs a reason")
    with ledger.connect(tenant, role=role, actor=actor) as conn:
        model = _model_by_version(conn, tenant, version)
        conn.execute("INSERT INTO bootstrap_overrides (tenant_id, model_id, actor, reason) VALUES (%s, %s, %s, %s)",
                     (tenant, model.model_id, actor, reason))
        return audit.append(conn, tenant=tenant, action="governance.bootstrap-override", actor=actor, reason=reason,
                            model_id=model.model_id, after={"bias_gate": "overridden"})
