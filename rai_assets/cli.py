"""The ``rai-assets`` command line: demo, ledger lifecycle and migrations, tenant/season registration."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rai_assets.adapters.ledger.resource import LedgerResource

REPO_ROOT = Path(__file__).resolve().parent.parent


def _state_dir() -> Path:
    path = Path(os.environ.get("RAI_STATE_DIR", ".rai")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _owned_ledger() -> tuple[str, int | None]:
    """Use ``RAI_LEDGER_URL`` if set; else start the embedded ledger (or attach to the one a running
    ``make dagster`` owns), migrate it and export ``RAI_LEDGER_OWNER_URL`` (its superuser) and
    ``RAI_LEDGER_URL`` (the ``rai_app`` role).

    Returns:
        (application URL, PID of the embedded server *this process started*, or None: a server it
        attached to is never stopped by it).
    """
    from rai_assets.adapters.ledger.embedded import ensure_embedded_postgres
    from rai_assets.adapters.ledger.resource import APP_ROLE, with_user
    from rai_assets.adapters.ledger.schema import upgrade

    if os.environ.get("RAI_LEDGER_URL"):
        return os.environ["RAI_LEDGER_URL"], None
    owner, pid, started = ensure_embedded_postgres(_state_dir())
    upgrade(owner)
    os.environ["RAI_LEDGER_OWNER_URL"] = owner
    os.environ["RAI_LEDGER_URL"] = with_user(owner, APP_ROLE)
    return os.environ["RAI_LEDGER_URL"], pid if started else None


def _stop_owned(pid: int | None) -> None:
    from rai_assets.adapters.ledger.embedded import stop_embedded_postgres

    if pid is not None:
        stopped = stop_embedded_postgres(_state_dir())
        click.echo(f"stopped the embedded ledger (Postgres PID {stopped})")


def _ledger() -> LedgerResource:
    """The ledger resource configured from ``RAI_LEDGER_URL`` / ``RAI_LEDGER_OWNER_URL``."""
    from rai_assets.adapters.ledger.resource import LedgerResource

    return LedgerResource(database_url=os.environ.get("RAI_LEDGER_URL", ""),
                          owner_url=os.environ.get("RAI_LEDGER_OWNER_URL", ""), state_dir=str(_state_dir()))


_URL_SECRET = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]+):[^@\s]+@", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` URL replaced by ``***``."""
    return _URL_SECRET.sub(r"\g<scheme>:***@", text)


class _OneSentenceErrors(click.Group):
    """The command group: an error a user can act on is one sentence and exit code 1, never a traceback
    or a secret (a database URL's password is redacted). Click's own usage errors pass through."""

    def invoke(self, ctx: click.Context) -> object:
        import psycopg

        try:
            return super().invoke(ctx)
        except click.exceptions.UsageError:
            raise
        except click.exceptions.ClickException as exc:
            redacted = redact(exc.message)
            if redacted == exc.message:
                raise
            raise click.ClickException(redacted) from exc
        except (ValueError, LookupError, OSError, psycopg.Error) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise click.ClickException(redact(f"{type(exc).__name__}: {first}")) from exc


def _library_warnings_to_log() -> Path:
    """Send Python warnings (a library's, e.g. platformdirs' ``RuntimeDirWarning`` when pgserver is imported
    without ``XDG_RUNTIME_DIR``) to ``<state>/cli.log`` instead of the console; returns that path.

    A command's console output is its result or one sentence of error; nothing is dropped, the warnings are
    in the file. ``rai-assets demo`` keeps its own log (``<state>/demo/demo.log``).
    """
    import logging
    import warnings

    path = _state_dir() / "cli.log"
    logger = logging.getLogger("py.warnings")
    if not any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path for h in logger.handlers):
        handler = logging.FileHandler(path, encoding="utf-8", delay=True)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
    logger.propagate = False
    warnings.simplefilter("default")
    logging.captureWarnings(True)
    return path


@click.group(cls=_OneSentenceErrors)
@click.pass_context
def main(ctx: click.Context) -> None:
    """rai-assets: continuous training of per-tenant crop-yield models (Dagster + MLflow)."""
    if ctx.invoked_subcommand != "demo":
        _library_warnings_to_log()


@main.command()
@click.option("--tenants", "max_tenants", type=int, default=None, help="Only the first N villages.")
@click.option("--seasons", "max_seasons", type=int, default=None, help="Only the first N seasons.")
@click.option("--cohort/--no-cohort", default=True, show_default=True,
              help="Opt the villages in to one pooled cohort (REG-9), or keep per-tenant models.")
@click.option("--unfair-tenant", is_flag=True, default=False,
              help="Add a synthetic tenant whose last season's bias audit fails (a pest hits one variety).")
