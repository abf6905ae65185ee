"""Shared builders for the database-level ledger tests (real embedded Postgres, no mocks).

The tests here talk to the governance ledger the way the product does — as ``rai_app`` (or the
manager / admin / agronomist roles) through :class:`LedgerResource` — and use the schema owner
(the embedded server's superuser) only to arrange rows that the guards would otherwise refuse
(``session_replication_role = replica`` disables triggers for that transaction) or to look behind
row-level security.

Also home of :func:`race_worker`, the child-process body of the promotion race (REG-4): it lives
in an importable module so that the ``spawn`` start method can find it.
"""

from __future__ import annotations

import hashlib
import os
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from rai_assets.adapters.ledger import models
from rai_assets.adapters.ledger.embedded import LEDGER_DATABASE
from rai_assets.adapters.ledger.models import ModelVersion
from rai_assets.adapters.ledger.resource import Conn, LedgerResource
from rai_assets.adapters.ledger.tenants import register_season, register_tenant
from rai_assets.domain.canonical import canonical_json
from rai_assets.domain.lifecycle import ModelState
from rai_assets.domain.signing import KeyPair
from rai_assets.domain.signing_envelope import SignedDocument, sign_document

SEASON = "s01"
ZERO_VECTOR = "[" + ",".join(["0"] * 64) + "]"
S = ModelState

# Every table that carries a tenant_id and is protected by the tenant_isolation policy (GOV-1).
TENANT_TABLES = (
    "tenants", "learning_events", "dead_letters", "dataset_snapshots", "model_versions", "model_evaluations",
    "bias_audits", "drift_reports", "yield_forecasts", "audit_log", "training_runs", "integrity_checks",
    "season_profiles", "drift_baselines", "promotion_decisions", "retraining_runs", "guard_decisions",
    "breaker_resets",
)

# The documented path of a model version from DRAFT to each state (SHADOW needs a bias audit first).
PATH_TO: dict[ModelState, tuple[ModelState, ...]] = {
    S.DRAFT: (),
    S.TRAINING: (S.TRAINING,),
    S.VALIDATED: (S.TRAINING, S.VALIDATED),
    S.SHADOW: (S.TRAINING, S.VALIDATED, S.SHADOW),
    S.CANARY: (S.TRAINING, S.VALIDATED, S.SHADOW, S.CANARY),
    S.FAILED: (S.FAILED,),
    S.QUARANTINED: (S.TRAINING, S.VALIDATED, S.QUARANTINED),
}


# ---------------------------------------------------------------- databases


def new_ledger_database(pg_server_url: str) -> LedgerResource:
    """A ledger on a brand-new database of the session's embedded server (as the ``ledger`` fixture)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    ledger = LedgerResource(owner_url=pg_server_url.replace(f"/{LEDGER_DATABASE}?", f"/{name}?"))
    with ledger.connect_owner():  # migrate now, so the first test does not pay for it
        pass
    return ledger


def drop_ledger_database(pg_server_url: str, ledger: LedgerResource) -> None:
    """Drop a database made by :func:`new_ledger_database` (best effort; the server is shared)."""
    name = ledger.owner_url.split("?", 1)[0].rsplit("/", 1)[-1]
    try:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    except psycopg.Error:
        pass


def open_conn(ledger: LedgerResource, tenant: str | None, *, role: str = "app", actor: str = "tester",
              trace_id: str = "") -> Conn:
    """A connection as ``role`` in ``tenant``'s context whose transaction the caller commits or rolls back.

    The same session settings as :meth:`LedgerResource.connect`, without its context manager, for
    tests that interleave two transactions.
    """
    conn = psycopg.connect(ledger.resolved_url(role), row_factory=dict_row)
    conn.execute(
        "SELECT set_config('rai.tenant_id', %s, true), set_config('rai.actor', %s, true),"
        " set_config('rai.trace_id', %s, true)",
        (tenant or "", actor, trace_id),
    )
    return conn


@contextmanager
def owner_replica(ledger: LedgerResource) -> Iterator[Conn]:
    """An owner transaction with triggers disabled (``SET LOCAL session_replication_role = replica``).

    Only for arranging states the FSM would refuse and for simulating tampering; it disables the
    foreign-key triggers too, so callers keep rows consistent themselves.
    """
    with ledger.connect_owner() as conn:
        conn.execute("SET LOCAL session_replication_role = replica")
        yield conn


# ---------------------------------------------------------------- rows


def sha(text: str) -> str:
    """A 64-hex SHA-256 of ``text`` (stand-in Merkle roots and digests)."""
    return hashlib.sha256(text.encode()).hexdigest()


def ensure_season(ledger: LedgerResource, season: str = SEASON, ordinal: int = 1, *, tenant: str | None = None
                  ) -> None:
    """Register ``season`` in ``tenant``'s calendar (its own session, through ``rai_register_season``), or —
    with no tenant — only in the global registry the foreign keys reference (an owner insert: tenant sessions
    cannot write it; the ordinal is moved past the latest when taken)."""
    if tenant is not None:
        with ledger.connect(tenant) as conn:
            register_season(conn, tenant, season, ordinal)
        return
    with ledger.connect_owner() as conn:
        conn.execute(
            "INSERT INTO seasons (season_id, ordinal) SELECT %s, CASE WHEN EXISTS (SELECT 1 FROM seasons"
            " WHERE ordinal = %s) THEN (SELECT max(ordinal) + 1 FROM seasons) ELSE %s END"
            " ON CONFLICT (season_id) DO NOTHING", (season, ordinal, ordinal))


def setup_tenant(ledger: LedgerResource, tenant: str, *, season: str = SEASON) -> str:
    """Register ``tenant`` and one dataset snapshot as the app role; returns the snapshot's root."""
    root = sha(f"snapshot|{tenant}|{season}")
    with ledger.connect(tenant) as conn:
        register_tenant(conn, tenant, KeyPair.generate().public_key_b64, "rice-yield-v1")
        register_season(conn, tenant, season)
        insert_snapshot(conn, tenant, root, season=season)
    return root


