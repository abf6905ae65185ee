"""Planning and driving season waves (issue 12 goal 4): runs per season, cohorts kept together, seasons in order,
a failed wave stops only its own tenants' later seasons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from rai_assets.backfill.driver import run_season_backfill, wave_run_config, wave_tags
from rai_assets.backfill.plan import Wave, plan_waves
from rai_assets.domain.ids import InvalidIdentifierError

TENANTS = [f"t{i:03d}" for i in range(10)]


def test_a_few_runs_per_season_not_one_per_partition():
    waves = plan_waves(TENANTS, ["s01", "s02", "s03"], tenants_per_run=4)
    assert [[w.tenants for w in season] for season in waves] == [[
        tuple(TENANTS[:4]), tuple(TENANTS[4:8]), tuple(TENANTS[8:])]] * 3
    assert [w.season for season in waves for w in season] == ["s01"] * 3 + ["s02"] * 3 + ["s03"] * 3
    assert waves[1][2].label == "s02 wave 3/3"
    assert sorted(t for w in waves[0] for t in w.tenants) == TENANTS  # every tenant exactly once a season


def test_a_cohort_shares_a_run_even_past_the_size():
    cohort_of = {"t001": "north", "t007": "north", "t008": "north", "t002": "south", "t003": "south"}
    waves = plan_waves(TENANTS, ["s01"], tenants_per_run=2, cohort_of=cohort_of)[0]
    runs = [w.tenants for w in waves]
    assert ("t001", "t007", "t008") in runs and ("t002", "t003") in runs
    assert all(len(r) <= 2 for r in runs if r != ("t001", "t007", "t008"))
    assert sorted(t for r in runs for t in r) == TENANTS


@pytest.mark.parametrize(("tenants", "seasons", "size", "message"), [
    (TENANTS, ["s01"], 0, "tenants_per_run must be at least 1"),
    ([], ["s01"], 5, "needs tenants and seasons"),
    (TENANTS, [], 5, "needs tenants and seasons"),
    (["a", "b", "a"], ["s01"], 5, "tenant 'a' is named twice"),
    (TENANTS, ["s01", "s01"], 5, "season 's01' is named twice"),
])
def test_bad_plans_are_refused_with_the_reason(tenants, seasons, size, message):
    with pytest.raises(ValueError, match=message):
        plan_waves(tenants, seasons, size)


def test_ids_are_validated():
    with pytest.raises(InvalidIdentifierError):
        plan_waves(["Not A Slug"], ["s01"], 5)


class RecordingLauncher:
    """Launches nothing: records the waves in launch order; the runs of ``failing`` (labels) fail."""

    def __init__(self, failing: set[str]) -> None:
        self.failing, self.launched, self.waited = failing, [], []

    def launch(self, wave: Wave, tags: Mapping[str, str]) -> str:
        self.launched.append((wave, dict(tags)))
        return f"run-{len(self.launched)}"

    def wait(self, run_ids: Sequence[str]) -> dict[str, bool]:
        self.waited.append(list(run_ids))
        by_id = {f"run-{i + 1}": w for i, (w, _) in enumerate(self.launched)}
        return {r: by_id[r].label not in self.failing for r in run_ids}


def test_the_driver_waits_for_a_season_and_stops_only_a_failed_waves_tenants():
    waves = plan_waves(TENANTS[:6], ["s01", "s02", "s03"], tenants_per_run=2)
    launcher = RecordingLauncher(failing={"s02 wave 2/3"})
    report = run_season_backfill(launcher, waves, backfill_id="bf1", progress=lambda _: None)

    # each season's runs are launched together and waited for before the next season's
    assert [len(w) for w in launcher.waited] == [3, 3, 2]
    assert [w.season for w, _ in launcher.launched] == ["s01"] * 3 + ["s02"] * 3 + ["s03"] * 2
    # the failed wave's tenants get no later season; the others go on
    assert report.stopped == {"t002": "s02 wave 2/3 (run run-5) failed", "t003": "s02 wave 2/3 (run run-5) failed"}
    assert [w.tenants for w, _ in launcher.launched[6:]] == [("t000", "t001"), ("t004", "t005")]
    assert not report.succeeded and len(report.runs) == 8
    wave, tags = launcher.launched[0]
    assert tags == {"rai/backfill": "bf1", "rai/season": "s01", "rai/wave": "1/3", "rai/trigger": "season-backfill",
                    "rai/tenants": "2"}
    assert wave_run_config(wave) == {"ops": {"season_wave": {"config": {"season": "s01", "tenants": ["t000", "t001"]}}}}
    assert wave_tags(wave, "bf1")["rai/backfill"] == "bf1"