def demo(max_tenants: int | None, max_seasons: int | None, cohort: bool, unfair_tenant: bool) -> None:
    """Land the RiceFarms uploads and materialize every tenant × season partition on the embedded stores.

    The console shows progress per partition and the summary; library output (Dagster's JSON log lines,
    warnings, MLflow's notices) goes to ``<state>/demo/demo.log`` and every run's events to the Dagster
    event log (the UI's run pages)."""
    from rai_assets.demo.quiet import log_to_file

    started = time.perf_counter()
    state = _state_dir()
    log_path = state / "demo" / "demo.log"
    with log_to_file(log_path):
        from rai_assets.assets.common import spec_by_id
        from rai_assets.demo.runner import SPEC_ID, prepare_dagster_home, run_demo
        from rai_assets.demo.summary import format_table, served_table
        from rai_assets.serving.export import export_forecasts, served_accuracy

        prepare_dagster_home(state, REPO_ROOT)
        url, pid = _owned_ledger()
        click.echo(f"state directory: {state}\nledger: {'embedded Postgres PID ' + str(pid) if pid else redact(url)}"
                   f"\nlog: {log_path} (Dagster's JSON log lines, warnings, MLflow notices)")
        try:
            runs, summaries = run_demo(state, max_tenants=max_tenants, max_seasons=max_seasons, cohort=cohort,
                                       unfair_tenant=unfair_tenant, progress=click.echo)
            tenants = [s.tenant for s in summaries]
            ledger = _ledger()
            spec = spec_by_id(SPEC_ID)  # the demo's tenants are all registered with the RiceFarms spec
            served = [a for t in tenants for a in served_accuracy(ledger, t, (spec.target_numerator,
                                                                              spec.target_denominator))]
            export_path = state / "demo" / "served-forecasts.csv"
            exported = export_forecasts(ledger, tenants, export_path)
        finally:
            _stop_owned(pid)
    failed = [r for r in runs if not r.success]
    click.echo("\n" + format_table(summaries))
    click.echo(f"\nMAE in {spec.target_unit} on each tenant's latest season.")
    late = sorted({a.season for a in served})[-3:]
    click.echo(f"\nServed forecasts vs the naive baseline (tenant mean of earlier seasons), seasons {', '.join(late)}:")
    click.echo(served_table(served, late))
    click.echo(f"\n{exported} served forecasts exported to {export_path} (rai-assets forecasts export).")
    click.echo(f"\n{len(runs)} partition runs, {len(failed)} failed, {time.perf_counter() - started:.0f} s wall time.")
    click.echo("\nBrowse the results:\n  make dagster   # Dagster UI on http://127.0.0.1:3000 (same instance)\n"
               "  make mlflow    # MLflow UI on http://127.0.0.1:5000 (same tracking store)")
    if failed:
        click.echo(f"failed runs: {', '.join(r.run_id[:8] for r in failed)}; their errors are in {log_path} and on "
                   "the runs' pages of the Dagster UI (make dagster)", err=True)
        sys.exit(1)


@main.command("backfill")
@click.option("--seasons", required=True, help="The seasons to backfill, in time order, comma-separated (s01,s02).")
@click.option("--tenant", "tenants", multiple=True,
              help="A tenant to backfill (repeatable); default: every tenant partition of the Dagster instance.")
@click.option("--tenants-per-run", type=click.IntRange(min=1), default=250, show_default=True,
              help="At most this many tenants in one run (a cohort's members always share a run).")
@click.option("--dagster-url", default=None,
              help="Submit the runs to this Dagster webserver (its run queue and run launcher run a season's "
              "runs side by side); default: run them one after the other in this process.")
