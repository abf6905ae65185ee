"""A model spec's threshold sections and training objective are checked when the spec is parsed (bad input).

An unknown key or an out-of-range value in ``drift``, ``bias``, ``promotion`` or ``retraining`` is a
:class:`ModelSpecError` naming the file and the section, never a bare ``TypeError`` from a constructor.
"""

from __future__ import annotations

import json
import re

import pytest

from rai_assets.domain.model_spec import ModelSpecError, parse_model_spec
from rai_assets.resource_files import resources_dir


def _rice() -> dict:
    return json.loads((resources_dir() / "model_specs" / "rice-yield-v1.json").read_text(encoding="utf-8"))


def test_the_shipped_spec_parses_with_its_promotion_section():  # REQ: RET-10
    spec = parse_model_spec(_rice(), where="rice.json")
    assert (spec.promotion.canary_share, spec.promotion.min_sample) == (0.5, 30)
    assert spec.promotion.refit_margin == pytest.approx(0.05)


@pytest.mark.parametrize(("section", "value", "message"), [
    ("promotion", {"min_sample": 0}, "min_sample must be a whole number >= 1, got 0"),
    ("promotion", {"min_sample": 1.5}, "min_sample must be a whole number >= 1, got 1.5"),
    ("promotion", {"refit_margin": 1.2}, "refit_margin must be in [0, 1), got 1.2"),
    ("promotion", {"alpha": 0.0}, "alpha must be in (0, 1), got 0.0"),
    ("promotion", {"refit_windows": 2}, "unexpected keyword argument 'refit_windows'"),
    ("retraining", {"cooldown": 3}, "unexpected keyword argument 'cooldown'"),
])
def test_a_bad_section_value_names_the_file_and_the_section(section, value, message):  # REQ: RET-7
    doc = _rice()
    doc[section] = {**doc[section], **value}
    expected = re.escape(f"rice.json: section {section!r}: ") + ".*" + re.escape(message)
    with pytest.raises(ModelSpecError, match=expected):
        parse_model_spec(doc, where="rice.json")


def test_a_section_that_is_not_an_object_is_named():
    with pytest.raises(ModelSpecError, match=re.escape("rice.json: 'promotion' must be an object, got list")):
        parse_model_spec({**_rice(), "promotion": [1]}, where="rice.json")


def test_the_spec_names_the_training_objective():  # REQ: RET-10
    """The rice spec fits the conditional median (``reg:absoluteerror``), the loss every promotion test scores;
    an unknown objective is refused when the spec is parsed, naming the file."""
    assert parse_model_spec(_rice(), where="rice.json").xgboost_params["objective"] == "reg:absoluteerror"
    doc = _rice()
    doc["xgboost"] = {**doc["xgboost"], "objective": "reg:gamma"}
    with pytest.raises(ModelSpecError, match=re.escape("rice.json xgboost: objective 'reg:gamma' is not one of")):
        parse_model_spec(doc, where="rice.json")