def insert_snapshot(conn: Conn, tenant: str, root: str, *, season: str = SEASON) -> None:
    """A plain INSERT of one dataset snapshot row (with a 64-d profile vector, SNAP-4)."""
    conn.execute(
        "INSERT INTO dataset_snapshots (tenant_id, season_id, merkle_root, object_key, row_count, source_seasons,"
        " validation_passed, validation_summary, profile) VALUES (%s, %s, %s, %s, 3, %s, true, %s, %s::vector)",
        (tenant, season, root, f"{tenant}/snapshots/{root}.parquet", [season], Jsonb({"ok": True}), ZERO_VECTOR),
    )


def new_draft(conn: Conn, tenant: str, root: str, *, season: str = SEASON, code_version: str | None = None
              ) -> ModelVersion:
    """A DRAFT model version (unique code version unless given) through :func:`models.create_draft`."""
    return models.create_draft(conn, tenant, season, root, code_version or f"code-{uuid.uuid4().hex[:10]}",
                               sha("spec"), "cpu", "run-draft")


def signed_doc(body: dict[str, Any]) -> SignedDocument:
    """``body`` signed by a fresh key."""
    return sign_document(body, KeyPair.generate())


def add_bias_audit(conn: Conn, tenant: str, model_id: int, *, passed: bool = True, verified: bool = True,
                   season: str = SEASON) -> str:
    """Record a signed bias audit of ``model_id`` and an integrity check of it; returns its digest (REG-5).

    Plain INSERTs (checked by the row-level policy), as the ``bias_audit`` asset's ledger writes.
    """
    doc = signed_doc({"model_id": model_id, "passed": passed, "nonce": uuid.uuid4().hex})
    key = f"{tenant}/bias/{doc.body_sha256}.json"
    conn.execute(
        "INSERT INTO bias_audits (tenant_id, season_id, model_id, body_sha256, signature, signer_public_key,"
        " object_key, passed, body) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (tenant, season, model_id, doc.body_sha256, doc.signature, doc.signer_public_key, key, passed,
         Jsonb(doc.body)),
    )
    conn.execute(
        "INSERT INTO integrity_checks (tenant_id, artifact_kind, artifact_sha256, object_key, verified, detail)"
        " VALUES (%s, 'bias_audit', %s, %s, %s, %s)",
        (tenant, doc.body_sha256, key, verified, "digest and signature checked" if verified else "bad signature"),
    )
    return doc.body_sha256