def backfill(seasons: str, tenants: tuple[str, ...], tenants_per_run: int, dagster_url: str | None) -> None:
    """Materialize every tenant × season asset for SEASONS in season waves: a few runs per season
    (``season_wave_job``), each season launched when the previous one's runs finished, instead of one run
    per partition. A failed run stops its tenants' later seasons; the others go on."""
    from dagster import DagsterInstance

    from rai_assets.adapters.ledger.cohorts import active_membership
    from rai_assets.assets.partitions import SEASON_DIMENSION, TENANT_DIMENSION
    from rai_assets.backfill.driver import GraphQLLauncher, InProcessLauncher, WaveLauncher, run_season_backfill
    from rai_assets.backfill.plan import plan_waves
    from rai_assets.demo.quiet import log_to_file
    from rai_assets.demo.runner import prepare_dagster_home

    state = _state_dir()
    if not os.environ.get("DAGSTER_HOME"):
        prepare_dagster_home(state, REPO_ROOT)
    season_list = [s.strip() for s in seasons.split(",") if s.strip()]
    log_path = state / "backfill" / "backfill.log"
    with log_to_file(log_path, "backfill"):
        instance = DagsterInstance.get()
        known_tenants = instance.get_dynamic_partitions(TENANT_DIMENSION)
        known_seasons = set(instance.get_dynamic_partitions(SEASON_DIMENSION))
        chosen = list(tenants) or known_tenants
        for what, asked, known in (("season", season_list, known_seasons), ("tenant", chosen, set(known_tenants))):
            missing = [x for x in asked if x not in known]
            if missing:
                raise click.ClickException(f"{what} {missing[0]!r} is not a {what} partition of the Dagster "
                                           f"instance ({len(missing)} unknown); register it first")
        pid = _owned_ledger()[1] if dagster_url is None else None  # with a webserver: RAI_LEDGER_URL as set
        try:
            ledger = _ledger()
            cohort_of = {}
            for tenant_id in chosen:
                with ledger.connect(tenant_id) as conn:
                    membership = active_membership(conn, tenant_id)
                if membership is not None:
                    cohort_of[tenant_id] = membership.cohort_id
            waves = plan_waves(chosen, season_list, tenants_per_run, cohort_of)
            launcher: WaveLauncher
            if dagster_url is None:
                from rai_assets.backfill.wave import SEASON_WAVE_JOB
                from rai_assets.definitions import build_definitions, build_resources

                job = build_definitions(build_resources()).resolve_job_def(SEASON_WAVE_JOB)
                launcher = InProcessLauncher(job, instance, {"loggers": {"console": {"config": {
                    "log_level": "WARNING"}}}})
            else:
                launcher = GraphQLLauncher(dagster_url)
            click.echo(f"{len(chosen)} tenants × {len(season_list)} seasons in {sum(map(len, waves))} runs "
                       f"({len(waves[0])} a season); log: {log_path}")
            report = run_season_backfill(launcher, waves, progress=click.echo)
        finally:
            _stop_owned(pid)
    failed = [run_id for _, run_id, ok in report.runs if not ok]
    click.echo(f"backfill {report.backfill_id}: {len(report.runs)} runs, {len(failed)} failed, "
               f"{report.seconds:.0f} s wall time (runs tagged rai/backfill={report.backfill_id}).")
    if failed:
        raise click.ClickException(f"{len(failed)} runs failed and {len(report.stopped)} tenants were stopped before "
                                   f"their later seasons; see the runs {', '.join(r[:8] for r in failed[:5])} in the "
                                   "Dagster UI")


@main.command("closed-loop")
@click.option("--port", type=int, default=3070, show_default=True, help="Port of the temporary Dagster webserver.")
def closed_loop(port: int) -> None:
    """Head-less closed loop: dagster dev + sensors; drifted seasons land, retraining and promotion follow."""
    from rai_assets.demo.closed_loop import run_closed_loop
    from rai_assets.demo.runner import prepare_dagster_home

    state = _state_dir()
    prepare_dagster_home(state, REPO_ROOT)
    _url, pid = _owned_ledger()
    try:
        timeline = run_closed_loop(state, dagster_bin=str(Path(sys.executable).parent / "dagster"), port=port,
                                   progress=click.echo)
    finally:
        _stop_owned(pid)
    click.echo("\ntimeline (seconds after the s03 files landed):")
    for step in timeline:
        click.echo(f"  {step.at_s:7.1f}  {step.what}")
    latency = next((s.at_s for s in timeline if "drift report" in s.what), None)
    if latency is not None:
        click.echo(f"\ndrift_detection_latency_s={latency:.1f} s  (DRIFT-5 SLO: < 4 h = 14400 s)")


@main.group()
def db() -> None:
    """Ledger schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the ledger's migrations as the owner (RAI_LEDGER_OWNER_URL, or the embedded ledger's superuser)."""
    from rai_assets.adapters.ledger.schema import upgrade

    owner = os.environ.get("RAI_LEDGER_OWNER_URL")
    _url, pid = _owned_ledger()
    try:
        if owner:
            upgrade(owner)
        click.echo("ledger schema is at head")
    finally:
        _stop_owned(pid)


@main.group()
def ledger() -> None:
    """The embedded ledger (local default)."""


@ledger.command("start")
def ledger_start() -> None:
    """Start the embedded Postgres and print its URL (stop it with `rai-assets ledger stop`)."""
    from rai_assets.adapters.ledger.embedded import start_embedded_postgres

    url, pid = start_embedded_postgres(_state_dir())
    click.echo(f"PID {pid}\nRAI_LEDGER_URL={url}")


@ledger.command("stop")
def ledger_stop() -> None:
    """Stop the embedded Postgres by its PID."""
    from rai_assets.adapters.ledger.embedded import stop_embedded_postgres

    pid = stop_embedded_postgres(_state_dir())
    click.echo(f"stopped PID {pid}" if pid else "no embedded ledger running")


