"""``rai-assets integrity verify``: the stored objects and MLflow against the ledger (GOV-7, GOV-6, REG-5).

For one tenant, every object the ledger relies on is read back and checked against what the
ledger recorded:

* **snapshots** (``dataset_snapshots``): the Parquet object exists under its content-addressed key
  and holds the recorded number of rows (SNAP-1, SNAP-2);
* **bias audits / drift reports**: the stored signed document's digest and Ed25519 signature
  verify, and digest, signature and signer equal the ledger row's — and the signer is the
  platform key (DRIFT-3, GOV-5);
* **evaluations** (``model_evaluations``): the body still hashes to the recorded digest;
* **MLflow**: every version the ledger names exists; the project's tags (``snapshot_root`` /
  ``lineage_root``, ``code_version``, ``spec_sha256``, ``ledger_model_id``) equal the ledger's; the
  champion alias points where the ledger's champion is; no version of the tenant's registered
  model is unknown to the ledger; the canary / shadow aliases and the ledger tags (``ledger_state``,
  ``ledger_audit_seq``, ``ledger_audit_entry_sha256``, ``validation_mae``) are what
  :func:`rai_assets.adapters.lifecycle_mirror.expected_mirror` derives from the ledger (``governance
  reconcile`` writes them);
* **the audit chain** (:func:`rai_assets.adapters.ledger.audit.verify_chain`) and its signed
  checkpoints (:mod:`rai_assets.governance.checkpoints`): a cut tail is found.

Every checked object is recorded in ``integrity_checks`` and the run's outcome is appended to the
tenant's audit chain (``integrity.verify``); every mismatch counts in
``rai_integrity_failures_total{check=…}``. When all is well the chain head is checkpointed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from rai_assets.adapters import metrics
from rai_assets.adapters.ledger import artifacts, audit
from rai_assets.adapters.ledger.resource import Conn, LedgerResource
from rai_assets.adapters.lifecycle_mirror import verified_differences
from rai_assets.adapters.object_store import ObjectStoreResource, tenant_key
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.domain.canonical import canonical_json, sha256_hex
from rai_assets.domain.signing import SignatureError
from rai_assets.domain.signing_envelope import verify_document
from rai_assets.governance import checkpoints


@dataclass(frozen=True)
class Mismatch:
    """One disagreement between the ledger and a store: what was checked, where, and how it differs."""

    kind: str  # snapshot | bias_audit | drift_report | evaluation | mlflow | audit_chain
    subject: str  # object key, MLflow ref, or audit seq
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} {self.subject}: {self.detail}"


@dataclass
class IntegrityReport:
    """Outcome of verifying one tenant."""

    tenant: str
    checked: dict[str, int] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)
    checkpoint_seq: int | None = None

    @property
    def ok(self) -> bool:
        """True when nothing disagreed."""
        return not self.mismatches

    def summary(self) -> str:
        """One line: what was checked and how many mismatches."""
        counts = ", ".join(f"{n} {k}" for k, n in sorted(self.checked.items()))
        return f"{self.tenant}: checked {counts or 'nothing'}; {len(self.mismatches)} mismatch(es)"


def ledger_tenants(ledger: LedgerResource) -> list[str]:
    """Every tenant of the ledger (read as the owner; RLS hides them from the app role), or, without an
    owner URL, the Dagster instance's tenant partitions."""
    try:
        with ledger.connect_owner() as conn:
            return [str(r["tenant_id"]) for r in conn.execute("SELECT tenant_id FROM tenants ORDER BY tenant_id")]
    except RuntimeError:
        from rai_assets.serving.export import known_tenants

        return known_tenants()


