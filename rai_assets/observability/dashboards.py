"""Grafana dashboards as code with Grafana's own SDK (``grafana-foundation-sdk``, a dev dependency) (OBS-4).

``make dashboards`` writes them to ``resources/observability/dashboards/``; the JSON is checked in and
a test fails when it differs from what this module generates. Never edit the JSON by hand.

* ``rai-fleet``: tenants by state, firing alerts, ingestion throughput, dead letters, training time.
* ``rai-tenant``: one tenant (variable ``tenant``): drift per season (heatmap), MAE vs naive and the
  naive floor (REG-10), promotion decisions and rollbacks, guard refusals.
* ``rai-slo``: the loop's SLOs (:data:`rai_assets.observability.slo.SLOS`) and its own health.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as gdash
from grafana_foundation_sdk.builders import heatmap, stat, table, timeseries
from grafana_foundation_sdk.builders.prometheus import Dataquery as PromQuery
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from rai_assets.observability.slo import SLOS

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS = ["rai-assets", "generated"]


def _q(expr: str, legend: str = "") -> PromQuery:
    query = PromQuery().expr(expr).datasource(DATASOURCE)
    return query.legend_format(legend) if legend else query


def _base(uid: str, title: str, description: str) -> gdash.Dashboard:
    return (
        gdash.Dashboard(title).uid(uid).description(description).tags(TAGS).refresh("1m").time("now-24h", "now")
        .timezone("utc").editable()
        .with_variable(gdash.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
    )


def _per_run(series: str, window: str, by: str = "") -> str:
    """A pushed counter over ``window``: per run the max over its step groups (each step of an in-process run
    pushes the run's whole registry), to be summed across runs."""
    keys = ", ".join(k for k in (by, "run_id") if k)
    return f"max by ({keys}) (max_over_time({series}[{window}]))"


def _ts(title: str, unit: str, *queries: PromQuery, width: int = 12) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).unit(unit).datasource(DATASOURCE).height(8).span(width)
    for query in queries:
        panel = panel.with_target(query)
    return panel


def _stat(title: str, query: PromQuery, unit: str = "none", width: int = 6) -> stat.Panel:
    return stat.Panel().title(title).unit(unit).datasource(DATASOURCE).height(4).span(width).with_target(query)


def fleet_overview() -> gdash.Dashboard:
    """Fleet overview: tenants by state, alerts, throughput."""
    return (
        _base("rai-fleet", "rai-assets / Fleet overview", "Every tenant at a glance: states, alerts, throughput.")
        .with_row(gdash.Row("Tenants by state"))
        .with_panel(_stat("Tenants ingesting (24 h)", _q(
            "count(time() - rai:ingestion_last_success:max < 86400)")))
        .with_panel(_stat("Tenants in cooldown", _q("count(max by (tenant) (rai_retrain_cooldown_active) == 1)")))
        .with_panel(_stat("Circuit breakers open", _q(
            "count(max by (tenant) (rai_retrain_circuit_breaker_open) == 1)")))
        .with_panel(_stat("Drift awaiting a candidate", _q("count(rai:drift_unacted_seconds)")))
        .with_panel(_stat("Served below the naive floor", _q("count(rai:served_below_naive:max == 1)")))
        .with_panel(_stat("Naive-floor fallbacks (24 h)", _q(
            f"sum({_per_run('rai_naive_floor_fallbacks_total', '1d')})")))
        .with_row(gdash.Row("Alerts"))
        .with_panel(table.Panel().title("Firing alerts").datasource(DATASOURCE).height(8).span(24).with_target(
            _q('sum by (alertname, severity, tenant) (ALERTS{alertstate="firing", alertname=~"Rai.*"})').instant()))
        .with_row(gdash.Row("Throughput"))
        .with_panel(_ts("Ingested events per hour", "short", _q(
            f"sum({_per_run('rai_ingested_events_total', '1h')})", "all tenants")))
        .with_panel(_ts("New dead letters (1 h), top 10 tenants", "short", _q(
            f"topk(10, sum by (tenant) ({_per_run('rai_dead_letters_new_total', '1h', 'tenant')}))", "{{tenant}}")))
        .with_panel(_ts("Pipeline outcomes / h", "short", _q(
            "sum by (stage, status) (increase(rai_pipeline_status_total[1h]))", "{{stage}} {{status}}")))
        .with_panel(_ts("Training duration p90", "s", _q(
            f"histogram_quantile(0.9, sum by (le) ({_per_run('rai_training_duration_seconds_bucket', '1d', 'le')}))",
            "p90 of the last day's runs")))
    )