def add_drift_report(conn: Conn, tenant: str, model_id: int | None, *, season: str = SEASON) -> str:
    """Record a signed drift report; returns its digest (DRIFT-3)."""
    doc = signed_doc({"tenant": tenant, "verdict": "no_drift", "nonce": uuid.uuid4().hex})
    conn.execute(
        "INSERT INTO drift_reports (tenant_id, season_id, reference_model_id, body_sha256, signature,"
        " signer_public_key, object_key, verdict, max_psi, body) VALUES (%s, %s, %s, %s, %s, %s, %s, 'no_drift',"
        " 0.01, %s)",
        (tenant, season, model_id, doc.body_sha256, doc.signature, doc.signer_public_key,
         f"{tenant}/drift/{doc.body_sha256}.json", Jsonb(doc.body)),
    )
    return doc.body_sha256


def populate_tenant(ledger: LedgerResource, tenant: str, *, season: str = SEASON) -> dict[str, Any]:
    """Give ``tenant`` rows in every tenant-owned table (as the roles that write them); returns keys.

    Returns ``{"root", "model_id", "fields"}``: the snapshot root, a model version (TRAINING, with a
    set mlflow version, run id and validation MAE) and the learning events' field ids.
    """
    root = setup_tenant(ledger, tenant, season=season)
    fields = [f"{tenant}-f1", f"{tenant}-f2"]
    with ledger.connect(tenant, actor="populate", trace_id=f"trace-{tenant}") as conn:
        for field in fields:
            insert_learning_event(conn, tenant, field, season=season)
        conn.execute(
            "INSERT INTO dead_letters (tenant_id, season_id, source_file, line_no, reason, raw_payload, raw_bytes,"
            " raw_sha256) VALUES (%s, %s, %s, 7, 'bad signature', '{}', %s, %s)",
            (tenant, season, f"{tenant}/batch.jsonl", b"{}", sha("{}")),
        )
        model = new_draft(conn, tenant, root, season=season)
        model = models.transition(conn, model, S.TRAINING, reason="train", mlflow_version=3,
                                  mlflow_run_id=f"run-{tenant}", mlflow_model_name=f"rice-{tenant}")
        conn.execute("UPDATE model_versions SET validation_mae = 321.5 WHERE model_id = %s", (model.model_id,))
        add_bias_audit(conn, tenant, model.model_id, season=season)
        add_drift_report(conn, tenant, model.model_id, season=season)
        body = {"model_id": model.model_id, "mae": 321.5}
        conn.execute(
            "INSERT INTO model_evaluations (tenant_id, season_id, model_id, body, body_sha256)"
            " VALUES (%s, %s, %s, %s, %s)",
            (tenant, season, model.model_id, Jsonb(body), sha(repr(body))),
        )
        conn.execute(
            "INSERT INTO yield_forecasts (tenant_id, season_id, field_id, model_id, predicted_yield_kg_ha)"
            " VALUES (%s, %s, %s, %s, 4321.0)",
            (tenant, season, fields[0], model.model_id),
        )
        conn.execute(
            "INSERT INTO training_runs (tenant_id, model_id, dagster_run_id, device, started_at, finished_at, status)"
            " VALUES (%s, %s, 'run-train', 'cpu', now() - interval '1 minute', now(), 'succeeded')",
            (tenant, model.model_id),
        )
        conn.execute(
            "INSERT INTO season_profiles (tenant_id, season_id, n_events, profile) VALUES (%s, %s, 2, %s::vector)",
            (tenant, season, ZERO_VECTOR),
        )
        conn.execute(
            "INSERT INTO promotion_decisions (tenant_id, season_id, candidate_model_id, stage, decision, evidence)"
            " VALUES (%s, %s, %s, 'canary', 'continue', '{}')",
            (tenant, season, model.model_id),
        )
        conn.execute(
            "INSERT INTO retraining_runs (tenant_id, dagster_run_id, season_id, trigger, outcome)"
            " VALUES (%s, 'run-retrain', %s, 'drift', 'failed')",
            (tenant, season),
        )
        conn.execute(
            "INSERT INTO guard_decisions (tenant_id, season_id, guard, allowed, reason, detail)"
            " VALUES (%s, %s, 'cooldown', false, 'rolled back yesterday', '{}')",
            (tenant, season),
        )
    with ledger.connect(tenant, role="admin", actor="admin-user") as conn:
        conn.execute(
            "INSERT INTO drift_baselines (tenant_id, model_id, actor, reason) VALUES (%s, %s, 'admin-user', 'reset')",
            (tenant, model.model_id),
        )
        conn.execute(
            "INSERT INTO breaker_resets (tenant_id, actor, reason) VALUES (%s, 'admin-user', 'fixed the data')",
            (tenant,),
        )
    return {"root": root, "model_id": model.model_id, "fields": fields}


