"""Ledger access: model versions and their lifecycle state (REG-1, REG-3, REG-4).

The ledger is the source of truth for lifecycle state; MLflow's ``champion`` alias follows it.
Every transition states the ``state_version`` it read (optimistic locking) and is appended to
``model_state_history``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from rai_assets.adapters.ledger.errors import VersionConflict, translate
from rai_assets.adapters.ledger.resource import Conn
from rai_assets.domain.lifecycle import ModelState, check_transition


class ConcurrentTransitionError(VersionConflict):
    """Another transaction changed the model version since it was read (REG-4)."""


class ChampionExistsError(RuntimeError):
    """A bootstrap promotion was attempted while the tenant already has a champion."""


@dataclass(frozen=True)
class ModelVersion:
    """One row of ``model_versions``."""

    model_id: int
    tenant_id: str
    season_id: str
    snapshot_root: str
    code_version: str
    spec_sha256: str
    state: ModelState
    state_version: int
    mlflow_model_name: str | None
    mlflow_version: int | None
    mlflow_run_id: str | None
    device: str
    validation_mae: float | None
    kind: str = "tenant"
    cohort_id: str | None = None
    lineage: dict | None = None

    @property
    def mlflow_ref(self) -> str:
        """``<registered model>/<version>``: names the model across tenants (a cohort model is one)."""
        return f"{self.mlflow_model_name}/{self.mlflow_version}"


_COLUMNS = (
    "model_id, tenant_id, season_id, snapshot_root, code_version, spec_sha256, state, state_version,"
    " mlflow_model_name, mlflow_version, mlflow_run_id, device, validation_mae, kind, cohort_id, lineage"
)


def _row(row: dict | None) -> ModelVersion | None:
    if row is None:
        return None
    return ModelVersion(**{**row, "state": ModelState(row["state"])})


def find_model(conn: Conn, tenant: str, season: str, snapshot_root: str, code_version: str, spec_sha256: str,
               kind: str = "tenant", lineage_root: str | None = None) -> ModelVersion | None:
    """The live (not FAILED) model version of ``kind`` trained from exactly these inputs and code, if any.

    ``lineage_root`` (cohort models) must match the lineage's ``lineage_root`` too: the tenant's own
    snapshot is only its share of a cohort model's training data.
    """
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM model_versions WHERE tenant_id = %s AND season_id = %s AND snapshot_root = %s"
        " AND code_version = %s AND spec_sha256 = %s AND kind = %s AND state <> 'FAILED'"
        " AND (%s::text IS NULL OR lineage->>'lineage_root' = %s) ORDER BY model_id DESC LIMIT 1",
        (tenant, season, snapshot_root, code_version, spec_sha256, kind, lineage_root, lineage_root),
    ).fetchone()
    return _row(row)


#: The versions of one recipe (see :func:`challenger_lineage`); parameters from :func:`_recipe_params`, the last
#: of which (the candidate's MLflow version) the caller compares ``mlflow_version`` with.
_RECIPE = ("tenant_id = %s AND kind = %s AND cohort_id IS NOT DISTINCT FROM %s AND code_version = %s"
           " AND spec_sha256 = %s AND mlflow_model_name = %s AND mlflow_version IS NOT NULL")


def _recipe_params(candidate: ModelVersion) -> tuple[object, ...]:
    return (candidate.tenant_id, candidate.kind, candidate.cohort_id, candidate.code_version, candidate.spec_sha256,
            candidate.mlflow_model_name, candidate.mlflow_version)


def challenger_lineage(conn: Conn, candidate: ModelVersion) -> list[str]:
    """The MLflow refs (``"<model>/<version>"``) of ``candidate``'s recipe, oldest first, ending with it.

    A recipe is one registered model, kind, cohort, code version and model spec: its versions are
    refits of the same training procedure on a growing window of seasons. Paired evidence against a
    champion is pooled over the lineage (RET-10), so evidence keeps accumulating when a refit
    supersedes the previous challenger instead of starting again from nothing.
    """
    rows = conn.execute(
        f"SELECT DISTINCT mlflow_model_name, mlflow_version FROM model_versions WHERE {_RECIPE}"
        " AND mlflow_version <= %s ORDER BY mlflow_version", _recipe_params(candidate)).fetchall()
    refs = [f"{r['mlflow_model_name']}/{r['mlflow_version']}" for r in rows]
    return refs if candidate.mlflow_ref in refs else [*refs, candidate.mlflow_ref]


def lineage_fits(conn: Conn, candidate: ModelVersion) -> dict[str, ModelVersion]:
    """Season → the tenant's older, registered refit of ``candidate``'s recipe trained for that season (the
    recipe as :func:`challenger_lineage` defines it; FAILED versions left out; the newest per season)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM model_versions WHERE {_RECIPE} AND mlflow_version < %s AND state <> 'FAILED'"
        " ORDER BY model_id", _recipe_params(candidate)).fetchall()
    fits = [_row(r) for r in rows]
    return {m.season_id: m for m in fits if m is not None}


