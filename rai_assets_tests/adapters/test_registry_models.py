"""A trained model as MLflow registers it (REG-1): the logged serving input example predicts through pyfunc
(MLflow only warns when it does not), and the copy a partition run keeps of the model it just trained predicts
bit for bit what the registered version predicts (issue 12, goal 3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.demo.ricefarms import load_panel, to_event
from rai_assets.domain.features import events_frame, feature_matrix, target_vector
from rai_assets.domain.model_spec import load_model_spec
from rai_assets.domain.training import predict, train_regressor
from rai_assets.resource_files import resources_dir


@pytest.fixture(scope="module")
def trained() -> tuple[xgb.XGBRegressor, pd.DataFrame]:
    """The rice spec's regressor on one RiceFarms village's first two seasons, and its features."""
    spec = load_model_spec(resources_dir() / "model_specs", "rice-yield-v1")
    panel = load_panel()
    village = sorted(panel["tenant"].unique())[0]
    rows = panel[(panel["tenant"] == village) & panel["season"].isin(["s01", "s02"])]
    frame = events_frame([to_event(row) for _, row in rows.iterrows()], spec)
    features = feature_matrix(frame, spec)
    return train_regressor(features, target_vector(frame, spec), spec), features


def _log(registry: MlflowRegistryResource, tenant: str, model: xgb.XGBRegressor, features: pd.DataFrame
         ) -> tuple[str, int]:
    return registry.log_trained_model(tenant=tenant, season="s03", model=model, example=features.head(5),
                                      params={"n_estimators": model.n_estimators}, metrics={"train_mae": 1.0},
                                      tags={"tenant": tenant, "season": "s03"})


def test_the_logged_serving_input_example_predicts_through_pyfunc_REG1(mlflow_registry, trained, suffix):
    """The serving input example logged with every version serves: MLflow's validate_serving_input on it gives
    the model's predictions (at logging time MLflow only logs a warning when it fails)."""
    import mlflow
    from mlflow.models import Model, validate_serving_input

    model, features = trained
    tenant = f"serving-{suffix}"
    _, version = _log(mlflow_registry, tenant, model, features)
    uri = f"models:/{mlflow_registry.model_name(tenant)}/{version}"
    mlflow_registry.client()  # activates the tracking and registry URIs
    local = mlflow.artifacts.download_artifacts(uri)
    serving_input = Model.load(local).get_serving_input(local)
    assert serving_input is not None, "no serving input example was logged"
    served = np.asarray(validate_serving_input(uri, serving_input), dtype="float64").ravel()
    np.testing.assert_array_equal(served, predict(model, features.head(5)))


def test_the_kept_copy_of_a_trained_model_predicts_as_the_registered_version(mlflow_registry, trained, suffix,
                                                                               monkeypatch):
    import mlflow

    model, features = trained
    tenant = f"kept-{suffix}"
    _, version = _log(mlflow_registry, tenant, model, features)
    registered = mlflow.xgboost.load_model(f"models:/{mlflow_registry.model_name(tenant)}/{version}")

    def no_download(uri: str) -> None:
        raise AssertionError(f"{uri} downloaded although this process trained it")

    monkeypatch.setattr(mlflow.xgboost, "load_model", no_download)
    kept = mlflow_registry.load_model(tenant, version)
    assert type(kept) is type(registered) is xgb.XGBRegressor
    np.testing.assert_array_equal(predict(kept, features), predict(registered, features))
    # rows the model never saw, enough of them for XGBoost to split them over threads: the kept copy predicts on
    # one thread, MLflow's load on all cores, and each row's trees are summed in the same order either way
    shifted = pd.concat([features * (1.0 + k / 50.0) + k for k in range(80)], ignore_index=True)
    assert kept.n_jobs == 1 and registered.n_jobs is None
    np.testing.assert_array_equal(predict(kept, shifted), predict(registered, shifted))


def test_artifact_files_are_logged_in_one_upload_and_bad_paths_refused(mlflow_registry, suffix):
    """A report's pictures go to their run in one upload; a later upload of the same path replaces the file; a
    path outside the run is refused, naming it, and nothing of that upload is logged."""
    import mlflow

    client = mlflow_registry.client()
    run = client.create_run(mlflow_registry.experiment_id(f"artifacts-{suffix}"))
    run_id = run.info.run_id
    assert mlflow_registry.log_artifact_files(run_id, {"drift/s03/psi.png": b"a", "drift/s03/panels.png": b"b",
                                                       "top.txt": b"c"}) == [
        "drift/s03/psi.png", "drift/s03/panels.png", "top.txt"]
    mlflow_registry.log_artifact_files(run_id, {"drift/s03/psi.png": b"replaced"})
    assert {f.path for f in client.list_artifacts(run_id, "drift/s03")} == {"drift/s03/psi.png",
                                                                           "drift/s03/panels.png"}
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="drift/s03/psi.png")
    assert Path(local).read_bytes() == b"replaced"
    for bad in ("../escape.png", "/etc/passwd", ""):
        with pytest.raises(ValueError, match="must be relative and inside the run") as err:
            mlflow_registry.log_artifact_files(run_id, {"bias/ok.png": b"x", bad: b"y"})
        assert repr(bad) in str(err.value)
    assert [f.path for f in client.list_artifacts(run_id, "bias")] == []


def test_training_and_evaluation_runs_link_their_metrics_to_the_logged_model_REG1(mlflow_registry, trained, suffix):
    """REG-1: what MLflow shows of a trained version and its evaluation. The training run has the params (as
    strings) and metrics, and the logged model as its output; the logged model carries the training metrics
    (linked to that run) and, after an evaluation, the held-out metrics linked to the evaluation run, which lists
    the model as its input; each metric is logged once (one history entry)."""
    import mlflow

    model, features = trained
    tenant = f"linked-{suffix}"
    run_id, version = mlflow_registry.log_trained_model(
        tenant=tenant, season="s03", model=model, example=features.head(5),
        params={"n_estimators": model.n_estimators, "spec": "rice-yield-v1"},
        metrics={"train_mae": 412.5, "train_rmse": 530.25}, tags={"tenant": tenant, "season": "s03"})
    model_id = mlflow_registry.logged_model_id(mlflow_registry.model_name(tenant), version)
    assert model_id is not None
    eval_run = mlflow_registry.log_evaluation(
        tenant=tenant, season="s03", run_name="evaluate", metrics={"candidate_mae": 600.0, "naive_mae": 800.0},
        tags={"tenant": tenant}, artifacts={"comparison.md": "| model | MAE |"},
        model_metrics={model_id: {"heldout_mae": 600.0}})

    client = mlflow_registry.client()
    train = client.get_run(run_id)
    assert train.data.params == {"n_estimators": str(model.n_estimators), "spec": "rice-yield-v1"}
    assert train.data.metrics == {"train_mae": 412.5, "train_rmse": 530.25}
    assert [o.model_id for o in train.outputs.model_outputs] == [model_id]
    assert all(len(client.get_metric_history(run_id, key)) == 1 for key in train.data.metrics)

    evaluation = client.get_run(eval_run)
    assert evaluation.data.metrics == {"candidate_mae": 600.0, "naive_mae": 800.0, "heldout_mae": 600.0}
    assert [i.model_id for i in evaluation.inputs.model_inputs] == [model_id]
    assert client.list_artifacts(eval_run)[0].path == "comparison.md"

    logged = mlflow.get_logged_model(model_id)
    assert sorted((m.key, m.value, m.run_id) for m in logged.metrics) == [
        ("heldout_mae", 600.0, eval_run), ("train_mae", 412.5, run_id), ("train_rmse", 530.25, run_id)]
