# rai-assets — set-up, demo, tests. Only Python 3.11 is needed; everything else is installed here.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STATE  ?= $(CURDIR)/.rai
export RAI_STATE_DIR := $(STATE)
export DAGSTER_HOME  := $(STATE)/dagster
export GX_ANALYTICS_ENABLED := false
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false

.PHONY: demo test test-k8s test-browser browser-tools image bench dagster mlflow loop lint install install-dev clean observability-tools dashboards

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

## Kubernetes tier (marker k8s): helm-values.yaml rendered with the official chart and validated, resources/k8s
## applied to a real kube-apiserver (shared/tools/k8s, built once ~5 min), K8sRunLauncher + k8s_job_executor runs.
test-k8s: install-dev
	$(BIN)/pytest -m k8s -q rai_assets_tests/k8s

## Debian's chromium for the browser tier; apt only when missing (Playwright never downloads a browser).
browser-tools:
	@if command -v chromium >/dev/null; then \
		echo "chromium present"; \
	else \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; \
	fi
	@command -v chromium >/dev/null || { echo "chromium still missing: the browser tests would fail" >&2; exit 1; }

## Browser tier (marker browser): a 2-village × 3-season demo, `dagster dev` and `mlflow server` on free ports,
## Playwright driving Debian's chromium through the asset graph, a drift report's picture, the bias-audit check,
## the backfill dialog and the MLflow model page / version comparison; refreshes docs/screenshots/*.png.
test-browser: install-dev browser-tools
	$(BIN)/pytest -m browser -q rai_assets_tests/browser

## The image without Docker: buildah builds the Dockerfile on a Debian bookworm base made offline by mmdebstrap
## (Python 3.11 from Debian), dependencies from a wheelhouse of the local pip cache; then the code location is loaded
## inside the image (`dagster definitions validate`). Needs: apt-get install mmdebstrap buildah.
IMAGE      ?= localhost/rai-assets:0.1.0
IMAGE_BASE ?= localhost/rai-base:bookworm
IMAGE_CTX  := build/image/context
image: install
	@command -v buildah >/dev/null && command -v mmdebstrap >/dev/null || { echo "apt-get install mmdebstrap buildah" >&2; exit 1; }
	@if ! buildah inspect --type image $(IMAGE_BASE) >/dev/null 2>&1; then \
	  mkdir -p build/image && \
	  mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates,libgomp1 bookworm build/image/base.tar && \
	  ctr=$$(buildah from scratch) && buildah add $$ctr build/image/base.tar / && \
	  buildah config --env LANG=C.UTF-8 $$ctr && buildah commit --rm $$ctr $(IMAGE_BASE) && rm -f build/image/base.tar; \
	fi
	rm -rf $(IMAGE_CTX) && mkdir -p $(IMAGE_CTX)/wheels
	cp -r Dockerfile pyproject.toml README.md rai_assets resources $(IMAGE_CTX)/
	find $(IMAGE_CTX) -name __pycache__ -prune -exec rm -rf {} +
	$(BIN)/pip wheel -q --wheel-dir $(IMAGE_CTX)/wheels .
	buildah bud --isolation chroot --layers=false --build-arg BASE_IMAGE=$(IMAGE_BASE) -t $(IMAGE) -f $(IMAGE_CTX)/Dockerfile $(IMAGE_CTX)
	ctr=$$(buildah from $(IMAGE)) && \
	  buildah run --isolation chroot --env RAI_STATE_DIR=/tmp/rai $$ctr -- dagster definitions validate -m rai_assets.definitions; \
	  rc=$$?; buildah rm $$ctr >/dev/null; exit $$rc
	@buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' $(IMAGE)

## Benchmarks (ingestion throughput, drift engine, sensors at 10,000 tenants, partition run); JSON results in
## benchmarks/results/.
bench: install-dev
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/drift.py
	$(BIN)/python benchmarks/landing_sensor.py
	$(BIN)/python benchmarks/drift_sensor.py
	$(BIN)/python benchmarks/partition_run.py
	$(BIN)/python benchmarks/pictures.py
	$(BIN)/python benchmarks/memory.py
	$(BIN)/python benchmarks/partitions_scale.py

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