def get_model(conn: Conn, model_id: int) -> ModelVersion:
    """The model version ``model_id``.

    Raises:
        LookupError: no such model version.
    """
    row = _row(conn.execute(f"SELECT {_COLUMNS} FROM model_versions WHERE model_id = %s", (model_id,)).fetchone())
    if row is None:
        raise LookupError(f"model version {model_id} not found in the ledger")
    return row


def latest_model_for_partition(conn: Conn, tenant: str, season: str) -> ModelVersion | None:
    """The most recently created non-FAILED candidate (not a naive baseline) trained for (tenant, season)."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM model_versions WHERE tenant_id = %s AND season_id = %s AND state <> 'FAILED'"
        " AND kind <> 'naive' ORDER BY model_id DESC LIMIT 1",
        (tenant, season),
    ).fetchone()
    return _row(row)


def get_champion(conn: Conn, tenant: str) -> ModelVersion | None:
    """The tenant's current champion, if any."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM model_versions WHERE tenant_id = %s AND state = 'CHAMPION'", (tenant,)
    ).fetchone()
    return _row(row)


def create_draft(conn: Conn, tenant: str, season: str, snapshot_root: str, code_version: str, spec_sha256: str,
                 device: str, run_id: str, *, kind: str = "tenant", cohort_id: str | None = None,
                 lineage: dict | None = None) -> ModelVersion:
    """Insert a DRAFT model version for the given inputs (audited as ``lifecycle.create``).

    ``kind`` is ``tenant`` (trained on the tenant's snapshot), ``cohort`` (pooled over a cohort;
    ``snapshot_root`` is then the lineage root and ``lineage`` lists every member's snapshot root) or
    ``naive`` (the REG-10 baseline).
    """
    conn.execute("SELECT set_config('rai.reason', %s, true)", (f"created by Dagster run {run_id}",))
    row = conn.execute(
        "INSERT INTO model_versions (tenant_id, season_id, snapshot_root, code_version, spec_sha256, device,"
        f" dagster_run_id, kind, cohort_id, lineage) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        f" RETURNING {_COLUMNS}",
        (tenant, season, snapshot_root, code_version, spec_sha256, device, run_id, kind, cohort_id,
         Jsonb(lineage) if lineage is not None else None),
    ).fetchone()
    model = _row(row)
    assert model is not None
    return model


def transition(conn: Conn, model: ModelVersion, target: ModelState, *, reason: str, actor: str | None = None,
               run_id: str = "", **fields: object) -> ModelVersion:
    """Move ``model`` to ``target``, checking the FSM and the version it was read at (REG-3, REG-4).

    The database checks the same FSM, the promotion guards and the version again, and appends the
    transition to the hash-chained audit log with ``reason``, the actor and the trace id (GOV-3).
    ``fields`` sets other columns in the same UPDATE (e.g. ``mlflow_version``, ``validation_mae``).

    Raises:
        IllegalTransitionError: the FSM forbids ``model.state → target`` (checked before the database).
        ConcurrentTransitionError: the row changed since ``model`` was read.
        LedgerRefusal: the database refused (a guard, a role or immutability).
    """
    check_transition(model.state, target)
    allowed = {"mlflow_model_name", "mlflow_version", "mlflow_run_id", "validation_mae", "failure_reason",
               "training_seconds", "device"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"cannot set columns {sorted(unknown)} in a transition")
    sets = "".join(f", {name} = %s" for name in fields)
    note = f"{reason} (Dagster run {run_id})" if run_id else reason
    try:
        with conn.transaction():
            conn.execute("SELECT set_config('rai.reason', %s, true)", (note,))
            if actor is not None:
                conn.execute("SELECT set_config('rai.actor', %s, true)", (actor,))
            row = conn.execute(
                f"UPDATE model_versions SET state = %s, state_version = state_version + 1{sets}"
                f" WHERE model_id = %s AND state_version = %s RETURNING {_COLUMNS}",
                (target.value, *fields.values(), model.model_id, model.state_version),
            ).fetchone()
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name == "model_versions_one_champion":
            raise ConcurrentTransitionError(
                f"another model of tenant {model.tenant_id!r} became champion concurrently; re-read and retry"
            ) from exc
        raise
    except psycopg.Error as exc:
        raise translate(exc) from exc
    if row is None:
        raise ConcurrentTransitionError(
            f"model version {model.model_id} changed since it was read at state_version {model.state_version}; "
            "re-read it and retry the transition"
        )
    new = _row(row)
    assert new is not None
    return new


