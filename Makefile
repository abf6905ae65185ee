# rai-assets — set-up, demo, tests. Only Python 3.11 is needed; everything else is installed here.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STATE  ?= $(CURDIR)/.rai
export RAI_STATE_DIR := $(STATE)
export DAGSTER_HOME  := $(STATE)/dagster
export GX_ANALYTICS_ENABLED := false
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false

.PHONY: demo test test-k8s bench dagster mlflow loop lint install install-dev clean

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

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME) && cp dagster.yaml $@

## Run the main job on the embedded defaults: all 6 tenants × 6 seasons of the RiceFarms panel.
demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/rai-assets demo

## The test suite (real Postgres via pgserver, real S3 via moto server, temporary MLflow and Dagster).
test: install-dev
	$(BIN)/ruff check rai_assets rai_assets_tests benchmarks
	$(BIN)/mypy rai_assets
	$(BIN)/pytest -n 2 --dist loadfile -q

## Kubernetes tier (marker k8s): helm-values.yaml rendered with the official chart and validated, resources/k8s
## applied to a real kube-apiserver (shared/tools/k8s, built once ~5 min), K8sRunLauncher + k8s_job_executor runs.
test-k8s: install-dev
	$(BIN)/pytest -m k8s -q rai_assets_tests/k8s

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
