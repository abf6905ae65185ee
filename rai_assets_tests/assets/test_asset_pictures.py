"""Pictures in the assets (issue 10 item 3): a real partition's evaluation, bias audit and drift report carry
their pictures as inline PNGs in the materialization metadata and as artifacts of the MLflow run they belong
to; a picture that fails to render is a warning, never a failed asset.

Reuses test_each_asset's small tenant (3 seasons of one village; real pgserver ledger, MLflow on SQLite).
"""

from __future__ import annotations

import base64
import re

from dagster import materialize

from rai_assets.adapters.ledger import models as model_store
from rai_assets.assets.bias_audit import bias_audit
from rai_assets.assets.dataset_snapshot import dataset_snapshot
from rai_assets.assets.drift_report import drift_report
from rai_assets.assets.learning_events import learning_events
from rai_assets.assets.model_evaluation import model_evaluation
from rai_assets.assets.partitions import partition_key
from rai_assets.assets.trained_model import trained_model
from rai_assets.presentation import plots
from rai_assets_tests.assets.test_each_asset import _meta, small_tenant  # noqa: F401  (the fixture)

_INLINE = re.compile(r"^!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)$")


def _inline_png(markdown: str) -> bytes:
    found = _INLINE.match(markdown)
    assert found, f"not an inline PNG: {markdown[:80]!r}"
    png = base64.b64decode(found.group(1))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return png


def _artifacts(client, run_id: str, folder: str) -> set[str]:
    return {f.path for f in client.list_artifacts(run_id, folder)}


def test_drift_bias_and_evaluation_pictures_in_metadata_and_mlflow_drift_1_reg_5(resources, small_tenant,  # noqa: F811
                                                                                monkeypatch):
    """DRIFT-1/DRIFT-6 and REG-5 reports, pictured: metadata entries ``plot_*`` and MLflow artifacts."""
    instance, tenant, seasons, _panel = small_tenant
    _s1, s2, s3 = seasons
    registry = resources["mlflow_registry"]
    client = registry.client()

    def run(asset, season):
        result = materialize([asset], partition_key=partition_key(tenant, season), resources=resources,
                             instance=instance, selection=[asset])
        assert result.success
        return result

    for season in seasons:
        run(learning_events, season)
    run(dataset_snapshot, s2)
    run(trained_model, s2)

    # evaluation: three pictures in the metadata, logged on the evaluation run
    meta = _meta(run(model_evaluation, s2), "model_evaluation")
    for name in ("predicted_vs_actual", "residuals", "mae"):
        assert len(_inline_png(meta[f"plot_{name}"])) == meta["plot_bytes"][name]
    experiment = client.get_experiment_by_name(registry.experiment_name(tenant))
    evaluation_run = client.search_runs([experiment.experiment_id], "tags.kind = 'evaluation'")[0]
    assert _artifacts(client, evaluation_run.info.run_id, "plots") == {
        "plots/predicted_vs_actual.png", "plots/residuals.png", "plots/mae.png"}

    # bias audit: per-subgroup MAE, logged on the candidate's training run
    meta = _meta(run(bias_audit, s2), "bias_audit")
    _inline_png(meta["plot_subgroup_mae"])
    with resources["ledger"].connect(tenant) as conn:
        candidate = model_store.latest_model_for_partition(conn, tenant, s2)
        model_store.promote_bootstrap_champion(conn, candidate, reason="test: a reference for the drift report")
    registry.set_champion_alias(tenant, candidate.mlflow_version)
    assert _artifacts(client, candidate.mlflow_run_id, f"bias/{s2}") == {f"bias/{s2}/subgroup_mae.png",
                                                                         f"bias/{s2}/bias_audit.json"}  # + signed

    # drift report of s3 against the s2 champion: PSI bars, distributions (and season-level covariates when
    # the panel has any), logged on the reference model's training run
    meta = _meta(run(drift_report, s3), "drift_report")
    assert meta["verdict"] != "no_reference"
    pictured = {k.removeprefix("plot_") for k in meta if k.startswith("plot_") and k not in ("plot_bytes", "plot_ms")}
    assert {"psi", "distributions"} <= pictured
    for name in pictured:
        assert len(_inline_png(meta[f"plot_{name}"])) == meta["plot_bytes"][name]
    assert _artifacts(client, candidate.mlflow_run_id, f"drift/{s3}") == {
        f"drift/{s3}/{n}.png" for n in pictured} | {f"drift/{s3}/drift_report.json"}  # + the signed report

    # a picture that fails to render: the asset still materializes, with the other pictures
    def broken(*_args, **_kwargs):
        raise RuntimeError("renderer broke")

    monkeypatch.setattr(plots, "psi_bars", broken)
    meta = _meta(run(drift_report, s3), "drift_report")
    assert "plot_psi" not in meta and "plot_distributions" in meta and meta["verdict"] != "no_reference"