def verify_signed_object(store: ObjectStoreResource, row: dict[str, Any], platform_key: str | None) -> str | None:
    """Check the stored signed document at ``row['object_key']`` against the ledger row.

    Returns:
        None when it verifies, else a sentence saying what differs.
    """
    try:
        data = store.get_bytes(row["object_key"])
    except LookupError:
        return "the stored object is missing"
    try:
        doc = verify_document(data, row["signer_public_key"])
    except (SignatureError, ValueError, KeyError, TypeError) as exc:
        return f"the stored object does not verify ({exc})"
    if doc.body_sha256 != row["body_sha256"]:
        return f"the stored object's digest {doc.body_sha256} differs from the ledger's {row['body_sha256']}"
    if doc.signature != row["signature"]:
        return "the stored object's signature differs from the ledger's"
    if platform_key is not None and row["signer_public_key"] != platform_key:
        return "signed by a key that is not the platform's signing key"
    return None


def verify_snapshot_object(store: ObjectStoreResource, tenant: str, row: dict[str, Any]) -> str | None:
    """Check a snapshot's stored Parquet object: at its content-addressed key, readable, recorded row count."""
    import pandas as pd

    expected_key = tenant_key(tenant, "snapshots", row["season_id"], f"{row['merkle_root']}.parquet")
    if row["object_key"] != expected_key:
        return f"recorded under {row['object_key']}, not its content-addressed key {expected_key}"
    try:
        frame = pd.read_parquet(io.BytesIO(store.get_bytes(row["object_key"])), engine="pyarrow")
    except LookupError:
        return "the stored object is missing"
    except Exception as exc:  # any unreadable Parquet is a mismatch to report
        return f"the stored object is not a readable snapshot ({type(exc).__name__}: {exc})"
    if len(frame) != int(row["row_count"]):
        return f"the stored object holds {len(frame)} rows; the ledger recorded {row['row_count']}"
    return None


def _mlflow_version(client: Any, name: str, version: int) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version))
    except MlflowException:
        return None


def verify_mlflow(conn: Conn, registry: MlflowRegistryResource, tenant: str) -> tuple[int, list[Mismatch]]:
    """Compare MLflow with the ledger for ``tenant``: versions exist, tags match, champion alias follows.

    Returns:
        (number of MLflow objects checked, mismatches).
    """
    rows = conn.execute(
        "SELECT model_id, kind, state, snapshot_root, code_version, spec_sha256, mlflow_model_name, mlflow_version,"
        " lineage->>'lineage_root' AS lineage_root, artifacts_deleted_at FROM model_versions"
        " WHERE tenant_id = %s AND mlflow_version IS NOT NULL ORDER BY model_id",
        (tenant,),
    ).fetchall()
    client = registry.client()
    mismatches: list[Mismatch] = []
    checked = 0
    champion: tuple[str, int] | None = None
    names: set[str] = {registry.model_name(tenant)}
    for r in rows:
        name, version = str(r["mlflow_model_name"]), int(r["mlflow_version"])
        names.add(name)
        ref = f"{name}/{version}"
        if r["state"] == "CHAMPION":
            champion = (name, version)
        if r["artifacts_deleted_at"] is not None:
            continue  # retention collected it (REG-7)
        checked += 1
        mv = _mlflow_version(client, name, version)
        if mv is None:
            mismatches.append(Mismatch("mlflow", ref, f"ledger model {r['model_id']} ({r['state']}) names this "
                                                      "version, but MLflow has no such version (deleted)"))
            continue
        tags = dict(mv.tags or {})
        wanted: dict[str, str] = {"code_version": str(r["code_version"]), "spec_sha256": str(r["spec_sha256"])}
        required: set[str] = set()
        if r["kind"] == "tenant":
            wanted["snapshot_root"] = str(r["snapshot_root"])
            required.add("snapshot_root")
        elif r["kind"] == "cohort" and r["lineage_root"]:
            wanted["lineage_root"] = str(r["lineage_root"])
            required.add("lineage_root")
        if r["kind"] == "tenant" and "ledger_model_id" in tags:
            wanted["ledger_model_id"] = str(r["model_id"])
        for tag, value in wanted.items():
            if tag not in tags:
                if tag in required:
                    mismatches.append(Mismatch("mlflow", ref, f"tag {tag} is missing; the ledger has {value}"))
            elif tags[tag] != value:
                mismatches.append(Mismatch("mlflow", ref, f"tag {tag} is {tags[tag]!r}; the ledger has {value!r}"))
    known = {(str(r["mlflow_model_name"]), int(r["mlflow_version"])) for r in rows}
    own = registry.model_name(tenant)
    from mlflow.exceptions import MlflowException

    try:
        registered = client.search_model_versions(f"name = '{own}'")
    except MlflowException:
        registered = []
    for mv in registered:
        checked += 1
        if (own, int(mv.version)) not in known:
            mismatches.append(Mismatch("mlflow", f"{own}/{mv.version}", "MLflow has this version; the ledger "
                                                                         "does not know it"))
    for name in sorted(names):
        checked += 1
        actual = registry.champion_version(tenant, name)
        expected = champion[1] if champion is not None and champion[0] == name else None
        if actual != expected:
            alias = registry.champion_alias(tenant, name)
            where = f"v{expected}" if expected else "elsewhere or none"
            mismatches.append(Mismatch("mlflow", f"{name}@{alias}",
                                       f"alias points at v{actual}; the ledger's champion is {where}"))
    for diff in verified_differences(conn, registry, tenant):  # the lifecycle mirror's own mapping
        checked += 1
        if diff.what == "alias":
            should = f"v{diff.version}" if diff.version is not None else "no version (nobody is in that stage)"
            actual_at = f"v{diff.actual}" if diff.actual else "nothing (the alias is missing)"
            mismatches.append(Mismatch("mlflow", f"{diff.name}@{diff.key}",
                                       f"alias points at {actual_at}; the ledger says {should}"))
        else:
            mismatches.append(Mismatch("mlflow", f"{diff.name}/{diff.version}",
                                       f"tag {diff.key} is {diff.actual!r}; the ledger has {diff.wanted!r}"))
    return checked, mismatches


