"""MLflow as the model registry (REG-1): one experiment and one registered model per tenant.

Local default: tracking on SQLite under the state directory with a local artifact root;
production: ``MLFLOW_TRACKING_URI`` points at the MLflow server (Postgres backend, S3 artifacts).
The ``champion`` alias follows the ledger, which is the source of truth for lifecycle state.
"""

from __future__ import annotations

import fcntl
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import xgboost as xgb
from dagster import ConfigurableResource

from rai_assets.adapters.tracing import current_trace_id

CHAMPION_ALIAS = "champion"
_ZERO_TRACE = "0" * 32
_LOADED_MODELS_MAX = 64
_LOADED_MODELS: OrderedDict[tuple[str, str], xgb.XGBRegressor] = OrderedDict()  # (tracking URI, models:/ URI)
_LOADED_MODELS_LOCK = threading.Lock()
#: Threads a loaded model predicts on. A partition predicts tens to hundreds of rows, where XGBoost's OpenMP
#: threads cost more than they split; on a busy node they also wait for each other (≈ 16 ms a prediction
#: instead of ≈ 1 ms with the 2 cores loaded, issue 12 goal 3). The result does not depend on it: each row's
#: trees are summed in the same order on any thread (a test compares with MLflow's own load).
_PREDICT_THREADS = 1
_EXPERIMENT_IDS: dict[tuple[str, str], str] = {}  # (tracking URI, experiment name) → id, found or created here


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


#: The local SQLite stores this process has created or found (see :func:`_create_sqlite_store`).
_CREATED_STORES: set[str] = set()


