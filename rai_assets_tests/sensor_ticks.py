"""Evaluate a sensor once in a test, the way the daemon does: resources opened and closed around the tick."""

from __future__ import annotations

from typing import Any

from dagster import build_sensor_context


def evaluate_sensor(sensor: Any, **context: Any) -> Any:
    """Evaluate ``sensor`` with ``build_sensor_context(**context)`` opened as a context manager.

    Resources with set-up and tear-down (a resource nesting dagster-aws's ``S3Resource``, for one) are
    only available inside the context manager; Dagster refuses them on a bare context.
    """
    with build_sensor_context(**context) as ctx:
        return sensor(ctx)