def _dagster_port(command: tuple[str, ...]) -> int | None:
    """The ``-p/--port`` of a ``dagster dev``/``dagster-webserver`` command (3000 by default), else None."""
    if not command or not Path(command[0]).name.startswith("dagster"):
        return None
    args = list(command)
    for i, arg in enumerate(args):
        if arg in ("-p", "--port") and i + 1 < len(args) and args[i + 1].isdigit():
            return int(args[i + 1])
        if arg.startswith("--port=") and arg[7:].isdigit():
            return int(arg[7:])
    return 3000 if "dev" in args or Path(command[0]).name == "dagster-webserver" else None


def _port_busy(port: int, host: str = "127.0.0.1") -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


@main.command("with-ledger", context_settings={"ignore_unknown_options": True})
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def with_ledger(command: tuple[str, ...]) -> None:
    """Run COMMAND with the embedded ledger up (RAI_LEDGER_URL set); stop the ledger afterwards if this
    process started it (one attached to is left running). A ``dagster`` COMMAND whose ``-p/--port`` is
    already in use is refused before anything starts."""
    port = _dagster_port(command)
    if port is not None and _port_busy(port):
        raise click.ClickException(f"port {port} is already in use (another `make dagster`?); stop it or choose "
                                   "another port — nothing was started")
    _url, pid = _owned_ledger()
    code = 1
    try:
        code = subprocess.call(list(command), env=os.environ.copy())
    except KeyboardInterrupt:
        code = 130
    finally:
        _stop_owned(pid)
    sys.exit(code)


@main.group()
def tenant() -> None:
    """Tenants."""


@tenant.command("register")
@click.argument("tenant_id")
@click.option("--public-key", required=True, help="URL-safe base64 of the tenant's Ed25519 public key.")
@click.option("--spec", default="rice-yield-v1", show_default=True,
              help="Model spec id (resources/model_specs); it names the tenant's contract, expectations and unit.")
def tenant_register(tenant_id: str, public_key: str, spec: str) -> None:
    """Register TENANT_ID in the ledger and as a Dagster partition."""
    from dagster import DagsterInstance

    from rai_assets.adapters.ledger.tenants import register_tenant
    from rai_assets.assets.common import registrable_spec
    from rai_assets.assets.partitions import add_partitions
    from rai_assets.domain.ids import tenant_id as valid_tenant_id
    from rai_assets.domain.signing import parse_public_key

    try:  # everything checkable without the ledger is checked before it starts
        valid_tenant_id(tenant_id)
        registrable_spec(spec)  # the spec, its contract and its expectations suite are shipped
        parse_public_key(public_key)
    except ValueError as exc:
        raise click.ClickException(f"tenant {tenant_id!r} not registered: {exc}") from exc
    _url, pid = _owned_ledger()
    try:
        try:
            with _ledger().connect(tenant_id) as conn:
                register_tenant(conn, tenant_id, public_key, spec)
        except ValueError as exc:
            raise click.ClickException(f"tenant {tenant_id!r} not registered: {exc}") from exc
        add_partitions(DagsterInstance.get(), tenants=[tenant_id])
        click.echo(f"tenant {tenant_id} registered")
    finally:
        _stop_owned(pid)


@main.group()
def season() -> None:
    """The season calendar."""


@season.command("register")
@click.option("--tenant", required=True, help="Whose calendar (each tenant has its own).")
@click.option("--season", "season_id", required=True)
@click.option("--after", "follows", default=None, help="The season it comes right after (default: last).")
@click.option("--ordinal", type=int, default=None, help="Its value in the tenant's calendar (instead of --after).")
@click.option("--actor", required=True, help="Who registers it (recorded in the audit log).")
@click.option("--reason", required=True)
@click.option("--role", type=click.Choice(["manager", "admin"]), default="manager", show_default=True,
              help="Database role to act as (GOV-4).")
def season_register(tenant: str, season_id: str, follows: str | None, ordinal: int | None, actor: str, reason: str,
                    role: str) -> None:
    """Add a season to a tenant's calendar (governed and audited) and as a Dagster partition.

    A verified upload adds its season by itself; this is for seasons known before their data.
    """
    from dagster import DagsterInstance

    from rai_assets.assets.partitions import add_partitions
    from rai_assets.domain.ids import InvalidIdentifierError
    from rai_assets.governance.actions import GovernanceError, season_register

    _url, pid = _owned_ledger()
    try:
        try:
            done = season_register(_ledger(), tenant=tenant, season=season_id, actor=actor, reason=reason, role=role,
                                   ordinal=ordinal, follows=follows)
        except (GovernanceError, InvalidIdentifierError, LookupError) as exc:
            raise click.ClickException(f"season register {tenant}/{season_id} refused: {exc}") from exc
        add_partitions(DagsterInstance.get(), seasons=[season_id])
        audited = f"audit seq {done.audit_seq}" if done.audit_seq is not None else "already registered, not audited"
        click.echo(f"season {season_id} registered for {tenant} at position {done.position} of "
                   f"{len(done.calendar)} ({audited})")
    finally:
        _stop_owned(pid)


