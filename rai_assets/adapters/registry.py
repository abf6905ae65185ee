"""MLflow as the model registry (REG-1): one experiment and one registered model per tenant.

Local default: tracking on SQLite under the state directory with a local artifact root;
production: ``MLFLOW_TRACKING_URI`` points at the MLflow server (Postgres backend, S3 artifacts).
The ``champion`` alias follows the ledger, which is the source of truth for lifecycle state.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import xgboost as xgb
from dagster import ConfigurableResource

from rai_assets.adapters.tracing import current_trace_id

CHAMPION_ALIAS = "champion"
_ZERO_TRACE = "0" * 32


def with_trace(tags: Mapping[str, str]) -> dict[str, str]:
    """``tags`` with ``trace_id`` set to the current span's trace id when missing or all zeros (OBS-2)."""
    out = dict(tags)
    if out.get("trace_id", "") in ("", _ZERO_TRACE):
        trace_id = current_trace_id()
        if trace_id:
            out["trace_id"] = trace_id
        else:
            out.pop("trace_id", None)
    return out


class MlflowRegistryResource(ConfigurableResource):
    """Tracking and registry access for the per-tenant experiments and registered models.

    ``tracking_uri`` (env ``MLFLOW_TRACKING_URI``) empty → ``sqlite:///<state_dir>/mlflow/mlflow.db``;
    ``artifact_root`` empty → ``<state_dir>/mlflow/artifacts`` (used for new experiments);
    ``ui_url`` is where people open the MLflow UI, for links in Dagster metadata.
    """

    tracking_uri: str = ""
    artifact_root: str = ""
    state_dir: str = ".rai"
    ui_url: str = "http://127.0.0.1:5000"

    def resolved_tracking_uri(self) -> str:
        """The tracking (and registry) URI in use."""
        if self.tracking_uri:
            return self.tracking_uri
        db = Path(self.state_dir).resolve() / "mlflow" / "mlflow.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{db}"

    def resolved_artifact_root(self) -> str:
        """Artifact location given to new experiments (a URI or local path)."""
        if self.artifact_root:
            return self.artifact_root
        root = Path(self.state_dir).resolve() / "mlflow" / "artifacts"
        root.mkdir(parents=True, exist_ok=True)
        return root.as_uri()

    def _activate(self) -> Any:
        import mlflow

        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        uri = self.resolved_tracking_uri()
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        return mlflow

    def client(self) -> Any:
        """An ``mlflow.MlflowClient`` bound to the configured URIs."""
        mlflow = self._activate()
        return mlflow.MlflowClient(tracking_uri=self.resolved_tracking_uri(), registry_uri=self.resolved_tracking_uri())

    @staticmethod
    def experiment_name(tenant: str) -> str:
        """The tenant's experiment: ``rai-assets/<tenant>``."""
        return f"rai-assets/{tenant}"

    @staticmethod
    def model_name(tenant: str) -> str:
        """The tenant's registered model: ``yield-<tenant>``."""
        return f"yield-{tenant}"

    def experiment_id(self, tenant: str) -> str:
        """Id of the tenant's experiment, created (with a per-tenant artifact location) if missing."""
        client = self.client()
        exp = client.get_experiment_by_name(self.experiment_name(tenant))
        if exp is not None:
            return str(exp.experiment_id)
        return str(client.create_experiment(
            self.experiment_name(tenant),
            artifact_location=f"{self.resolved_artifact_root().rstrip('/')}/{tenant}",
            tags={"tenant": tenant},
        ))

    def log_trained_model(self, *, tenant: str, season: str, model: xgb.XGBRegressor, example: pd.DataFrame,
                          params: Mapping[str, Any], metrics: Mapping[str, float], tags: Mapping[str, str]
                          ) -> tuple[str, int]:
        """Log a training run and register its model as a new version of ``yield-<tenant>``.

        Returns:
            ``(run_id, model_version)``.
        """
        mlflow = self._activate()
        from mlflow.models import infer_signature

        tags = with_trace(tags)
        signature = infer_signature(example, model.predict(example))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mlflow.start_run(
                experiment_id=self.experiment_id(tenant), run_name=f"train {tenant} {season}", tags=dict(tags)
            ) as run:
                mlflow.log_params({k: str(v) for k, v in params.items()})
                mlflow.log_metrics(dict(metrics))
                info = mlflow.xgboost.log_model(
                    model,
                    name="model",
                    signature=signature,
                    input_example=example,
                    registered_model_name=self.model_name(tenant),
                )
        version = int(info.registered_model_version)
        client = self.client()
        for key, value in tags.items():
            client.set_model_version_tag(self.model_name(tenant), str(version), key, value)
        return run.info.run_id, version

    def load_model(self, tenant: str, version: int) -> xgb.XGBRegressor:
        """Load version ``version`` of the tenant's registered model."""
        mlflow = self._activate()
        return mlflow.xgboost.load_model(f"models:/{self.model_name(tenant)}/{version}")

    def set_champion_alias(self, tenant: str, version: int) -> None:
        """Point the tenant's ``champion`` alias at ``version`` (the ledger decided; MLflow follows)."""
        client = self.client()
        client.set_registered_model_alias(self.model_name(tenant), CHAMPION_ALIAS, str(version))
        trace_id = current_trace_id()
        if trace_id:  # the trace that promoted it (OBS-2)
            client.set_model_version_tag(self.model_name(tenant), str(version), "champion_trace_id", trace_id)

    def delete_champion_alias(self, tenant: str) -> None:
        """Remove the tenant's ``champion`` alias (the ledger has no champion)."""
        self.client().delete_registered_model_alias(self.model_name(tenant), CHAMPION_ALIAS)

    def delete_model_version(self, tenant: str, version: int, run_id: str | None) -> None:
        """Delete a model version from the registry and its run (retention, REG-7)."""
        client = self.client()
        client.delete_model_version(self.model_name(tenant), str(version))
        if run_id:
            client.delete_run(run_id)

    def champion_version(self, tenant: str) -> int | None:
        """The version the ``champion`` alias points at, or None."""
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client().get_model_version_by_alias(self.model_name(tenant), CHAMPION_ALIAS)
        except MlflowException:
            return None
        return int(mv.version)

    def log_evaluation(self, *, tenant: str, season: str, run_name: str, metrics: Mapping[str, float],
                       tags: Mapping[str, str], artifacts: Mapping[str, str]) -> str:
        """Log an evaluation run (metrics per compared model, text artifacts) in the tenant's experiment.

        Returns:
            The MLflow run id.
        """
        mlflow = self._activate()
        with mlflow.start_run(experiment_id=self.experiment_id(tenant), run_name=run_name,
                              tags=with_trace(tags)) as run:
            mlflow.log_metrics(dict(metrics))
            for name, text in artifacts.items():
                mlflow.log_text(text, name)
        return str(run.info.run_id)

    def model_version_url(self, tenant: str, version: int) -> str:
        """MLflow UI link of a model version."""
        return f"{self.ui_url.rstrip('/')}/#/models/{self.model_name(tenant)}/versions/{version}"

    def run_url(self, tenant: str, run_id: str) -> str:
        """MLflow UI link of a run."""
        return f"{self.ui_url.rstrip('/')}/#/experiments/{self.experiment_id(tenant)}/runs/{run_id}"
