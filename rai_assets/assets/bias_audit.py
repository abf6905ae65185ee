"""Asset: the signed bias audit of the partition's candidate across the spec's farmer subgroups."""


import pandas as pd
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from rai_assets.adapters.ledger import artifacts
from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.adapters.signer import SignerResource
from rai_assets.assets.common import ASSET_GROUP, partition_context
from rai_assets.assets.model_evaluation import model_evaluation
from rai_assets.assets.model_io import model_predictions, season_frame
from rai_assets.assets.partitions import ONE_PARTITION_PER_RUN, tenant_season_partitions
from rai_assets.assets.signed_reports import read_back_and_verify, sign_and_store
from rai_assets.domain.bias import audit_bias, size_class
from rai_assets.domain.features import target_vector
from rai_assets.domain.model_spec import ModelSpec


def subgroup_frame(frame: pd.DataFrame, spec: ModelSpec) -> tuple[pd.DataFrame, dict[str, str]]:
    """Subgroup label columns of ``frame`` per the spec (numeric columns cut into classes)."""
    groups = pd.DataFrame(index=frame.index)
    for sg in spec.subgroups:
        if sg.edges is not None and sg.labels is not None:
            groups[sg.name] = size_class(frame[sg.column].to_numpy(dtype="float64"), sg.edges, sg.labels)
        else:
            groups[sg.name] = frame[sg.column].astype(str)
    return groups, {sg.name: sg.name for sg in spec.subgroups}


@asset(
    partitions_def=tenant_season_partitions,
    backfill_policy=ONE_PARTITION_PER_RUN,
    group_name=ASSET_GROUP,
    kinds={"fairlearn"},
    deps=[model_evaluation],
    description="fairlearn MetricFrame over the spec's subgroups (tenure, variety, BIMAS, farm-size class) on the "
    "held-out season: per-group n, MAE, signed residual, prediction vs actual; ratio and gap verdicts. Canonical "
    "JSON, SHA-256, Ed25519-signed; stored write-once and recorded in the ledger (REG-5 gate).",
)
def bias_audit(
    context: AssetExecutionContext,
    ledger: LedgerResource,
    object_store: ObjectStoreResource,
    mlflow_registry: MlflowRegistryResource,
    signer: SignerResource,
) -> MaterializeResult:
    """Audit the candidate's errors per subgroup; sign, store and record the audit."""
    part = partition_context(context, ledger)
    with ledger.connect(part.tenant) as conn:
        candidate = model_store.latest_model_for_partition(conn, part.tenant, part.season)
    if candidate is None:
        raise ValueError(f"no candidate for {part.tenant}/{part.season}; materialize trained_model first")
    holdout = season_frame(ledger, part.tenant, part.season, part.spec)
    groups, columns = subgroup_frame(holdout, part.spec)
    audit = audit_bias(target_vector(holdout, part.spec), model_predictions(mlflow_registry, candidate, holdout,
                                                                            part.spec),
                       groups, columns, part.spec.bias)
    body = {
        "kind": "bias_audit", "tenant": part.tenant, "season": part.season, "model_id": candidate.model_id,
        "mlflow_version": candidate.mlflow_version, "snapshot_root": candidate.snapshot_root,
        "spec": part.spec.spec_id, "spec_sha256": part.spec.sha256, "audit": audit.to_dict(),
    }
    doc, key = sign_and_store(object_store, signer, tenant=part.tenant, season=part.season, kind="bias-audits",
                              body=body)
    verified, detail = read_back_and_verify(object_store, signer, key, doc.body_sha256)
    with ledger.connect(part.tenant) as conn:
        artifacts.record_bias_audit(conn, tenant=part.tenant, season=part.season, model_id=candidate.model_id,
                                    doc=doc, object_key=key, passed=audit.passed, run_id=part.run_id)
        artifacts.record_integrity_check(conn, tenant=part.tenant, kind="bias_audit", sha256=doc.body_sha256,
                                         object_key=key, verified=verified, detail=detail)
    return MaterializeResult(
        metadata={
            "verdict": "pass" if audit.passed else "fail",
            "reasons": MetadataValue.md("\n".join(f"- {r}" for r in audit.reasons) or "none"),
            "per_group": MetadataValue.md(audit.markdown_table()),
            "sha256": doc.body_sha256,
            "signature": doc.signature,
            "object": MetadataValue.path(object_store.uri(key)),
            "model_id": candidate.model_id,
            "signature_verified": verified,
        }
    )
