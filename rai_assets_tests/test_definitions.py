"""The code location loads: one Definitions, the tenant × season graph, its job and blocking check."""

from __future__ import annotations

from dagster import AssetKey, DynamicPartitionsDefinition, MultiPartitionsDefinition

from rai_assets.definitions import TENANT_SEASON_JOB, defs

EXPECTED = {"learning_events", "dataset_snapshot", "trained_model", "serving_model", "model_evaluation", "bias_audit",
            "drift_report", "model_promotion", "yield_forecasts"}
JUDGING = {AssetKey(k) for k in ("model_evaluation", "bias_audit", "drift_report", "model_promotion")}


def test_definitions_load_with_the_partitioned_assets():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == EXPECTED
    for key in keys:
        partitions = graph.get(AssetKey(key)).partitions_def
        assert isinstance(partitions, MultiPartitionsDefinition)
        dims = {d.name: d.partitions_def for d in partitions.partitions_defs}
        assert set(dims) == {"tenant", "season"}
        assert all(isinstance(p, DynamicPartitionsDefinition) for p in dims.values())


def test_forecasts_are_made_before_any_candidate_is_judged_on_the_season():
    """RET-10 / REG-10 without look-ahead: a season's served forecasts come from the champion as it was
    before the season's labels judged anything, so model_promotion is downstream of yield_forecasts and
    yield_forecasts is not downstream of any judging asset: only of ingestion, the snapshot, the season's refit
    and serving_model (which decides on earlier seasons' evidence only)."""
    graph = defs.resolve_asset_graph()
    forecasts, promotion = AssetKey("yield_forecasts"), AssetKey("model_promotion")
    assert forecasts in graph.get(promotion).parent_keys
    upstream: set[AssetKey] = set()
    frontier = {forecasts}
    while frontier:
        key = frontier.pop()
        parents = set(graph.get(key).parent_keys) - upstream
        upstream |= parents
        frontier |= parents
    assert upstream == {AssetKey(k) for k in ("learning_events", "dataset_snapshot", "trained_model", "serving_model")}
    assert not upstream & JUDGING


def test_assets_link_their_source_code():
    """Every asset carries a code reference the UI opens (Dagster's `dagster/code_references`)."""
    for key in EXPECTED:
        metadata = defs.resolve_assets_def(key).specs_by_key[AssetKey(key)].metadata
        assert "dagster/code_references" in metadata, key


def test_job_covers_the_graph_and_the_snapshot_check_is_blocking():
    job = defs.resolve_job_def(TENANT_SEASON_JOB)
    assert {n.name for n in job.nodes} >= {"learning_events", "dataset_snapshot", "yield_forecasts"}
    checks = {c.asset_key.to_user_string(): c.name for c in defs.resolve_asset_graph().asset_check_keys}
    assert checks == {"dataset_snapshot": "snapshot_expectations", "bias_audit": "bias_audit_passed",
                      "drift_report": "drift_not_actionable", "model_evaluation": "candidate_beats_champion_and_naive",
                      "yield_forecasts": "forecasts_complete"}
    spec = next(iter(defs.resolve_assets_def("dataset_snapshot").check_specs))
    assert spec.blocking
    for asset in checks:  # every verdict check is partitioned like its asset (tenant × season)
        for check_spec in defs.resolve_assets_def(asset).check_specs:
            assert check_spec.partitions_def == defs.resolve_assets_def(asset).partitions_def


def test_governance_jobs_and_retention_schedule():
    names = {j.name for j in defs.resolve_all_job_defs()}
    assert {"tenant_season_job", "governance_job", "retention_job", "integrity_job"} <= names
    assert [s.name for s in defs.schedules] == ["retention_schedule", "integrity_schedule"]


def test_resources_are_the_four_adapters():
    assert set(defs.resources) == {"ledger", "object_store", "mlflow_registry", "signer"}


def test_assets_follow_dagster_conventions():
    """Issue 10 item 5: owners on every asset; the tables people query carry a column schema."""
    for key in EXPECTED:
        spec = defs.resolve_assets_def(key).specs_by_key[AssetKey(key)]
        assert list(spec.owners) == ["team:ml-platform"], key
        assert spec.kinds, key
    for key in ("learning_events", "yield_forecasts"):
        schema = defs.resolve_assets_def(key).specs_by_key[AssetKey(key)].metadata["dagster/column_schema"]
        assert "field_id" in {c.name for c in schema.columns}, key
