"""Observability as code: Grafana dashboards (generated) and SLO definitions (OBS-4)."""
