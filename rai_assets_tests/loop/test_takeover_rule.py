"""One rule for any model about to serve after a season's decision (REG-10, RET-8): a promoted canary, a rollback
target after degradation and a fallback after the floor must not be trained on the season and must not fail the
naive floor's test there (``model_promotion._cannot_take_over``). The season here is a stand-in with fixed
labels and forecasts, so each branch of the rule is exercised exactly."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from rai_assets.adapters.ledger.models import ModelVersion
from rai_assets.assets import model_promotion
from rai_assets.assets.common import PartitionContext, spec_by_id
from rai_assets.domain.lifecycle import ModelState

RNG = np.random.default_rng(20261130)
ACTUAL = RNG.normal(4000.0, 600.0, 40)


def _model(model_id: int, season: str) -> ModelVersion:
    return ModelVersion(model_id, "t", season, "root", "code", "sha", ModelState.DEPRECATED, 5, "yield-t", model_id,
                        None, "cpu", None)


def _season(forecasts: dict[int, np.ndarray]) -> SimpleNamespace:
    part = PartitionContext("t", "s05", "run", spec_by_id("rice-yield-v1"))
    return SimpleNamespace(part=part, ledger=None, actual=ACTUAL, predict=lambda m: forecasts[m.model_id],
                           naive=lambda: np.full(len(ACTUAL), ACTUAL.mean()))


@pytest.fixture(autouse=True)
def _calendar(monkeypatch):
    order = ["s01", "s02", "s03", "s04", "s05", "s06"]
    monkeypatch.setattr(model_promotion, "trained_on",
                        lambda _ledger, model, season: order.index(season) < order.index(model.season_id))


def test_a_model_as_good_as_the_truth_may_take_over():  # REQ: RET-8
    good = _model(1, "s03")
    assert model_promotion._cannot_take_over(_season({1: ACTUAL + RNG.normal(0, 50, 40)}), good) is None


def test_a_model_significantly_worse_than_naive_may_not():  # REQ: REG-10
    bad = _model(2, "s03")
    why = model_promotion._cannot_take_over(_season({2: ACTUAL + 1500.0}), bad)
    assert why is not None and "below the naive floor on s05" in why and "kg/ha" in why and "p=" in why


def test_a_model_trained_on_the_season_may_not():  # REQ: RET-8
    later = _model(3, "s06")  # trained on seasons before s06, s05 included
    assert model_promotion._cannot_take_over(_season({3: ACTUAL.copy()}), later) == "it was trained on s05"