@main.group()
def governance() -> None:
    """Governance actions on a tenant's model versions (audited; GOV-3, GOV-4)."""


def _governance_options(default_role: str):  # type: ignore[no-untyped-def]
    def wrap(fn):  # type: ignore[no-untyped-def]
        for option in reversed([
            click.option("--tenant", required=True),
            click.option("--version", "version", type=int, required=True, help="MLflow model version."),
            click.option("--actor", required=True, help="Who takes the decision (recorded)."),
            click.option("--reason", required=True),
            click.option("--role", type=click.Choice(["manager", "admin"]), default=default_role, show_default=True,
                         help="Database role to act as (GOV-4)."),
        ]):
            fn = option(fn)
        return fn
    return wrap


def _run_governance(action: str, tenant: str, version: int, actor: str, reason: str, role: str) -> None:
    from rai_assets.adapters.ledger.errors import LedgerRefusal
    from rai_assets.definitions import resolved_stores
    from rai_assets.governance import actions

    _url, pid = _owned_ledger()
    try:
        stores = resolved_stores()
        common = {"tenant": tenant, "version": version, "actor": actor, "reason": reason, "role": role}
        evidence = actions.StoredEvidence(stores.object_store, stores.signer.key().public_key_b64)
        try:
            if action == "rollback":
                result = actions.rollback(stores.ledger, stores.mlflow_registry, **common)  # type: ignore[arg-type]
            elif action == "bootstrap-override":
                seq = actions.bootstrap_override(stores.ledger, **common)  # type: ignore[arg-type]
                click.echo(f"bootstrap-override: {tenant} v{version} may become the first champion (audit seq {seq})")
                return
            elif action == "reject":
                result = actions.reject(stores.ledger, **common)  # type: ignore[arg-type]
            else:
                run = {"approve": actions.approve, "baseline-reset": actions.baseline_reset}
                result = run[action](stores.ledger, evidence=evidence, **common)  # type: ignore[arg-type]
        except (actions.GovernanceError, LedgerRefusal) as exc:
            raise click.ClickException(f"{action} refused for {common}: {exc}") from exc
        click.echo(f"{result.action}: {result.tenant} v{result.mlflow_version} {result.before} → {result.after} "
                   f"(audit seq {result.audit_seq})")
        from rai_assets.adapters.lifecycle_mirror import mirror_lifecycle

        for change in mirror_lifecycle(stores.ledger, stores.mlflow_registry, tenant):
            click.echo(f"  MLflow: {change}")
    finally:
        _stop_owned(pid)


_VERSION_ACTIONS = {
    "approve": ("manager", "QUARANTINED → VALIDATED, or VALIDATED → SHADOW (needs a passed, verified bias audit)."),
    "reject": ("manager", "VALIDATED / SHADOW / CANARY / QUARANTINED → DEPRECATED."),
    "rollback": ("admin", "Restore a previous champion (the current one is deprecated); MLflow's alias follows."),
    "baseline-reset": ("admin", "Make the version's training snapshot the tenant's drift reference."),
    "bootstrap-override": ("manager", "Let a VALIDATED version become the first champion without a passed bias "
                                      "audit (audited override of REG-5's bootstrap gate)."),
}


def _version_action_command(action: str, default_role: str, doc: str) -> None:
    def command(tenant: str, version: int, actor: str, reason: str, role: str) -> None:
        _run_governance(action, tenant, version, actor, reason, role)

    command.__doc__ = doc
    governance.command(action)(_governance_options(default_role)(command))


for _action, (_role, _doc) in _VERSION_ACTIONS.items():
    _version_action_command(_action, _role, _doc)


@governance.command("breaker-reset")
@click.option("--tenant", required=True)
@click.option("--actor", required=True)
@click.option("--reason", required=True)
def governance_breaker_reset(tenant: str, actor: str, reason: str) -> None:
    """Close the tenant's retraining circuit breaker (admin, audited; RET-5)."""
    from rai_assets.adapters.ledger.errors import LedgerRefusal
    from rai_assets.definitions import resolved_stores
    from rai_assets.governance.actions import GovernanceError, breaker_reset

    _url, pid = _owned_ledger()
    try:
        try:
            seq = breaker_reset(resolved_stores().ledger, tenant=tenant, actor=actor, reason=reason)
        except (GovernanceError, LedgerRefusal) as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"{tenant}: circuit breaker reset (audit seq {seq})")
    finally:
        _stop_owned(pid)