def tenant_drilldown() -> gdash.Dashboard:
    """Tenant drill-down: drift per season, MAE vs naive, promotions and rollbacks."""
    tenant = (gdash.QueryVariable("tenant").label("Tenant").datasource(DATASOURCE)
              .query("label_values(rai_ingestion_last_success_timestamp_seconds, tenant)"))
    sel = 'tenant="$tenant"'
    return (
        _base("rai-tenant", "rai-assets / Tenant drill-down", "One tenant: drift, accuracy, promotions, guards.")
        .with_variable(tenant)
        .with_row(gdash.Row("Drift"))
        .with_panel(heatmap.Panel().title("Largest PSI per season").datasource(DATASOURCE).height(8).span(12)
                    .with_target(_q(f"max by (season) (rai_drift_psi_value{{{sel}}})", "{{season}}")))
        .with_panel(_ts("Largest PSI per season", "none", _q(
            f"max by (season) (rai_drift_psi_value{{{sel}}})", "{{season}}")))
        .with_row(gdash.Row("Accuracy"))
        .with_panel(_ts("Forecast MAE vs naive (each tenant's spec unit, e.g. kg/ha)", "none",
                        _q(f"rai:forecast_mae_kg_ha:max{{{sel}}}", "{{model}}"),
                        _q(f"max by (role) (rai_model_mae_kg_ha{{{sel}}})", "{{role}}")))
        .with_panel(_ts("Naive floor (REG-10): served below naive, fallbacks", "short",
                        _q(f"rai:served_below_naive:max{{{sel}}}", "served below naive"),
                        _q(f"sum({_per_run(f'rai_naive_floor_fallbacks_total{{{sel}}}', '1d')})", "fallbacks (1 d)")))
        .with_panel(_ts("Dead letters per season", "short", _q(
            f"max by (season) (rai_dead_letters{{{sel}}})", "{{season}}")))
        .with_row(gdash.Row("Promotions and guards"))
        .with_panel(_ts("Promotion decisions (incl. rollbacks)", "short", _q(
            f"sum by (decision) ({_per_run(f'rai_promotion_decisions_total{{{sel}}}', '1d', 'decision')})",
            "{{decision}}")))
        .with_panel(_ts("Retraining refusals by guard", "short", _q(
            f"sum by (guard) (increase(rai_retrain_refusals_total{{{sel}}}[1d]))", "{{guard}}")))
        .with_panel(_ts("GPU-hour quota used", "percentunit", _q(
            f"max(rai_retrain_quota_used_ratio{{{sel}}})", "quota")))
        .with_panel(_ts("Integrity failures", "short", _q(
            f"sum by (check) ({_per_run(f'rai_integrity_failures_total{{{sel}}}', '1h', 'check')})", "{{check}}")))
    )


def loop_slos() -> gdash.Dashboard:
    """The loop's SLOs and its own health (sensor ticks)."""
    board = _base("rai-slo", "rai-assets / Loop SLOs", "SLOs of the closed loop (README: SLOs).")
    board = board.with_row(gdash.Row("SLOs"))
    for slo in SLOS:
        board = board.with_panel(_ts(f"{slo.name} (objective: {slo.objective})", slo.unit, _q(slo.promql, slo.legend)))
    return (
        board.with_row(gdash.Row("The loop itself"))
        .with_panel(_ts("Seconds since the last good sensor tick", "s", _q(
            "time() - max by (sensor) (rai_sensor_last_success_timestamp_seconds)", "{{sensor}}")))
        .with_panel(_ts("Failed sensor ticks (15 min)", "short", _q(
            'sum by (sensor) (increase(rai_sensor_ticks_total{outcome="error"}[15m]))', "{{sensor}}")))
    )


DASHBOARDS = {"fleet-overview": fleet_overview, "tenant-drilldown": tenant_drilldown, "loop-slos": loop_slos}


def _number(board: dict[str, object]) -> None:
    """Give every panel a unique id and every query a ref id (A, B, …), as Grafana expects."""
    panels = board.get("panels")
    for index, panel in enumerate(panels if isinstance(panels, list) else [], start=1):
        panel["id"] = index
        for n, target in enumerate(panel.get("targets") or []):
            target["refId"] = target.get("refId") or chr(ord("A") + n)


def render() -> dict[str, str]:
    """File name → JSON text of every dashboard (stable: sorted keys, 2-space indent, final newline)."""
    out = {}
    for name, build in DASHBOARDS.items():
        as_dict = json.loads(json.dumps(build().build(), cls=JSONEncoder))
        _number(as_dict)
        out[f"{name}.json"] = json.dumps(as_dict, indent=2, sort_keys=True) + "\n"
    return out


def write(directory: Path) -> list[Path]:
    """Write every dashboard into ``directory``; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in render().items():
        path = directory / name
        path.write_text(text)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write(Path(sys.argv[1] if len(sys.argv) > 1 else "resources/observability/dashboards")):
        print(written)
