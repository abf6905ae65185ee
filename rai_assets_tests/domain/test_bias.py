"""Tests for rai_assets.domain.bias — subgroup bias audit (requirement REG-5).

The constructed cases use a constant actual yield of 4000 kg/ha, so each group's MAE and mean signed
residual can be read off the chosen prediction errors.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rai_assets.domain.bias import (
    MISSING_GROUP,
    BiasAudit,
    BiasThresholds,
    audit_bias,
    size_class,
)

ACTUAL = 4000.0


def _case(errors_by_group: dict[str, list[float]]) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """y_true constant 4000 kg/ha, y_pred = 4000 + error, groups column 'farm.tenure'."""
    labels: list[str] = []
    errors: list[float] = []
    for label, errs in errors_by_group.items():
        labels += [label] * len(errs)
        errors += errs
    y_true = np.full(len(errors), ACTUAL)
    y_pred = y_true + np.asarray(errors)
    # a non-default index: the audit must align groups by position, not by label
    groups = pd.DataFrame({"farm.tenure": labels}, index=np.arange(100, 100 + len(labels)))
    return y_true, y_pred, groups


TENURE = {"tenure": "farm.tenure"}


def test_group_with_three_times_the_error_fails_reg5() -> None:
    # REG-5: owner errors ±100 -> MAE 100; tenant errors ±300 -> MAE 300.
    # MAE ratio = 100 / 300 = 0.333 < 0.5 -> fail. Signed residuals both 0 -> gap 0.
    y_true, y_pred, groups = _case({"owner": [100, -100] * 3, "tenant": [300, -300] * 3})
    audit = audit_bias(y_true, y_pred, groups, TENURE, unit="kg/ha")

    assert audit.passed is False
    assert audit.n == 12
    (tenure,) = audit.subgroups
    assert tenure.subgroup == "tenure"
    assert tenure.column == "farm.tenure"
    assert tenure.passed is False
    assert tenure.mae_ratio == pytest.approx(1 / 3)
    assert tenure.mae_gap == pytest.approx(200.0)
    assert tenure.signed_residual_gap == pytest.approx(0.0)
    owner, tenant = tenure.groups
    assert (owner.group, owner.n, owner.mae, owner.status) == ("owner", 6, 100.0, "ok")
    assert (tenant.group, tenant.n, tenant.mae, tenant.status) == ("tenant", 6, 300.0, "ok")
    assert owner.mean_signed_residual == pytest.approx(0.0)
    assert owner.mean_prediction == pytest.approx(4000.0)
    assert owner.mean_actual == pytest.approx(4000.0)
    assert len(audit.reasons) == 1
    reason = audit.reasons[0]
    assert reason.startswith("tenure: MAE ratio 0.333 < 0.5")
    assert "'tenant'" in reason and "'owner'" in reason


def test_signed_residual_gap_fails_when_one_group_is_over_predicted() -> None:
    # REG-5: owner +600 (over-predicted), tenant -600 -> equal MAE (ratio 1.0) but
    # signed gap = 600 - (-600) = 1200 kg/ha = 1200 / 4000 = 30 % of mean actual > 25 %.
    y_true, y_pred, groups = _case({"owner": [600.0] * 5, "tenant": [-600.0] * 5})
    audit = audit_bias(y_true, y_pred, groups, TENURE, unit="kg/ha")
    (tenure,) = audit.subgroups
    assert tenure.mae_ratio == pytest.approx(1.0)
    assert tenure.signed_residual_gap == pytest.approx(1200.0)
    assert tenure.passed is False
    assert audit.passed is False
    assert "tenure: signed residual gap 1,200.0 kg/ha = 30.0% of mean actual" in audit.reasons[0]


def test_signed_residual_gap_at_threshold_passes() -> None:
    # gap = 500 - (-500) = 1000 = exactly 25 % of 4000 -> "<=" threshold -> pass
    y_true, y_pred, groups = _case({"owner": [500.0] * 5, "tenant": [-500.0] * 5})
    assert audit_bias(y_true, y_pred, groups, TENURE, unit="kg/ha").passed is True


def test_parity_case_passes() -> None:
    y_true, y_pred, groups = _case({"owner": [200, -200] * 3, "tenant": [-200, 200] * 3})
    audit = audit_bias(y_true, y_pred, groups, TENURE, unit="kg/ha")
    assert audit.passed is True
    assert audit.reasons == ()
    (tenure,) = audit.subgroups
    assert tenure.passed is True
    assert tenure.mae_ratio == pytest.approx(1.0)
    assert tenure.mae_gap == pytest.approx(0.0)


def test_small_group_reported_too_small_and_excluded() -> None:
    # 'mixed' has 2 rows (< 5) with errors of 5000 kg/ha; it must not fail the audit.
    y_true, y_pred, groups = _case(
        {"owner": [200, -200] * 3, "tenant": [-200, 200] * 3, "mixed": [5000.0, 5000.0]}
    )
    audit = audit_bias(y_true, y_pred, groups, TENURE, unit="kg/ha")
    (tenure,) = audit.subgroups
    by_group = {g.group: g for g in tenure.groups}
    assert by_group["mixed"].status == "not_assessable"
    assert tenure.not_assessable_groups == ("mixed",)
    assert by_group["mixed"].n == 2
    assert by_group["mixed"].mae == pytest.approx(5000.0)
    assert by_group["owner"].status == "ok"
    assert tenure.mae_ratio == pytest.approx(1.0)  # computed over owner and tenant only
    assert tenure.passed is True
    assert audit.passed is True
    assert audit.reasons == ("tenure: excluded group(s) below min size 5: 'mixed' (n=2)",)


def test_not_assessable_subgroup_does_not_fail_but_is_listed() -> None:
    y_true, y_pred, groups = _case({"owner": [200, -200] * 3, "tenant": [100.0, 100.0]})
    groups["farm.variety"] = ["high"] * 8  # a single variety
    audit = audit_bias(y_true, y_pred, groups, {"tenure": "farm.tenure", "variety": "farm.variety"}, unit="kg/ha")
    tenure, variety = audit.subgroups
    assert tenure.passed is None
    assert tenure.mae_ratio is None and tenure.mae_gap is None and tenure.signed_residual_gap is None
    assert variety.passed is None
    # nothing could be assessed: inconclusive, never a vacuous pass (the REG-5 gate stays closed)
    assert audit.verdict == "inconclusive" and audit.passed is False
    assert any(r.startswith("tenure: not assessable") for r in audit.reasons)
    assert any(r.startswith("variety: not assessable") for r in audit.reasons)
    assert "inconclusive, not a pass" in audit.reasons[-1]


def test_one_failing_subgroup_fails_the_audit() -> None:
    y_true, y_pred, groups = _case({"owner": [100, -100] * 3, "tenant": [300, -300] * 3})
    groups["farm.variety"] = ["high", "trad"] * 6  # each variety: 3 owner rows + 3 tenant rows -> MAE 200
    audit = audit_bias(y_true, y_pred, groups, {"variety": "farm.variety", "tenure": "farm.tenure"}, unit="kg/ha")
    variety, tenure = audit.subgroups
    assert variety.passed is True
    assert variety.groups[0].mae == pytest.approx(200.0)
    assert tenure.passed is False
    assert audit.passed is False


def test_missing_group_values_form_their_own_group() -> None:
    y_true, y_pred, groups = _case({"owner": [100.0] * 5, "tenant": [100.0] * 5})
    groups["farm.tenure"] = groups["farm.tenure"].astype(object)
    groups.iloc[:5, 0] = None
    audit = audit_bias(y_true, y_pred, groups, TENURE, unit="kg/ha")
    assert [g.group for g in audit.subgroups[0].groups] == [MISSING_GROUP, "tenant"]


def test_custom_thresholds() -> None:
    # ratio 1/3 passes a tenant-configured min_mae_ratio of 0.3
    y_true, y_pred, groups = _case({"owner": [100, -100] * 3, "tenant": [300, -300] * 3})
    thresholds = BiasThresholds(min_group_size=6, min_mae_ratio=0.3)
    audit = audit_bias(y_true, y_pred, groups, TENURE, thresholds, unit="kg/ha")
    assert audit.passed is True
    assert audit.thresholds is thresholds
    # with min_group_size 7 neither 6-row group is assessable
    audit = audit_bias(y_true, y_pred, groups, TENURE, BiasThresholds(min_group_size=7), unit="kg/ha")
    assert audit.subgroups[0].passed is None


def test_thresholds_validation() -> None:
    with pytest.raises(ValueError, match="min_group_size"):
        BiasThresholds(min_group_size=0)
    with pytest.raises(ValueError, match="min_mae_ratio"):
        BiasThresholds(min_mae_ratio=1.5)
    with pytest.raises(ValueError, match="max_signed_residual_gap"):
        BiasThresholds(max_signed_residual_gap=-0.1)


def test_to_dict_is_strict_json() -> None:
    y_true, y_pred, groups = _case({"owner": [100, -100] * 3, "tenant": [300, -300] * 3, "mixed": [1.0]})
    groups["farm.variety"] = "high"
    audit = audit_bias(y_true, y_pred, groups, {"tenure": "farm.tenure", "variety": "farm.variety"}, unit="kg/ha")
    d = audit.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert back["passed"] is False
    assert back["verdict"] == "fail"
    assert back["thresholds"] == {"min_group_size": 5, "min_mae_ratio": 0.5, "max_signed_residual_gap": 0.25,
                                  "alpha": 0.05, "n_bootstrap": 2000, "seed": 20240601, "window_seasons": 3}
    assert back["subgroups"][0]["groups"][0]["group"] == "mixed"
    assert back["subgroups"][1]["mae_ratio"] is None


def test_markdown_table() -> None:
    y_true, y_pred, groups = _case({"owner": [100, -100] * 3, "tenant": [300, -300] * 3})
    md = audit_bias(y_true, y_pred, groups, TENURE, unit="kg/ha").markdown_table()
    assert "| tenure | owner | 6 | 100.0 [100, 100] | 0.50 [0.50, 0.50] | +0.0 [" in md
    assert "| tenure | tenant | 6 | 300.0 [300, 300] | 1.50 [1.50, 1.50] | +0.0 [" in md
    assert "| 4,000.0 | 4,000.0 | ok |" in md
    assert "| tenure | farm.tenure | 0.333 [0.33, 0.33] | 200.0 | 0.0 [" in md and "| fail |" in md
    assert "FAIL" in md


def test_audit_input_errors() -> None:
    y_true, y_pred, groups = _case({"owner": [1.0] * 5, "tenant": [1.0] * 5})
    with pytest.raises(ValueError, match=r"'farm\.village' \(subgroup 'village'\)"):
        audit_bias(y_true, y_pred, groups, {"village": "farm.village"}, unit="kg/ha")
    with pytest.raises(ValueError, match="length mismatch"):
        audit_bias(y_true, y_pred[:-1], groups, TENURE, unit="kg/ha")
    with pytest.raises(ValueError, match="length mismatch"):
        audit_bias(y_true, y_pred, groups.iloc[:-1], TENURE, unit="kg/ha")
    with pytest.raises(ValueError, match="subgroup_columns is empty"):
        audit_bias(y_true, y_pred, groups, {}, unit="kg/ha")
    with pytest.raises(ValueError, match=r"y_pred contains 1 non-finite"):
        audit_bias(y_true, np.r_[y_pred[:-1], np.nan], groups, TENURE, unit="kg/ha")


def test_bias_audit_is_frozen() -> None:
    y_true, y_pred, groups = _case({"owner": [1.0] * 5, "tenant": [1.0] * 5})
    audit: BiasAudit = audit_bias(y_true, y_pred, groups, TENURE, unit="kg/ha")
    with pytest.raises(AttributeError):
        audit.passed = False  # type: ignore[misc]


# --------------------------------------------------------------------------------------------------
# size_class
# --------------------------------------------------------------------------------------------------

EDGES = [0.0, 0.5, 1.0, float("inf")]
LABELS = ["small", "medium", "large"]


def test_size_class_right_open_bins() -> None:
    classes = size_class([0.0, 0.2, 0.5, 0.99, 1.0, 3.0], EDGES, LABELS)
    assert classes.tolist() == ["small", "small", "medium", "medium", "large", "large"]
    assert classes.shape == (6,)


def test_size_class_errors() -> None:
    with pytest.raises(ValueError, match=r"len\(labels\) must be len\(edges\) - 1 = 3, got 2"):
        size_class([0.2], EDGES, ["small", "large"])
    with pytest.raises(ValueError, match="1 size value"):
        size_class([-0.1, 0.2], EDGES, LABELS)
    with pytest.raises(ValueError, match="2 size value"):
        size_class([np.nan, 1.0, 2.0], [0.0, 1.0, 2.0], ["a", "b"])  # NaN and 2.0 (right-open top)
    with pytest.raises(ValueError, match="strictly increasing"):
        size_class([0.2], [0.0, 1.0, 1.0], ["a", "b"])


def test_tables_and_reasons_name_the_specs_unit_reg5() -> None:
    """REG-5: the audit is in the unit of the model spec's target (a barley spec's bu/ac), never a hard-coded
    kg/ha: the tables, every reason (MAE-ratio and signed-residual-gap failures) and the signed dict."""
    # tenant: MAE 300 (ratio 1/3 fails); share: over-predicted by 2,000 = 50 % of the mean (gap fails)
    y_true, y_pred, groups = _case({"owner": [100, -100] * 3, "tenant": [300, -300] * 3, "share": [2000.0] * 6})
    audit = audit_bias(y_true, y_pred, groups, TENURE, unit="bu/ac")
    assert audit.verdict == "fail" and audit.unit == "bu/ac" and audit.to_dict()["unit"] == "bu/ac"
    assert any("MAE ratio" in r and "bu/ac" in r for r in audit.reasons)
    assert any("signed residual gap" in r and "bu/ac" in r for r in audit.reasons)
    md = audit.markdown_table()
    assert "| MAE (bu/ac) [95% CI] |" in md and "| MAE gap (bu/ac) | Signed residual gap (bu/ac) [CI] |" in md
    assert "kg/ha" not in md + " ".join(audit.reasons)


def test_group_statistics_equal_fairlearns_metricframe_reg5() -> None:
    """REG-5: every group's n, MAE, mean signed residual, mean prediction and mean actual equal what fairlearn's
    ``MetricFrame`` computes with those five metrics, on unequal random groups in a shuffled order with missing
    values, a numeric subgroup column and a non-default index — so the means computed beside the MetricFrame can
    never be attached to the wrong group."""
    from fairlearn.metrics import MetricFrame, count, mean_prediction
    from sklearn.metrics import mean_absolute_error

    rng = np.random.default_rng(11)
    n = 97
    y_true = rng.normal(4000, 900, n)
    y_pred = y_true + rng.normal(150, 600, n)
    tenure = rng.choice(np.array(["owner", "share-cropper", "tenant", None], dtype=object), n, p=[0.5, 0.3, 0.15, 0.05])
    variety = rng.choice([64, 42, 7], n)
    groups = pd.DataFrame({"farm.tenure": tenure, "variety": variety}, index=rng.permutation(np.arange(500, 500 + n)))
    audit = audit_bias(y_true, y_pred, groups, {"tenure": "farm.tenure", "variety": "variety"},
                       BiasThresholds(min_group_size=1), unit="kg/ha")

    metrics = {
        "n": count,
        "mae": mean_absolute_error,
        "mean_signed_residual": lambda t, p: float(np.mean(np.asarray(p) - np.asarray(t))),
        "mean_prediction": mean_prediction,
        "mean_actual": lambda t, p: float(np.mean(t)),
    }
    checked = 0
    for result, column in ((audit.subgroups[0], "farm.tenure"), (audit.subgroups[1], "variety")):
        labels = groups[column].astype(object).where(groups[column].notna(), MISSING_GROUP).map(str)
        expected = MetricFrame(metrics=metrics, y_true=y_true, y_pred=y_pred,
                               sensitive_features=labels.reset_index(drop=True)).by_group
        assert sorted(g.group for g in result.groups) == sorted(str(k) for k in expected.index)
        for g in result.groups:
            row = expected.loc[g.group]
            assert g.n == row["n"]
            for name in ("mae", "mean_signed_residual", "mean_prediction", "mean_actual"):
                assert getattr(g, name) == pytest.approx(row[name], rel=1e-12), (result.subgroup, g.group, name)
            checked += 1
    assert checked == 7  # 4 tenure groups (one of them <missing>) + 3 varieties