@governance.command("reconcile")
@click.option("--tenant", required=True)
def governance_reconcile(tenant: str) -> None:
    """Repair MLflow's champion alias from the ledger (the source of truth)."""
    from rai_assets.definitions import resolved_stores
    from rai_assets.governance.actions import GovernanceError, reconcile_champion_alias

    _url, pid = _owned_ledger()
    try:
        stores = resolved_stores()
        try:
            click.echo(reconcile_champion_alias(stores.ledger, stores.mlflow_registry, tenant))
            from rai_assets.adapters.lifecycle_mirror import mirror_lifecycle

            for change in mirror_lifecycle(stores.ledger, stores.mlflow_registry, tenant):
                click.echo(f"  MLflow: {change}")
        except GovernanceError as exc:
            raise click.ClickException(f"reconcile refused: {exc}") from exc
    finally:
        _stop_owned(pid)


@governance.command("retention")
@click.option("--tenant", "tenants", multiple=True, required=True)
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
def governance_retention(tenants: tuple[str, ...], dry_run: bool) -> None:
    """Apply model-version retention (REG-7) now."""
    from rai_assets.definitions import resolved_stores
    from rai_assets.governance.retention import apply_retention

    _url, pid = _owned_ledger()
    try:
        stores = resolved_stores()
        for tenant in tenants:
            plan = apply_retention(stores.ledger, stores.mlflow_registry, tenant, dry_run=dry_run)
            for d in plan:
                click.echo(f"{tenant}: {'would delete' if dry_run else 'deleted'} model {d.model_id} "
                           f"(MLflow v{d.mlflow_version}, {d.state}): {d.reason}")
            if not plan:
                click.echo(f"{tenant}: nothing to collect")
    finally:
        _stop_owned(pid)


@main.group()
def cohort() -> None:
    """Opt-in pooled training across tenants of one model spec (REG-9; a manager's audited decision)."""


@cohort.command("join")
@click.option("--tenant", required=True)
@click.option("--cohort", "cohort_id", required=True, help="Cohort name (created for the tenant's spec if new).")
@click.option("--actor", required=True, help="The tenant's manager who decides (recorded).")
@click.option("--reason", required=True)
@click.option("--role", type=click.Choice(["manager", "admin"]), default="manager", show_default=True)
def cohort_join(tenant: str, cohort_id: str, actor: str, reason: str, role: str) -> None:
    """Opt a tenant in to a cohort: its next models are trained on every member's snapshots."""
    from rai_assets.adapters.ledger.errors import LedgerRefusal
    from rai_assets.definitions import resolved_stores
    from rai_assets.governance import actions

    _url, pid = _owned_ledger()
    try:
        try:
            seq = actions.cohort_join(resolved_stores().ledger, tenant=tenant, cohort=cohort_id, actor=actor,
                                      reason=reason, role=role)
        except (actions.GovernanceError, LedgerRefusal, LookupError) as exc:
            raise click.ClickException(f"cohort join refused: {exc}") from exc
        click.echo(f"{tenant} joined cohort {cohort_id} (audit seq {seq})")
    finally:
        _stop_owned(pid)


@cohort.command("leave")
@click.option("--tenant", required=True)
@click.option("--actor", required=True)
@click.option("--reason", required=True)
@click.option("--role", type=click.Choice(["manager", "admin"]), default="manager", show_default=True)
def cohort_leave(tenant: str, actor: str, reason: str, role: str) -> None:
    """Take a tenant out of its cohort: no model trained afterwards reads its rows."""
    from rai_assets.adapters.ledger.errors import LedgerRefusal
    from rai_assets.definitions import resolved_stores
    from rai_assets.governance import actions

    _url, pid = _owned_ledger()
    try:
        try:
            seq = actions.cohort_leave(resolved_stores().ledger, tenant=tenant, actor=actor, reason=reason, role=role)
        except (actions.GovernanceError, LedgerRefusal) as exc:
            raise click.ClickException(f"cohort leave refused: {exc}") from exc
        click.echo(f"{tenant} left its cohort (audit seq {seq})")
    finally:
        _stop_owned(pid)


@main.group()
def models() -> None:
    """A tenant's model versions, as the ledger records them."""


@models.command("list")
@click.option("--tenant", required=True)
def models_list(tenant: str) -> None:
    """MLflow version (what governance commands take as --version), ledger state, held-out MAE, bias verdict."""
    from rai_assets.demo.summary import plain_table
    from rai_assets.governance.listing import list_models

    _url, pid = _owned_ledger()
    try:
        try:
            rows = list_models(_ledger(), tenant)
        except (ValueError, LookupError) as exc:
            raise click.ClickException(str(exc)) from exc
        if not rows:
            click.echo(f"{tenant} has no model versions yet")
            return
        click.echo(plain_table(
            ["version", "model", "state", "kind", "trained for", f"held-out MAE {rows[0].unit}", "bias audit"],
            [[str(r.version or "—"), r.mlflow_ref, r.state, r.kind, r.season,
              f"{r.heldout_mae:,.0f}" if r.heldout_mae is not None else "—", r.bias_verdict]
             for r in rows]))
    finally:
        _stop_owned(pid)


