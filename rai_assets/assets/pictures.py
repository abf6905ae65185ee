"""Pictures in Dagster metadata and MLflow: render, inline, log — never failing the asset.

The plots themselves are :mod:`rai_assets.presentation.plots` (pure); this module is the asset-side glue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from dagster import MetadataValue

from rai_assets.adapters.registry import MlflowRegistryResource
from rai_assets.assets.partitions import PartitionStep
from rai_assets.presentation.plots import markdown_image

#: A picture to render: (title, a function that returns its PNG bytes).
Picture = tuple[str, Callable[[], bytes]]


def publish_pictures(context: PartitionStep, mlflow_registry: MlflowRegistryResource,
                     pictures: Mapping[str, Picture], *, run_id: str | None, artifact_dir: str
                     ) -> dict[str, MetadataValue]:
    """Render each picture and return it as materialization metadata, the entry ``plot_<name>``
    (``MetadataValue.md`` with an inline base64 PNG; the caller merges it into its MaterializeResult); log them
    all as ``<artifact_dir>/<name>.png`` of MLflow run ``run_id``, in one upload, when given.

    A picture that fails to render, or to log, is a warning in the run's log, never an asset failure:
    the report is the product, the picture a view of it. ``plot_bytes`` records each PNG's size (bytes)
    and ``plot_ms`` the time spent rendering and logging them (ms).
    """
    metadata: dict[str, MetadataValue] = {}
    sizes: dict[str, int] = {}
    rendered: dict[str, bytes] = {}
    started = time.perf_counter()
    for name, (title, render) in pictures.items():
        try:
            png = render()
        except Exception as exc:  # a picture must never break the asset
            context.log.warning(f"picture {name!r} ({title}) not rendered: {type(exc).__name__}: {exc}")
            continue
        metadata[f"plot_{name}"] = MetadataValue.md(markdown_image(title, png))
        sizes[name] = len(png)
        rendered[f"{artifact_dir}/{name}.png"] = png
    if run_id and rendered:
        try:  # one upload for all of them (one run lookup, one artifact-repository call)
            mlflow_registry.log_artifact_files(run_id, rendered)
        except Exception as exc:  # MLflow unavailable: the pictures are still in the metadata
            context.log.warning(f"pictures {', '.join(sorted(rendered))} not logged to MLflow run {run_id}: "
                                f"{type(exc).__name__}: {exc}")
    if metadata:
        metadata["plot_bytes"] = MetadataValue.json(sizes)
        metadata["plot_ms"] = MetadataValue.float(round((time.perf_counter() - started) * 1000, 1))
    return metadata