def supersede_live_challengers(conn: Conn, by: ModelVersion, *, reason: str, run_id: str = "",
                               only_refs: Collection[str] | None = None) -> list[ModelVersion]:
    """Deprecate ``by``'s tenant's SHADOW and CANARY versions other than ``by`` (only those whose MLflow ref is
    in ``only_refs``, when given): a newer candidate supersedes them before their evidence decided.

    Returns the deprecated versions. Raises as :func:`transition`.
    """
    rows = conn.execute("SELECT model_id FROM model_versions WHERE tenant_id = %s AND state IN ('SHADOW', 'CANARY')"
                        " AND model_id <> %s ORDER BY model_id", (by.tenant_id, by.model_id)).fetchall()
    done = []
    for row in rows:
        older = get_model(conn, int(row["model_id"]))
        if only_refs is None or older.mlflow_ref in only_refs:
            done.append(transition(conn, older, ModelState.DEPRECATED, reason=reason, run_id=run_id))
    return done


def promote_bootstrap_champion(conn: Conn, model: ModelVersion, *, reason: str, run_id: str = "") -> ModelVersion:
    """VALIDATED → CHAMPION for a tenant's first champion (nothing to compare against).

    Raises:
        ChampionExistsError: the tenant already has a champion.
        IllegalTransitionError / ConcurrentTransitionError: as :func:`transition`.
    """
    conn.execute("SELECT rai_tenant_xact_lock('champion', %s)", (model.tenant_id,))  # unforgeable key (0008)
    current = get_champion(conn, model.tenant_id)
    if current is not None:
        raise ChampionExistsError(
            f"tenant {model.tenant_id!r} already has champion model {current.model_id}; "
            "bootstrap promotion only applies to a tenant's first champion"
        )
    return transition(conn, model, ModelState.CHAMPION, reason=f"bootstrap promotion: {reason}", run_id=run_id)


def state_history(conn: Conn, model_id: int) -> list[tuple[str | None, str, str]]:
    """(from, to, reason) of every lifecycle event of ``model_id`` in the audit log, oldest first."""
    rows = conn.execute(
        "SELECT before->>'state' AS from_state, after->>'state' AS to_state, reason FROM audit_log"
        " WHERE model_id = %s AND action LIKE 'lifecycle.%%' ORDER BY seq",
        (model_id,),
    ).fetchall()
    return [(r["from_state"], r["to_state"], r["reason"]) for r in rows]


def record_validation_mae(conn: Conn, model_id: int, mae: float) -> None:
    """Set the held-out MAE (kg/ha) a model was validated with; set once, never changed."""
    conn.execute(
        "UPDATE model_versions SET validation_mae = %s WHERE model_id = %s AND validation_mae IS NULL",
        (mae, model_id),
    )


def drift_baseline(conn: Conn, tenant: str) -> ModelVersion | None:
    """The model whose training snapshot an admin made the tenant's drift reference (latest reset), if any."""
    row = conn.execute(
        f"SELECT {', '.join('m.' + c.strip() for c in _COLUMNS.split(','))} FROM drift_baselines b"
        " JOIN model_versions m USING (model_id) WHERE b.tenant_id = %s ORDER BY b.baseline_id DESC LIMIT 1",
        (tenant,),
    ).fetchone()
    return _row(row)
