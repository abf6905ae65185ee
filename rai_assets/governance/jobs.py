"""Dagster jobs for governance, configurable from the Launchpad; the retention and integrity schedules."""


from enum import Enum

from dagster import Config, Failure, MetadataValue, OpExecutionContext, ScheduleDefinition, job, op
from pydantic import Field

from rai_assets.adapters import metrics
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.adapters.signer import SignerResource
from rai_assets.domain.ids import tenant_id as valid_tenant_id
from rai_assets.governance import actions, integrity
from rai_assets.governance.retention import apply_retention


class GovernanceAction(Enum):
    """The version actions the Launchpad offers (a dropdown, not free text)."""

    APPROVE = "approve"
    REJECT = "reject"
    ROLLBACK = "rollback"
    BASELINE_RESET = "baseline-reset"


class GovernanceRole(Enum):
    """The role taking the action (GOV-4); the ledger checks it again."""

    MANAGER = "manager"
    ADMIN = "admin"


class GovernanceActionConfig(Config):
    """One governance action on one model version (``version`` is the MLflow model version, as
    ``rai-assets models list`` shows it)."""

    action: GovernanceAction = Field(description="approve | reject | rollback | baseline-reset")
    tenant: str = Field(description="A registered tenant id")
    version: int = Field(description="MLflow model version (rai-assets models list)")
    actor: str
    reason: str
    role: GovernanceRole = Field(default=GovernanceRole.MANAGER, description="manager | admin (GOV-4)")


@op
def governance_action(context: OpExecutionContext, config: GovernanceActionConfig, ledger: LedgerResource,
                      mlflow_registry: MlflowRegistryResource, object_store: ObjectStoreResource,
                      signer: SignerResource) -> None:
    """Apply the configured action; the ledger checks role, FSM and guards and audits it; the stored
    objects it relies on are verified when it acts.

    Raises:
        GovernanceError: the tenant is not registered, or the action is refused.
    """
    t, v, who, why, role = config.tenant, config.version, config.actor, config.reason, config.role.value
    with ledger.connect(valid_tenant_id(t), role=role) as conn:
        if conn.execute("SELECT 1 FROM tenants WHERE tenant_id = %s", (t,)).fetchone() is None:
            raise actions.GovernanceError(f"tenant {t!r} is not registered; check the Launchpad config's tenant")
    evidence = actions.StoredEvidence(object_store, signer.key().public_key_b64)
    action = config.action
    if action is GovernanceAction.APPROVE:
        result = actions.approve(ledger, tenant=t, version=v, actor=who, reason=why, role=role, evidence=evidence)
    elif action is GovernanceAction.REJECT:
        result = actions.reject(ledger, tenant=t, version=v, actor=who, reason=why, role=role)
    elif action is GovernanceAction.ROLLBACK:
        result = actions.rollback(ledger, mlflow_registry, tenant=t, version=v, actor=who, reason=why, role=role)
    else:
        result = actions.baseline_reset(ledger, tenant=t, version=v, actor=who, reason=why, role=role,
                                        evidence=evidence)
    context.log.info(f"{result.action} {result.tenant} v{result.mlflow_version}: {result.before} → {result.after} "
                     f"(audit seq {result.audit_seq})")


@job(description="Approve / reject / roll back / reset the drift baseline of a model version (audited).")
def governance_job() -> None:
    """Launch from the Launchpad with the action's config."""
    governance_action()


class RetentionConfig(Config):
    """Retention run: which tenants (empty = every tenant partition) and whether to only list."""

    tenants: list[str] = Field(default_factory=list)
    dry_run: bool = False


@op
def retention(context: OpExecutionContext, config: RetentionConfig, ledger: LedgerResource,
              mlflow_registry: MlflowRegistryResource) -> None:
    """REG-7: keep the last 5 versions and every champion; collect old DRAFT/FAILED artifacts."""
    tenants = config.tenants or context.instance.get_dynamic_partitions("tenant")
    for tenant in tenants:
        plan = apply_retention(ledger, mlflow_registry, tenant, dry_run=config.dry_run)
        verb = "would delete" if config.dry_run else "deleted"
        for d in plan:
            context.log.info(f"{tenant}: {verb} model {d.model_id} (MLflow v{d.mlflow_version}, {d.state}): {d.reason}")
        if not plan:
            context.log.info(f"{tenant}: nothing to collect")


@job(description="Model-version retention (REG-7); set dry_run to list what would go.")
def retention_job() -> None:
    """Run retention over the configured tenants."""
    retention()


retention_schedule = ScheduleDefinition(
    name="retention_schedule",
    job=retention_job,
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    description="Daily model-version retention (REG-7).",
)


class IntegrityConfig(Config):
    """Integrity run: which tenants (empty = every tenant in the ledger)."""

    tenants: list[str] = Field(default_factory=list)


@op
def integrity_verification(context: OpExecutionContext, config: IntegrityConfig, ledger: LedgerResource,
                           object_store: ObjectStoreResource, mlflow_registry: MlflowRegistryResource,
                           signer: SignerResource) -> None:
    """GOV-7: verify stored objects, MLflow and the audit chain against the ledger; fail (and count
    ``rai_integrity_failures_total``, which alerts) on any mismatch."""
    key = signer.key()
    tenants = config.tenants or integrity.ledger_tenants(ledger)
    mismatches: list[str] = []
    for tenant in tenants:
        report = integrity.verify_tenant(ledger, object_store, mlflow_registry, key.public_key_b64, key, tenant)
        context.log.info(report.summary())
        for m in report.mismatches:
            context.log.error(f"{tenant}: MISMATCH {m}")
            mismatches.append(f"{tenant}: {m}")
    metrics.export()  # rai_integrity_failures_total → the RaiIntegrityMismatch alert (resources/observability)
    if mismatches:
        raise Failure(description=f"{len(mismatches)} integrity mismatch(es); first: {mismatches[0]}",
                      metadata={"mismatches": MetadataValue.md("\n".join(f"- {m}" for m in mismatches[:50]))})


@job(description="Verify every stored object and MLflow against the ledger, and the audit chain against its "
                 "signed checkpoints (rai-assets integrity verify).")
def integrity_job() -> None:
    """Run the integrity verification over the configured tenants."""
    integrity_verification()


integrity_schedule = ScheduleDefinition(
    name="integrity_schedule",
    job=integrity_job,
    cron_schedule="15 4 * * *",
    execution_timezone="UTC",
    description="Daily integrity verification; a mismatch fails the run and raises rai_integrity_failures_total.",
)
