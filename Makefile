# rai-assets — set-up, demo, tests. Only Python 3.11 is needed; everything else is installed here.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STATE  ?= $(CURDIR)/.rai
export RAI_STATE_DIR := $(STATE)
export DAGSTER_HOME  := $(STATE)/dagster
export GX_ANALYTICS_ENABLED := false
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false

.PHONY: demo test bench dagster mlflow loop lint install install-dev clean observability-tools dashboards

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## Prometheus, promtool and the Pushgateway (Debian packages) for the observability tests; apt only when missing.
observability-tools:
	@if command -v promtool >/dev/null && command -v prometheus >/dev/null && command -v prometheus-pushgateway >/dev/null; then \
		echo "prometheus, promtool and prometheus-pushgateway present"; \
	else \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			prometheus prometheus-pushgateway; \
	fi
	@command -v promtool >/dev/null && command -v prometheus >/dev/null && command -v prometheus-pushgateway >/dev/null \
		|| { echo "prometheus/promtool/prometheus-pushgateway still missing: the observability tests would fail" >&2; exit 1; }

## Grafana dashboards as code (grafana-foundation-sdk) → resources/observability/dashboards/*.json
dashboards: install-dev
	$(BIN)/python -m rai_assets.observability.dashboards resources/observability/dashboards

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME) && cp dagster.yaml $@

## Run the main job on the embedded defaults: all 6 tenants × 6 seasons of the RiceFarms panel.
demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/rai-assets demo

## The test suite (real Postgres via pgserver, real S3 via moto server, temporary MLflow and Dagster).
test: install-dev observability-tools
	$(BIN)/ruff check rai_assets rai_assets_tests benchmarks
	$(BIN)/mypy rai_assets
	$(BIN)/pytest -n 2 --dist loadfile -q

## Benchmarks (ingestion throughput, drift engine); JSON results in benchmarks/results/.
bench: install-dev
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/drift.py

## Dagster UI (webserver + daemon) on the demo's instance and stores: http://127.0.0.1:3000
dagster: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/rai-assets with-ledger $(BIN)/dagster dev -m rai_assets.definitions -h 127.0.0.1 -p 3000

## The closed loop head-less: dagster dev + sensors; drifted seasons land, retraining and promotion follow.
loop: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/rai-assets closed-loop

## MLflow UI on the demo's tracking store: http://127.0.0.1:5000
mlflow: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(STATE)/mlflow/mlflow.db --host 127.0.0.1 --port 5000

lint: install-dev
	$(BIN)/ruff check rai_assets rai_assets_tests benchmarks
	$(BIN)/mypy rai_assets

clean:
	rm -rf $(STATE)
