# syntax=docker/dockerfile:1
# The rai-assets code location image (INF-5): `dagster api grpc` on rai_assets.definitions, also the run and
# step worker image of K8sRunLauncher / k8s_job_executor. Multi-stage: the final stage has no compiler, no
# pip cache and runs as a non-root user (uid 10001, matching helm-values.yaml's securityContext).
#
# BASE_IMAGE needs Python 3.11 with venv (e.g. python:3.11-slim-bookworm, or the Debian bookworm root fs that
# `make image` creates offline with mmdebstrap). Dependencies come from a wheelhouse in wheels/ when the build
# context has any (`make image` fills it from the local pip cache), else from the package index: the context
# needs a wheels/ folder, empty for the latter (`mkdir -p wheels`).
ARG BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY rai_assets ./rai_assets
COPY wheels ./wheels
RUN python3 -m venv /opt/venv \
 && if ls wheels/*.whl >/dev/null 2>&1; then \
      /opt/venv/bin/pip install --no-cache-dir --no-index --find-links wheels rai-assets ; \
    else \
      /opt/venv/bin/pip install --no-cache-dir . ; \
    fi \
 && /opt/venv/bin/pip uninstall -y pip \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

FROM ${BASE_IMAGE}
RUN groupadd --gid 10001 rai && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin rai \
 && mkdir -p /opt/dagster/dagster_home /opt/dagster/app \
 && chown -R 10001:10001 /opt/dagster
COPY --from=build /opt/venv /opt/venv
COPY resources /opt/dagster/app/resources
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    RAI_RESOURCES_DIR=/opt/dagster/app/resources \
    RAI_STATE_DIR=/tmp/rai \
    MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /opt/dagster/app
USER 10001:10001
EXPOSE 3030
CMD ["dagster", "api", "grpc", "--module-name", "rai_assets.definitions", "--host", "0.0.0.0", "--port", "3030"]
