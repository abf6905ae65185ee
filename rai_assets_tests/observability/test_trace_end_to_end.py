"""One trace id from a landed file to the promotion: sensor tick → run tags → every step → ledger audit
rows → MLflow run and model version tags → JSON log lines. REQ: OBS-2, OBS-3."""

from __future__ import annotations

import json
from collections import Counter

from dagster import DagsterInstance

from rai_assets.adapters import metrics, tracing
from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.definitions import TENANT_SEASON_JOB, build_definitions
from rai_assets.demo.synthetic import SeasonShape
from rai_assets.loop.drift_sensor import drift_sensor
from rai_assets.loop.landing_sensor import landing_zone_sensor
from rai_assets_tests.loop.synthetic_tenant import land_synthetic_tenant
from rai_assets_tests.sensor_ticks import evaluate_sensor


def _instance(log_file) -> DagsterInstance:
    """An ephemeral instance whose Dagster logs also go, as JSON, to ``log_file`` (as dagster.yaml sets up)."""
    return DagsterInstance.ephemeral(settings={"python_logs": {"dagster_handler_config": {
        "handlers": {"rai_json": {"class": "logging.FileHandler", "filename": str(log_file), "formatter": "rai_json"}},
        "formatters": {"rai_json": {"()": "rai_assets.adapters.tracing.JsonFormatter"}},
    }}})


# every table a step of the tenant-season job writes (migration 0007), with how a row names its season
_SEASON_ROWS = {
    "learning_events": "season_id = %(season)s",
    "dead_letters": "season_id = %(season)s",  # the forged upload of the followed season
    "dataset_snapshots": "season_id = %(season)s",
    "season_profiles": "season_id = %(season)s",
    "model_versions": "season_id = %(season)s",
    "training_runs": "model_id IN (SELECT model_id FROM model_versions WHERE season_id = %(season)s)",
    "model_evaluations": "season_id = %(season)s",
    "bias_audits": "season_id = %(season)s",
    "drift_reports": "season_id = %(season)s",
    "yield_forecasts": "season_id = %(season)s",  # empty here: forecasting runs before the first champion
    "promotion_decisions": "season_id = %(season)s",
    "promotion_evidence": "season_id = %(season)s",  # empty here: a bootstrap promotion pairs no champion
    "integrity_checks": "artifact_sha256 IN (SELECT body_sha256 FROM bias_audits WHERE season_id = %(season)s)",
}
_EMPTY_BEFORE_A_CHAMPION = {"yield_forecasts", "promotion_evidence"}  # (test_end_to_end covers their rows)
# written by the job too, but not necessarily for every tenant-season: when present, they carry a run's trace
_OTHER_ROWS = ("retraining_runs", "guard_decisions", "drift_baselines", "breaker_resets", "bootstrap_overrides")


def _assert_ledger_rows_carry(ledger, tenant: str, season: str, trace_id: str, run_traces: set[str]) -> None:
    """Every row the followed run's steps wrote carries its trace id; no row of the tenant lacks a run's."""
    with ledger.connect(tenant) as conn:
        for table, where in _SEASON_ROWS.items():
            found = conn.execute(f"SELECT trace_id, count(*) AS n FROM {table} WHERE tenant_id = %(tenant)s"
                                 f" AND {where} GROUP BY trace_id", {"tenant": tenant, "season": season}).fetchall()
            expected = set() if table in _EMPTY_BEFORE_A_CHAMPION else {trace_id}
            assert {r["trace_id"] for r in found} == expected, (table, found)
        for table in (*_SEASON_ROWS, *_OTHER_ROWS):
            found = conn.execute(f"SELECT DISTINCT trace_id FROM {table} WHERE tenant_id = %s", (tenant,)).fetchall()
            assert {r["trace_id"] for r in found} <= run_traces, (table, found)