def _create_sqlite_store(db: Path, uri: str) -> None:
    """Open MLflow's tracking and registry stores at ``uri`` (SQLite file ``db``) while holding an exclusive
    ``flock`` on ``<db>.lock``: MLflow creates and migrates its tables when a process first opens a store, and
    two processes opening a new store at once race (``sqlite3.OperationalError: table … already exists``) — as
    a season's parallel runs do on a fresh local deployment. Once per process and store; a store that exists
    is only opened.

    Raises:
        OSError: the lock file cannot be created.
    """
    import mlflow

    with open(db.with_name(db.name + ".lock"), "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
    _CREATED_STORES.add(uri)


def _reloaded(model: xgb.XGBRegressor) -> xgb.XGBRegressor:
    """A copy of ``model`` as ``mlflow.xgboost.load_model`` returns its logged version: an ``XGBRegressor``
    loaded from the booster's UBJSON bytes (the flavor's ``model_format``), so it predicts bit for bit what
    the registered version predicts — the evaluation of a model trained in this process needs no download."""
    copy = xgb.XGBRegressor()
    copy.load_model(model.get_booster().save_raw(raw_format="ubj"))
    copy.set_params(n_jobs=_PREDICT_THREADS)
    return copy


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
        """The tracking (and registry) URI in use; the local SQLite store is created here, once per process,
        under an inter-process lock (:func:`_create_sqlite_store`)."""
        if self.tracking_uri:
            return self.tracking_uri
        db = Path(self.state_dir).resolve() / "mlflow" / "mlflow.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{db}"
        if uri not in _CREATED_STORES:
            _create_sqlite_store(db, uri)
        return uri

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

    def registry_writer(self) -> Any:
        """MLflow's ``ModelRegistryClient`` for the configured registry: the layer ``MlflowClient`` delegates its
        registry calls to, used here for writes to this project's registered models (version tags, aliases,
        descriptions).

        ``MlflowClient``'s registry writes first read the whole registered model (its versions' tags and its
        aliases) to refuse prompts (``MlflowClient._raise_if_prompt``, MLflow 3), a read per write whose cost
        grows with the model's versions: ≈ 5 ms of a ≈ 10 ms tag write on SQLite, and a promotion step writes
        ≈ 10 (issue 12, goal 3). The registered models written here are ``yield-<tenant>`` and
        ``yield-cohort-<cohort>``, made by :meth:`log_trained_model`, never prompts, so the read is skipped;
        the write itself (validation, store, errors) is MLflow's, unchanged.

        Raises:
            mlflow.exceptions.MlflowException: the registry URI is not a registry store.
        """
        return self.client()._get_registry_client()

    @staticmethod
    def cohort_model_name(cohort: str) -> str:
        """A cohort's registered model: ``yield-cohort-<cohort>`` (one model, versions per season)."""
        return f"yield-cohort-{cohort}"

    @classmethod
    def champion_alias(cls, tenant: str, model_name: str | None = None) -> str:
        """The alias that marks the tenant's champion on ``model_name``: ``champion`` on the tenant's own
        registered model, ``champion-<tenant>`` on a cohort's (each member has its own)."""
        return CHAMPION_ALIAS if model_name in (None, cls.model_name(tenant)) else f"{CHAMPION_ALIAS}-{tenant}"

    @classmethod
    def stage_alias(cls, stage: str, tenant: str, model_name: str | None = None) -> str:
        """The alias of a live lifecycle stage (``champion``, ``canary``, ``shadow``) for the tenant on
        ``model_name``: the bare stage on the tenant's own model, ``<stage>-<tenant>`` on a cohort's."""
        return stage if model_name in (None, cls.model_name(tenant)) else f"{stage}-{tenant}"

    @classmethod
    def state_tag(cls, tenant: str, model_name: str | None = None) -> str:
        """The version tag holding the ledger's state: ``ledger_state`` (``ledger_state-<tenant>`` on a cohort's)."""
        return cls.ledger_tag("ledger_state", tenant, model_name)

    @classmethod
    def ledger_tag(cls, tag: str, tenant: str, model_name: str | None = None) -> str:
        """A version tag mirrored from the tenant's ledger (``ledger_state``, ``validation_mae`` …): ``tag`` on
        the tenant's own model, ``<tag>-<tenant>`` on a cohort's (each member has its own)."""
        return tag if model_name in (None, cls.model_name(tenant)) else f"{tag}-{tenant}"

    def logged_model_id(self, registered_model: str, version: int) -> str | None:
        """The MLflow 3 logged model (``model_id``, ``m-<hex>``) behind ``registered_model`` version ``version``:
        the version's ``model_id``, else the id in its ``models:/m-…`` source; None when the version does not
        exist or was not registered from a logged model."""
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client().get_model_version(registered_model, str(version))
        except MlflowException:
            return None
        if getattr(mv, "model_id", None):
            return str(mv.model_id)
        source = str(mv.source or "")  # the SQLite store leaves model_id empty; the source is models:/<model_id>
        return source.removeprefix("models:/") if source.startswith("models:/m-") else None

    def versions_with_tags(self, registered_model: str) -> dict[int, dict[str, str]]:
        """Version → tags of every version of ``registered_model`` (empty when it does not exist)."""
        return {int(v.version): dict(v.tags) for v in
                self.client().search_model_versions(f"name='{registered_model}'")}

    def aliases(self, registered_model: str) -> dict[str, int]:
        """Alias → version of ``registered_model``.

        Raises:
            mlflow.exceptions.MlflowException: the registered model does not exist.
        """
        return {a: int(v) for a, v in self.client().get_registered_model(registered_model).aliases.items()}

    def set_alias(self, registered_model: str, alias: str, version: int | None) -> None:
        """Point ``alias`` at ``version``, or delete it when ``version`` is None."""
        client = self.registry_writer()
        if version is None:
            client.delete_registered_model_alias(registered_model, alias)
        else:
            client.set_registered_model_alias(registered_model, alias, str(version))

    @staticmethod
    def experiment_name(tenant: str) -> str:
        """The tenant's experiment: ``rai-assets/<tenant>``."""
        return f"rai-assets/{tenant}"

    @staticmethod
    def model_name(tenant: str) -> str:
        """The tenant's registered model: ``yield-<tenant>``."""
        return f"yield-{tenant}"

    def experiment_id(self, tenant: str) -> str:
        """Id of the tenant's experiment (``tenant`` may be ``cohort-<name>``), created with its own
        artifact location if missing; looked up once per process and store (two calls a partition run)."""
        key = (self.resolved_tracking_uri(), self.experiment_name(tenant))
        if key in _EXPERIMENT_IDS:  # an experiment's id never changes (MLflow deletes softly)
            return _EXPERIMENT_IDS[key]
        client = self.client()
        exp = client.get_experiment_by_name(self.experiment_name(tenant))
        if exp is None:
            found = str(client.create_experiment(
                self.experiment_name(tenant),
                artifact_location=f"{self.resolved_artifact_root().rstrip('/')}/{tenant}",
                tags={"tenant": tenant},
            ))
        else:
            found = str(exp.experiment_id)
        _EXPERIMENT_IDS[key] = found
        return found

    def log_trained_model(self, *, tenant: str, season: str, model: xgb.XGBRegressor, example: pd.DataFrame,
                          params: Mapping[str, Any], metrics: Mapping[str, float], tags: Mapping[str, str],
                          registered_model: str | None = None, experiment: str | None = None) -> tuple[str, int]:
        """Log a training run and register its model as a new version of ``yield-<tenant>`` (or of
        ``registered_model``, e.g. a cohort's, logged in the experiment named by ``experiment``).

        The pip requirements are given (xgboost's version), so MLflow does not infer them in a
        subprocess (seconds per call). The new version is kept as loaded (see :meth:`load_model`): the
        partition run that trained it evaluates it next.

        Returns:
            ``(run_id, model_version)``.
        """
        mlflow = self._activate()
        from mlflow.models import infer_signature

        name = registered_model or self.model_name(tenant)
        tags = with_trace(tags)
        signature = infer_signature(example, model.predict(example))
        # MLflow loads the logged model back and predicts its input example (serving-input validation) with
        # XGBoost's default threads: held to _PREDICT_THREADS here (XGBoost's configuration is per thread)
        with warnings.catch_warnings(), xgb.config_context(nthread=_PREDICT_THREADS):
            warnings.simplefilter("ignore")
            with mlflow.start_run(
                experiment_id=self.experiment_id(experiment or tenant), run_name=f"train {tenant} {season}",
                tags=dict(tags),
            ) as run:
                info = mlflow.xgboost.log_model(
                    model,
                    name="model",
                    signature=signature,
                    input_example=example,
                    pip_requirements=[f"xgboost=={xgb.__version__}"],
                )
                # params and metrics in one batch after the model, the metrics linked to it: logged before it,
                # MLflow reads the run and each metric's history back to link them (one query a metric)
                self._log_batch(run.info.run_id, params=params, metrics=metrics, model_id=info.model_id)
                # registered with its tags in one call, not a set_model_version_tag per tag (≈ 14 ms each on
                # SQLite: each also reads the registered model to refuse prompts); same source (models:/<id>)
                registered = mlflow.register_model(info.model_uri, name, tags=dict(tags))
        self._keep_loaded(f"models:/{name}/{registered.version}", _reloaded(model))
        return run.info.run_id, int(registered.version)

    def find_version(self, registered_model: str, tag: str, value: str) -> tuple[int, str] | None:
        """``(version, run_id)`` of a version of ``registered_model`` whose tag ``tag`` is ``value``, if any."""
        from mlflow.exceptions import MlflowException

        try:
            found = self.client().search_model_versions(f"name = '{registered_model}' and tags.{tag} = '{value}'")
        except MlflowException:
            return None
        if not found:
            return None
        best = min(found, key=lambda mv: int(mv.version))
        return int(best.version), str(best.run_id)

    def set_version_tags(self, registered_model: str, version: int, tags: Mapping[str, str]) -> None:
        """Set tags on a model version (e.g. a cohort member's held-out MAE)."""
        client = self.registry_writer()
        for key, value in tags.items():
            client.set_model_version_tag(registered_model, str(version), key, value)

    def load_model(self, tenant: str, version: int, registered_model: str | None = None) -> xgb.XGBRegressor:
        """Load version ``version`` of the tenant's registered model (or of ``registered_model``).

        A registered version's artifact never changes (MLflow never reuses a version number), so the last
        :data:`_LOADED_MODELS_MAX` loaded models are kept in the process, keyed by store and version: a partition
        run predicts with the same champion and candidate several times (evaluation, bias audit, promotion),
        and a download + deserialization costs ≈ 70 ms each (issue 12, goal 3). Callers only predict with it;
        it predicts on :data:`_PREDICT_THREADS` thread(s).
        """
        uri = f"models:/{registered_model or self.model_name(tenant)}/{version}"
        key = (self.resolved_tracking_uri(), uri)
        with _LOADED_MODELS_LOCK:
            if key in _LOADED_MODELS:
                _LOADED_MODELS.move_to_end(key)
                return _LOADED_MODELS[key]
        mlflow = self._activate()
        model = mlflow.xgboost.load_model(uri)
        model.set_params(n_jobs=_PREDICT_THREADS)
        self._keep_loaded(uri, model)
        return model

    def _keep_loaded(self, uri: str, model: xgb.XGBRegressor) -> None:
        """Keep ``model`` as the loaded model of ``uri`` (``models:/<name>/<version>``) of this store, the last
        :data:`_LOADED_MODELS_MAX` only."""
        with _LOADED_MODELS_LOCK:
            _LOADED_MODELS[(self.resolved_tracking_uri(), uri)] = model
            while len(_LOADED_MODELS) > _LOADED_MODELS_MAX:
                _LOADED_MODELS.popitem(last=False)

    def set_champion_alias(self, tenant: str, version: int, registered_model: str | None = None) -> None:
        """Point the tenant's champion alias at ``version`` of its model, or of ``registered_model`` (the
        ledger decided; MLflow follows), and tag the version with the trace that promoted it (OBS-2)."""
        name = registered_model or self.model_name(tenant)
        client = self.registry_writer()
        client.set_registered_model_alias(name, self.champion_alias(tenant, name), str(version))
        trace_id = current_trace_id()
        if trace_id:  # the trace that promoted it (OBS-2); per tenant on a shared cohort model
            key = "champion_trace_id" if name == self.model_name(tenant) else f"champion_trace_id-{tenant}"
            client.set_model_version_tag(name, str(version), key, trace_id)

    def delete_champion_alias(self, tenant: str, registered_model: str | None = None) -> None:
        """Remove the tenant's champion alias (the ledger has no champion)."""
        name = registered_model or self.model_name(tenant)
        self.registry_writer().delete_registered_model_alias(name, self.champion_alias(tenant, name))

    def delete_model_version(self, tenant: str, version: int, run_id: str | None) -> None:
        """Delete a model version from the registry and its run (retention, REG-7)."""
        client = self.client()
        client.delete_model_version(self.model_name(tenant), str(version))
        with _LOADED_MODELS_LOCK:
            _LOADED_MODELS.pop((self.resolved_tracking_uri(), f"models:/{self.model_name(tenant)}/{version}"), None)
        if run_id:
            client.delete_run(run_id)

    def champion_version(self, tenant: str, registered_model: str | None = None) -> int | None:
        """The version the tenant's champion alias points at (on ``registered_model``), or None."""
        from mlflow.exceptions import MlflowException

        name = registered_model or self.model_name(tenant)
        try:
            mv = self.client().get_model_version_by_alias(name, self.champion_alias(tenant, name))
        except MlflowException:
            return None
        return int(mv.version)

    def log_evaluation(self, *, tenant: str, season: str, run_name: str, metrics: Mapping[str, float],
                       tags: Mapping[str, str], artifacts: Mapping[str, str],
                       model_metrics: Mapping[str, Mapping[str, float]] | None = None) -> str:
        """Log an evaluation run (metrics per compared model, text artifacts) in the tenant's experiment.

        ``model_metrics`` maps an MLflow 3 logged model's ``model_id`` (see :meth:`logged_model_id`) to
        metrics logged in the same run *linked to that model* (``mlflow.log_metrics(model_id=…)``), so
        they show on the model's page and its registered versions: the judged candidate's held-out errors.

        Returns:
            The MLflow run id.
        """
        mlflow = self._activate()
        with mlflow.start_run(experiment_id=self.experiment_id(tenant), run_name=run_name,
                              tags=with_trace(tags)) as run:
            self._log_batch(run.info.run_id, metrics=metrics, model_metrics=model_metrics)
            for name, text in artifacts.items():
                mlflow.log_text(text, name)
        return str(run.info.run_id)

    def _log_batch(self, run_id: str, *, params: Mapping[str, Any] | None = None,
                   metrics: Mapping[str, float] | None = None, model_id: str | None = None,
                   model_metrics: Mapping[str, Mapping[str, float]] | None = None) -> None:
        """Log ``params`` (values as strings), ``metrics`` (step 0, linked to the logged model ``model_id`` when
        given) and each ``model_metrics`` entry's metrics (linked to that logged model, which becomes an input of
        the run, as ``mlflow.log_metrics(model_id=…)`` makes it) to run ``run_id`` in one ``MlflowClient.log_batch``:
        one store transaction instead of one a ``log_params``/``log_metrics`` call.

        Raises:
            mlflow.exceptions.MlflowException: the run does not exist, or a value is refused (e.g. a param
                logged before with another value).
        """
        from mlflow.entities import LoggedModelInput, Metric, Param
        from mlflow.utils.time import get_current_time_millis

        now = get_current_time_millis()
        batch = [Metric(key, float(value), now, 0, model_id=model_id, run_id=run_id)
                 for key, value in (metrics or {}).items()]
        for linked, values in (model_metrics or {}).items():
            batch += [Metric(key, float(value), now, 0, model_id=linked, run_id=run_id)
                      for key, value in values.items()]
        client = self.client()
        client.log_batch(run_id, metrics=batch, params=[Param(k, str(v)) for k, v in (params or {}).items()])
        if model_metrics:
            client.log_inputs(run_id, models=[LoggedModelInput(model_id=linked) for linked in model_metrics])

    def log_artifact_bytes(self, run_id: str, name: str, data: bytes) -> str:
        """Log ``data`` as the artifact ``name`` (a path inside the run, e.g. ``drift/s03/drift_report.json``)
        of the existing run ``run_id``; a later call with the same name replaces it (:meth:`log_artifact_files`
        with one file).

        Returns:
            The artifact's path within the run.

        Raises:
            ValueError: ``name`` is empty, absolute or climbs out of the run (``..``).
            mlflow.exceptions.MlflowException: the run does not exist or the artifact store refused it.
        """
        return self.log_artifact_files(run_id, {name: data})[0]

    def log_artifact_files(self, run_id: str, files: Mapping[str, bytes]) -> list[str]:
        """Log every ``files`` entry (a path inside the run, e.g. ``drift/s03/psi.png`` → its bytes) as an
        artifact of the existing run ``run_id`` in one upload (``MlflowClient.log_artifacts`` of a folder): one
        run lookup and one artifact-repository call instead of one per file (the pictures of a report, issue
        12, goal 3). A later call with the same path replaces the file.

        Returns:
            The artifact paths within the run, in ``files``' order.

        Raises:
            ValueError: a path is empty, absolute or climbs out of the run (``..``); nothing is logged then.
            mlflow.exceptions.MlflowException: the run does not exist or the artifact store refused them.
        """
        import tempfile

        for name in files:
            path = Path(name)
            if not name or path.is_absolute() or ".." in path.parts:
                raise ValueError(f"artifact path {name!r} must be relative and inside the run")
        if not files:
            return []
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                local = Path(tmp) / name
                local.parent.mkdir(parents=True, exist_ok=True)
                local.write_bytes(data)
            self.client().log_artifacts(run_id, tmp)
        return list(files)

    def model_version_url(self, tenant: str, version: int, registered_model: str | None = None) -> str:
        """MLflow UI link of a model version (of the tenant's model, or of ``registered_model``)."""
        return f"{self.ui_url.rstrip('/')}/#/models/{registered_model or self.model_name(tenant)}/versions/{version}"

    def run_url(self, tenant: str, run_id: str) -> str:
        """MLflow UI link of a run."""
        return f"{self.ui_url.rstrip('/')}/#/experiments/{self.experiment_id(tenant)}/runs/{run_id}"
