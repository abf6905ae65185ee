"""Dagster jobs for governance, configurable from the Launchpad, and the retention schedule."""


from enum import Enum

from dagster import Config, OpExecutionContext, ScheduleDefinition, job, op
from pydantic import Field

from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.domain.ids import tenant_id as valid_tenant_id
from rai_assets.governance import actions
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
                      mlflow_registry: MlflowRegistryResource) -> None:
    """Apply the configured action; the ledger checks role, FSM and guards and audits it.

    Raises:
        GovernanceError: the tenant is not registered, or the action is refused.
    """
    t, v, who, why, role = config.tenant, config.version, config.actor, config.reason, config.role.value
    with ledger.connect(valid_tenant_id(t), role=role) as conn:
        if conn.execute("SELECT 1 FROM tenants WHERE tenant_id = %s", (t,)).fetchone() is None:
            raise actions.GovernanceError(f"tenant {t!r} is not registered; check the Launchpad config's tenant")
    action = config.action
    if action is GovernanceAction.APPROVE:
        result = actions.approve(ledger, tenant=t, version=v, actor=who, reason=why, role=role)
    elif action is GovernanceAction.REJECT:
        result = actions.reject(ledger, tenant=t, version=v, actor=who, reason=why, role=role)
    elif action is GovernanceAction.ROLLBACK:
        result = actions.rollback(ledger, mlflow_registry, tenant=t, version=v, actor=who, reason=why, role=role)
    else:
        result = actions.baseline_reset(ledger, tenant=t, version=v, actor=who, reason=why, role=role)
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