def test_one_trace_id_from_landing_file_to_promotion(resources, suffix, tmp_path):
    log_file = tmp_path / "dagster.jsonl"
    instance = _instance(log_file)
    tenant = f"trace-{suffix}"
    seasons = land_synthetic_tenant(resources, instance, tenant, [SeasonShape(), SeasonShape()], n_fields=400,
                                    keys_dir=tmp_path / "keys", bad_uploads=True)

    tick = evaluate_sensor(landing_zone_sensor, instance=instance, resources=resources)
    requests = {r.tags["rai/season"]: r for r in tick.run_requests}
    traces = {s: r.tags[tracing.TRACE_ID_TAG] for s, r in requests.items()}
    assert len(set(traces.values())) == len(seasons), "each landed tenant-season starts its own trace"
    assert all(len(t) == 32 and t != "0" * 32 for t in traces.values())
    for season, request in requests.items():
        assert request.tags[tracing.TRACEPARENT_TAG].split("-")[1] == traces[season]

    job = build_definitions(resources).resolve_job_def(TENANT_SEASON_JOB)
    runs = {}
    for season in seasons:  # what the run launcher does with the sensor's requests (tags included)
        result = job.execute_in_process(instance=instance, partition_key=requests[season].partition_key,
                                        tags=requests[season].tags)
        assert result.success
        runs[season] = result.run_id
    season, trace_id = seasons[1], traces[seasons[1]]

    ledger = resources["ledger"]
    with ledger.connect(tenant) as conn:
        model = conn.execute("SELECT model_id, mlflow_version, mlflow_run_id, state FROM model_versions"
                             " WHERE tenant_id = %s AND season_id = %s", (tenant, season)).fetchone()
        rows = conn.execute("SELECT action, after->>'state' AS state, trace_id FROM audit_log"
                            " WHERE tenant_id = %s AND model_id = %s ORDER BY seq",
                            (tenant, model["model_id"])).fetchall()
    assert model["state"] == "CHAMPION", "the synthetic tenant's first candidate beats the naive baseline"
    assert [r["state"] for r in rows][-1] == "CHAMPION"
    assert {r["trace_id"] for r in rows} == {trace_id}, rows  # every audit row the steps wrote
    _assert_ledger_rows_carry(ledger, tenant, season, trace_id, set(traces.values()))

    registry: MlflowRegistryResource = resources["mlflow_registry"]
    client = registry.client()
    version = client.get_model_version(registry.model_name(tenant), str(model["mlflow_version"]))
    assert version.tags["trace_id"] == trace_id
    assert version.tags["champion_trace_id"] == trace_id  # the promotion
    assert client.get_run(model["mlflow_run_id"]).data.tags["trace_id"] == trace_id
    evaluation_runs = client.search_runs([registry.experiment_id(tenant)],
                                         filter_string=f"tags.trace_id = '{trace_id}'")
    assert len(evaluation_runs) >= 2  # the training run and the evaluation run

    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    of_run = [line for line in lines if line["run_id"] == runs[season]]
    assert of_run, "the run's Dagster log lines are JSON"
    assert {line["trace_id"] for line in of_run} == {trace_id}
    assert {line["tenant"] for line in of_run} == {tenant} and {line["season"] for line in of_run} == {season}
    assert all({"timestamp", "level", "message"} <= set(line) for line in of_run)

    # model_promotion's naive floor (REG-10) feeds MAE vs naive and the served-below-naive gauge (OBS-1)
    assert metrics.REGISTRY.get_sample_value("rai_forecast_mae_kg_ha", {"tenant": tenant, "model": "naive"}) > 0
    assert metrics.REGISTRY.get_sample_value("rai_forecast_mae_kg_ha", {"tenant": tenant, "model": "served"}) > 0
    assert metrics.REGISTRY.get_sample_value("rai_served_below_naive", {"tenant": tenant}) == 0
    assert metrics.REGISTRY.get_sample_value("rai_promotion_decisions_total",
                                             {"tenant": tenant, "decision": "bootstrap"}) == 1

    # the drift sensor reads the reports inside the trace of the run that wrote them (guards, PSI gauges)
    evaluate_sensor(drift_sensor, instance=instance, resources=resources)
    with ledger.connect(tenant) as conn:
        guards = conn.execute("SELECT season_id, trace_id FROM guard_decisions WHERE tenant_id = %s",
                              (tenant,)).fetchall()
    assert guards and {g["trace_id"] for g in guards} <= set(traces.values()), guards
    # cardinality (README): the series this tenant has after two seasons through the whole graph and the sensors
    series = metrics.series_of_tenant(tenant)
    by_metric = Counter(sample.name for family in metrics.REGISTRY.collect() for sample in family.samples
                        if sample.labels.get("tenant") == tenant)
    print(f"series of tenant {tenant}: {series} (bound {metrics.MAX_SERIES_PER_TENANT}): {sorted(by_metric.items())}")
    assert 0 < series <= metrics.MAX_SERIES_PER_TENANT