def verify_tenant(ledger: LedgerResource, store: ObjectStoreResource, registry: MlflowRegistryResource,
                  platform_key: str, signing_key: Any | None, tenant: str, *, record: bool = True) -> IntegrityReport:
    """Verify everything stored for ``tenant`` against its ledger (see the module docstring).

    Args:
        platform_key: the platform's Ed25519 public key (URL-safe base64): signed reports and
            checkpoints must carry it.
        signing_key: the platform :class:`~rai_assets.domain.signing.KeyPair` to checkpoint the chain
            head with after a clean run (None: do not checkpoint).
        record: record each check in ``integrity_checks`` and the outcome in the audit chain.
    """
    report = IntegrityReport(tenant)
    recorded: list[tuple[str, str, str, bool, str]] = []  # kind, sha256, key, verified, detail

    def note(kind: str, record_kind: str, sha: str, key: str, problem: str | None) -> None:
        report.checked[kind] = report.checked.get(kind, 0) + 1
        if problem is not None:
            report.mismatches.append(Mismatch(kind, key, problem))
        recorded.append((record_kind, sha, key, problem is None,
                         problem or f"integrity verify: {kind} matches the ledger"))

    with ledger.connect(tenant) as conn:
        for row in conn.execute("SELECT season_id, merkle_root, object_key, row_count FROM dataset_snapshots"
                                " WHERE tenant_id = %s ORDER BY created_at", (tenant,)).fetchall():
            note("snapshot", "snapshot", row["merkle_root"], row["object_key"],
                 verify_snapshot_object(store, tenant, row))
        for table, kind in (("bias_audits", "bias_audit"), ("drift_reports", "drift_report")):
            for row in conn.execute(f"SELECT object_key, body_sha256, signature, signer_public_key FROM {table}"
                                    " WHERE tenant_id = %s ORDER BY created_at", (tenant,)).fetchall():
                note(kind, kind, row["body_sha256"], row["object_key"], verify_signed_object(store, row, platform_key))
        for row in conn.execute("SELECT season_id, model_id, body, body_sha256 FROM model_evaluations"
                                " WHERE tenant_id = %s ORDER BY created_at", (tenant,)).fetchall():
            digest = sha256_hex(canonical_json(row["body"]))
            problem = None if digest == row["body_sha256"] else (
                f"the recorded body hashes to {digest}, not the recorded {row['body_sha256']}")
            note("evaluation", "model", row["body_sha256"], f"evaluation/{row['season_id']}/model-{row['model_id']}",
                 problem)
        n_mlflow, mlflow_mismatches = verify_mlflow(conn, registry, tenant)
        report.checked["mlflow"] = n_mlflow
        report.mismatches.extend(mlflow_mismatches)
        for m in mlflow_mismatches:
            recorded.append(("model", sha256_hex(m.subject.encode()), m.subject, False, m.detail))
        chain = audit.verify_chain(conn, tenant)
        report.checked["audit entries"] = chain.entries
        report.mismatches.extend(Mismatch("audit_chain", "audit_log", p) for p in chain.problems)
        latest, anchor_problems = checkpoints.verify_against_checkpoints(conn, store, platform_key, tenant)
        report.checkpoint_seq = latest.seq if latest else None
        report.mismatches.extend(Mismatch("audit_chain", "checkpoint", p) for p in anchor_problems)
        if anchor_problems:
            metrics.integrity_failures.labels(tenant=tenant, check="audit_checkpoint").inc()
        for m in report.mismatches:
            if m.kind not in ("audit_chain",):
                metrics.integrity_failures.labels(tenant=tenant, check=m.kind).inc()
        if record:
            for kind, sha, key, verified, detail in recorded:
                artifacts.record_integrity_check(conn, tenant=tenant, kind=kind, sha256=sha, object_key=key,
                                                 verified=verified, detail=detail)
            audit.append(conn, tenant=tenant, action="integrity.verify", actor="rai-assets integrity verify",
                         reason="scheduled integrity verification" if report.ok else "integrity mismatches found",
                         after={"ok": report.ok, "mismatches": len(report.mismatches),
                                "checked": report.checked, "first": [str(m) for m in report.mismatches[:5]]})
        if report.ok and signing_key is not None:
            written = checkpoints.write_checkpoint(conn, store, signing_key, tenant)
            report.checkpoint_seq = written.seq if written else report.checkpoint_seq
    return report