@main.group()
def forecasts() -> None:
    """The forecasts tenants were served."""


@forecasts.command("export")
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True, path_type=Path), required=True,
              help="CSV file to write.")
@click.option("--tenant", "tenants", multiple=True, help="Only these tenants (default: every tenant partition).")
@click.option("--season", default=None, help="Only this season.")
def forecasts_export(out: Path, tenants: tuple[str, ...], season: str | None) -> None:
    """Write the served forecasts (tenant, season, field_id, predicted_yield_kg_ha, model, model_version, source,
    unit): the forecast is in ``unit``, the target unit of the model's spec."""
    from rai_assets.serving.export import export_forecasts, known_tenants

    _url, pid = _owned_ledger()
    try:
        chosen = list(tenants) or known_tenants()
        if not chosen:
            raise click.ClickException("no tenants are known to this Dagster instance; name one with --tenant")
        try:
            rows = export_forecasts(_ledger(), chosen, out, season=season)
        except (ValueError, OSError) as exc:
            raise click.ClickException(f"forecast export failed: {exc}") from exc
        click.echo(f"wrote {rows} served forecasts of {len(chosen)} tenant(s) to {out}")
    finally:
        _stop_owned(pid)


@main.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@click.option("--tenant", required=True)
def audit_verify(tenant: str) -> None:
    """Verify the tenant's audit chain and its signed checkpoints (a cut tail is found); exit 1 and list
    the breaks if it does not verify."""
    from rai_assets.adapters.ledger.audit import verify_chain
    from rai_assets.definitions import resolved_stores
    from rai_assets.governance.checkpoints import verify_against_checkpoints

    _url, pid = _owned_ledger()
    try:
        stores = resolved_stores()
        with stores.ledger.connect(tenant, role="admin") as conn:
            result = verify_chain(conn, tenant)
            latest, anchored = verify_against_checkpoints(conn, stores.object_store,
                                                          stores.signer.key().public_key_b64, tenant)
    finally:
        _stop_owned(pid)
    problems = [*result.problems, *anchored]
    if not problems:
        anchor = f"; anchored by the signed checkpoint at seq {latest.seq}" if latest else "; no checkpoint yet"
        click.echo(f"{tenant}: audit chain of {result.entries} entries verifies{anchor}")
        return
    for problem in problems:
        click.echo(f"{tenant}: {problem}", err=True)
    sys.exit(1)


@audit.command("checkpoint")
@click.option("--tenant", required=True)
def audit_checkpoint(tenant: str) -> None:
    """Sign the tenant's verified chain head and store it write-once (the daily integrity run does this too)."""
    from rai_assets.adapters.ledger.audit import verify_chain
    from rai_assets.definitions import resolved_stores
    from rai_assets.governance.checkpoints import verify_against_checkpoints, write_checkpoint

    _url, pid = _owned_ledger()
    try:
        stores = resolved_stores()
        key = stores.signer.key()
        with stores.ledger.connect(tenant) as conn:
            problems = [*verify_chain(conn, tenant).problems,
                        *verify_against_checkpoints(conn, stores.object_store, key.public_key_b64, tenant)[1]]
            if problems:
                raise click.ClickException(f"{tenant}: the chain does not verify, no checkpoint written: {problems[0]}")
            written = write_checkpoint(conn, stores.object_store, key, tenant)
    finally:
        _stop_owned(pid)
    click.echo(f"{tenant}: checkpoint at seq {written.seq} ({written.object_key})" if written
               else f"{tenant}: empty chain, nothing to checkpoint")


@main.group()
def integrity() -> None:
    """Stored objects and MLflow against the ledger."""