def walk(conn: Conn, model: ModelVersion, path: tuple[ModelState, ...], *, reason: str = "test walk",
         actor: str | None = None) -> ModelVersion:
    """Apply the legal transitions of ``path`` in order (adds a passing bias audit before SHADOW)."""
    for target in path:
        if target is S.SHADOW:
            add_bias_audit(conn, model.tenant_id, model.model_id)
        model = models.transition(conn, model, target, reason=reason, actor=actor)
    return model


def bootstrap(conn: Conn, model: ModelVersion, *, reason: str = "first model") -> ModelVersion:
    """A tenant's first champion as the pipeline makes it: a passed, verified bias audit of ``model``
    and then :func:`models.promote_bootstrap_champion` (the database refuses it otherwise, REG-5)."""
    add_bias_audit(conn, model.tenant_id, model.model_id)
    return models.promote_bootstrap_champion(conn, model, reason=reason)


def insert_model_in_state(conn: Conn, tenant: str, root: str, state: ModelState, *, state_version: int = 5,
                          season: str = SEASON) -> int:
    """Insert a model version directly in ``state`` (``conn`` must be :func:`owner_replica`); returns its id."""
    row = conn.execute(
        "INSERT INTO model_versions (tenant_id, season_id, snapshot_root, code_version, spec_sha256, state,"
        " state_version) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING model_id",
        (tenant, season, root, f"code-{uuid.uuid4().hex[:10]}", sha("spec"), state.value, state_version),
    ).fetchone()
    assert row is not None
    return int(row["model_id"])


def insert_learning_event(conn: Conn, tenant: str, field: str, *, season: str = SEASON) -> None:
    """A plain INSERT of one learning event (the row-level policy checks it)."""
    payload = canonical_json({"tenant_id": tenant, "season_id": season, "field_id": field, "yield": 4300.0})
    conn.execute(
        "INSERT INTO learning_events (tenant_id, season_id, field_id, payload, payload_sha256, source_file, line_no)"
        " VALUES (%s, %s, %s, %s::json, %s, %s, %s)",
        (tenant, season, field, payload.decode(), hashlib.sha256(payload).hexdigest(), f"{tenant}/batch.jsonl", 1),
    )


# ---------------------------------------------------------------- assertions


def assert_sqlstate(excinfo: pytest.ExceptionInfo[BaseException], sqlstate: str) -> None:
    """The raised database error (psycopg error or :class:`LedgerRefusal`) carries ``sqlstate``."""
    got = getattr(excinfo.value, "sqlstate", None)
    assert got == sqlstate, f"expected SQLSTATE {sqlstate}, got {got}: {excinfo.value!r}"


def audit_rows(conn: Conn, tenant: str) -> list[dict[str, Any]]:
    """The tenant's audit log in chain order."""
    return list(conn.execute("SELECT * FROM audit_log WHERE tenant_id = %s ORDER BY seq", (tenant,)).fetchall())


# ---------------------------------------------------------------- the promotion race (child process)


def race_worker(owner_url: str, tenant: str, model_id: int, barrier: Any, results: Any, hold_s: float) -> None:
    """Read ``model_id``, wait at ``barrier``, promote it CANARY → CHAMPION; report on ``results``.

    Runs in a spawned process with its own connection (the manager role, who approves promotions).
    A winner holds its transaction open ``hold_s`` seconds so that the other promotion meets its
    row lock. Puts ``(pid, outcome, read_version, detail)`` on ``results``.
    """
    pid = os.getpid()
    read_version = -1
    try:
        ledger = LedgerResource(owner_url=owner_url)
        with ledger.connect(tenant, role="manager", actor=f"racer-{pid}", trace_id=f"race-{pid}") as conn:
            conn.execute("SET LOCAL lock_timeout = '20s'")
            model = models.get_model(conn, model_id)
            read_version = model.state_version
            barrier.wait(timeout=60)
            try:
                models.transition(conn, model, S.CHAMPION, reason=f"canary won ({pid})")
            except models.ConcurrentTransitionError as exc:
                results.put((pid, "ConcurrentTransitionError", read_version, str(exc)))
                return
            time.sleep(hold_s)
        results.put((pid, "won", read_version, ""))
    except Exception as exc:  # reported to the parent, which fails the test with the detail
        results.put((pid, f"error:{type(exc).__name__}", read_version, traceback.format_exc()))