def verify_bias_audit_for_approval(conn: Conn, store: ObjectStoreResource, tenant: str, model_id: int,
                                   platform_key: str | None) -> str | None:
    """At the moment of an approval to SHADOW: does a passed bias audit of ``model_id`` still verify on
    its stored object? Returns None if one does, else why not (REG-5)."""
    rows = conn.execute(
        "SELECT object_key, body_sha256, signature, signer_public_key FROM bias_audits WHERE tenant_id = %s"
        " AND model_id = %s AND passed ORDER BY created_at DESC", (tenant, model_id)).fetchall()
    if not rows:
        return "no passed bias audit is recorded"
    problems = []
    for row in rows:
        problem = verify_signed_object(store, row, platform_key)
        if problem is None:
            return None
        problems.append(f"{row['object_key']}: {problem}")
    metrics.integrity_failures.labels(tenant=tenant, check="bias_audit").inc()
    return "; ".join(problems)


def verify_snapshot_for_action(conn: Conn, store: ObjectStoreResource, tenant: str, season: str,
                               merkle_root: str) -> str | None:
    """Does the snapshot a governance action relies on still match its stored object? None if so."""
    row = conn.execute("SELECT season_id, merkle_root, object_key, row_count FROM dataset_snapshots"
                       " WHERE tenant_id = %s AND season_id = %s AND merkle_root = %s",
                       (tenant, season, merkle_root)).fetchone()
    if row is None:
        return f"snapshot {merkle_root} of {season} is not recorded"
    problem = verify_snapshot_object(store, tenant, row)
    if problem is not None:
        metrics.integrity_failures.labels(tenant=tenant, check="snapshot").inc()
        return f"{row['object_key']}: {problem}"
    return None