@integrity.command("verify")
@click.option("--tenant", "tenants", multiple=True, help="Only these tenants (default: every tenant in the ledger).")
def integrity_verify(tenants: tuple[str, ...]) -> None:
    """Re-read every stored snapshot, drift report, bias audit and evaluation and check it against the ledger's
    hash and signature; compare MLflow (versions, tags, champion alias) with the ledger; check the audit chain
    against its signed checkpoints. Lists every mismatch and exits 1 on any; the result is recorded."""
    from rai_assets.definitions import resolved_stores
    from rai_assets.governance.integrity import ledger_tenants, verify_tenant

    _url, pid = _owned_ledger()
    failed = False
    try:
        stores = resolved_stores()
        key = stores.signer.key()
        for tenant_id in tenants or ledger_tenants(stores.ledger):
            report = verify_tenant(stores.ledger, stores.object_store, stores.mlflow_registry, key.public_key_b64,
                                   key, tenant_id)
            click.echo(report.summary())
            for mismatch in report.mismatches:
                click.echo(f"{tenant_id}: MISMATCH {mismatch}", err=True)
            failed = failed or not report.ok
        from rai_assets.adapters import metrics

        metrics.export()  # rai_integrity_failures_total (the RaiIntegrityMismatch alert)
    finally:
        _stop_owned(pid)
    if failed:
        sys.exit(1)


# ---- rai-assets upload (a tenant's season file into the landing zone, signed) ----

@main.command("upload")
@click.option("--tenant", required=True, help="The tenant the batch belongs to (its landing zone).")
@click.option("--season", required=True, help="The season the rows are of.")
@click.option("--file", "rows_file", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="The rows: .csv (dotted columns, e.g. farm.size_ha) or .jsonl (one learning event a line).")
@click.option("--key-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="The tenant's Ed25519 seed (base64). Default: the demo's <state>/demo/tenant-keys/<tenant>.key.")
@click.option("--name", default=None, help="Batch name (default: upload-<UTC time>); the data file is <name>.jsonl.")
@click.option("--spec", "spec_id", default="rice-yield-v1", show_default=True,
              help="The model spec the tenant is registered with: its contract checks and labels the rows.")
def upload(tenant: str, season: str, rows_file: Path, key_file: Path | None, name: str | None, spec_id: str) -> None:
    """Sign a tenant's rows file and write it as one batch (data + signed manifest, write-once) into the tenant's
    landing zone, exactly as a tenant upload arrives; the landing sensor picks it up. Every row is checked against
    the contract of the tenant's model spec (``--spec``) first: a bad row refuses the whole file, naming its line."""
    from datetime import UTC, datetime

    from rai_assets.adapters.object_store import ObjectExistsError
    from rai_assets.assets.common import spec_by_id
    from rai_assets.definitions import resolved_stores
    from rai_assets.demo.ricefarms import CONTRACT_VERSION, write_batch
    from rai_assets.domain.contract import ContractError, reader_for_major
    from rai_assets.domain.model_spec import DEFAULT_CONTRACT
    from rai_assets.domain.signing import KeyPair
    from rai_assets.domain.upload_rows import canonical_lines, events_from_rows
    from rai_assets.resource_files import resources_dir

    fmt = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(rows_file.suffix.lower())
    if fmt is None:
        raise click.ClickException(f"{rows_file}: unknown file type {rows_file.suffix!r}; use .csv or .jsonl")
    if not rows_file.is_file():
        raise click.ClickException(f"{rows_file}: no such file")
    key_path = key_file or _state_dir() / "demo" / "tenant-keys" / f"{tenant}.key"
    if not key_path.is_file():
        raise click.ClickException(f"no signing key for tenant {tenant!r} at {key_path}; pass --key-file")
    try:
        key = KeyPair.from_b64(key_path.read_text().strip())
    except ValueError as exc:
        raise click.ClickException(f"{key_path}: not a base64 Ed25519 seed ({exc})") from exc
    # the contract of the model spec the tenant is registered with (a new crop is configuration); the uploader
    # needs no ledger access, only the spec id
    try:
        spec = spec_by_id(spec_id)
    except (LookupError, ValueError, OSError) as exc:
        raise click.ClickException(f"model spec {spec_id!r}: {exc}") from exc
    contract_name, major = spec.contract_name, spec.contract_major
    contract = reader_for_major(resources_dir() / "contracts", contract_name, major)
    version = str(contract.versions[0].version) if contract_name != DEFAULT_CONTRACT else CONTRACT_VERSION
    events = events_from_rows(rows_file.read_text(encoding="utf-8"), fmt, tenant=tenant, season=season,
                              contract_version=version, schema=contract.versions[0].schema,
                              source=rows_file.name)
    for number, event in events:
        try:
            contract.validate(event)
        except ContractError as exc:
            raise click.ClickException(f"{rows_file.name} line {number}: {exc}") from exc
    batch_name = name or f"upload-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    store = resolved_stores().object_store
    try:
        batch = write_batch(store, tenant, season, batch_name, canonical_lines(events), key, contract=contract_name,
                            contract_version=version)
    except ObjectExistsError as exc:
        raise click.ClickException(f"batch {batch_name!r} of {tenant} {season} exists with other content; "
                                   "pass another --name") from exc
    click.echo(f"{tenant} {season}: {batch.lines} events signed and written to {store.uri(batch.data_key)}")


if __name__ == "__main__":
    main()
