"""A real Prometheus and Pushgateway: a partition run pushes, a sensor tick is scraped, rules fire,
and the run's group is deleted after it ends. REQ: OBS-1, OBS-4, OBS-5."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from dagster import AssetKey, DagsterInstance

from rai_assets.adapters import metrics
from rai_assets.adapters.ledger import loop
from rai_assets.assets.common import spec_by_id
from rai_assets.definitions import build_definitions
from rai_assets.demo.runner import land_and_register
from rai_assets.loop import outcome_sensors
from rai_assets.loop.guard_check import check_retraining
from rai_assets.loop.jobs import INGESTION_JOB
from rai_assets.loop.landing_sensor import landing_zone_sensor
from rai_assets_tests.helpers import panel_slice
from rai_assets_tests.observability.prometheus_server import Stack, start_stack, wait_for
from rai_assets_tests.sensor_ticks import evaluate_sensor

# Labels a series may carry: its own (bounded) plus what the scrape adds. Never a run id or field id as a
# metric label; run_id/step only as the Pushgateway grouping key of a live run's group.
RUN_LABELS = {"__name__", "job", "instance", "run_id", "step", "tenant"}


@pytest.fixture
def stack(tmp_path, monkeypatch) -> Iterator[Stack]:
    for running in start_stack(tmp_path):
        monkeypatch.setenv(metrics.PUSHGATEWAY_ENV, running.pushgateway)
        monkeypatch.setenv(metrics.METRICS_PORT_ENV, str(running.metrics_port))
        yield running


def test_run_pushes_sensor_is_scraped_rules_fire_and_groups_are_deleted(stack, resources, suffix, tmp_path,
                                                                        monkeypatch):
    instance = DagsterInstance.ephemeral()
    panel = panel_slice(["langan"], seasons=2, suffix=suffix)
    tenants, seasons, _ = land_and_register(resources["ledger"], resources["object_store"], instance, panel,
                                            tmp_path / "keys", bad_uploads=True)  # a forged batch in s02
    tenant = tenants[0]

    # a sensor tick: this process now serves /metrics (long-lived), the tick is counted
    tick = evaluate_sensor(landing_zone_sensor, instance=instance, resources=resources)
    request = next(r for r in tick.run_requests if r.tags["rai/season"] == seasons[1])

    # a small partition run, as the sensor asked: it pushes to the Pushgateway under its run's group
    job = build_definitions(resources).resolve_job_def(INGESTION_JOB)
    result = job.execute_in_process(instance=instance, partition_key=request.partition_key, tags=request.tags,
                                    asset_selection=[AssetKey("learning_events")])
    assert result.success
    run_id = result.run_id
    assert [g["run_id"] for g in metrics.run_groups(stack.pushgateway)] == [run_id]

    pushed = wait_for("the pushed series in Prometheus",
                      lambda: stack.query(f'rai_dead_letters_new_total{{tenant="{tenant}", job="{metrics.PUSH_JOB}"}}'))
    (series,) = pushed
    assert set(series["metric"]) <= RUN_LABELS
    assert series["metric"]["job"] == metrics.PUSH_JOB and series["metric"]["step"] == "learning_events"
    assert float(series["value"][1]) > 0
    # (this test process also serves /metrics after the sensor tick; in production runs and sensors are
    # different processes, so only the pushed copy exists)
    events = stack.query(f'rai_ingested_events_total{{tenant="{tenant}", job="{metrics.PUSH_JOB}"}}')
    assert len(events) == 1 and float(events[0]["value"][1]) > 0
    integrity = stack.query(f'rai_integrity_failures_total{{tenant="{tenant}", job="{metrics.PUSH_JOB}"}}')
    assert {s["metric"]["check"] for s in integrity} == {"signature"}

    ticks = wait_for("the scraped sensor series", lambda: stack.query(
        'rai_sensor_ticks_total{sensor="landing_zone_sensor", outcome="ok", job="rai-code-server"}'))
    assert set(ticks[0]["metric"]) == {"__name__", "job", "instance", "sensor", "outcome"}

    # every series of the tenant has bounded labels only
    for s in stack.query(f'{{tenant="{tenant}", __name__=~"rai_.*"}}'):
        assert set(s["metric"]) <= RUN_LABELS | {"season", "check", "guard", "role", "model", "decision", "le"}

    def firing(name: str) -> list[dict]:
        return [a for a in stack.alerts() if a["labels"]["alertname"] == name and a["state"] == "firing"
                and a["labels"].get("tenant") == tenant]

    dead = wait_for("RaiDeadLettersAppeared to fire", lambda: firing("RaiDeadLettersAppeared"))
    assert dead[0]["labels"]["severity"] == "warning"
    mismatch = wait_for("RaiIntegrityMismatch to fire", lambda: firing("RaiIntegrityMismatch"))
    assert mismatch[0]["labels"]["check"] == "signature"

    # a long-lived process's gauge: three failed retraining runs, then the drift sensor's guard check
    # (what drift_sensor calls) opens the breaker; /metrics is scraped and RaiCircuitBreakerOpen fires
    with resources["ledger"].connect(tenant) as conn:
        for i in range(3):
            loop.record_retraining_run(conn, tenant=tenant, run_id=f"failed-{i}", season=seasons[1],
                                       trigger="drift", outcome="failed")
    _, decisions = check_retraining(resources["ledger"], tenant=tenant, season=seasons[1], report_sha256="a" * 64,
                                    report_body={"verdict": "drift", "assessment": None},
                                    spec=spec_by_id("rice-yield-v1"), now=datetime.now(UTC), active_retraining_runs=())
    assert not {d.guard: d for d in decisions}["circuit_breaker"].allowed
    breaker = wait_for("RaiCircuitBreakerOpen to fire", lambda: firing("RaiCircuitBreakerOpen"))
    assert breaker[0]["labels"]["severity"] == "critical"
    scraped = stack.query(f'rai_retrain_circuit_breaker_open{{tenant="{tenant}", job="rai-code-server"}}')
    assert [float(s["value"][1]) for s in scraped] == [1.0]
    # the season cadence the freshness alert compares with is recorded per tenant (its own calendar's;
    # here the platform default: one season ingested gives no gap yet)
    cadence = wait_for("the tenant's recorded season cadence",
                       lambda: stack.query(f'rai:season_cadence_seconds:max{{tenant="{tenant}"}}'))
    assert float(cadence[0]["value"][1]) > 0

    # the run ended: the GC sensor deletes its group (grace 0 here), other runs' groups would stay
    monkeypatch.setattr(outcome_sensors, "PUSH_GROUP_GRACE_S", 0.0)
    gc = evaluate_sensor(outcome_sensors.metrics_gc_sensor, instance=instance)
    assert "deleted 1 group" in gc.skip_reason.skip_message
    assert metrics.run_groups(stack.pushgateway) == []
