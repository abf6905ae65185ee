"""Staged promotion with the always-valid canary test on synthetic tenants (RET-7, RET-8).

Each tenant's champion is trained on season 1 and judged on season 2; the candidate of season 3
is trained on seasons 1–2 and goes shadow → canary on season 3's fields:
- truly better: season 1 had depressed yields, so the champion under-forecasts → promoted;
- truly worse: season 2's yields are corrupted, so the candidate over-forecasts → canary aborted;
- equal seasons on few fields: the evidence is below the minimum sample or not significant → no
  decision, the candidate stays CANARY.
"""

from __future__ import annotations

import pytest
from dagster import DagsterInstance, materialize

from rai_assets.adapters.ledger import artifacts, audit, loop
from rai_assets.adapters.ledger import models as model_store
from rai_assets.assets.model_promotion import model_promotion
from rai_assets.assets.partitions import partition_key
from rai_assets.definitions import ALL_ASSETS
from rai_assets.demo.synthetic import SeasonShape
from rai_assets.domain.lifecycle import ModelState
from rai_assets_tests.governance.test_integrity import overwrite
from rai_assets_tests.loop.synthetic_tenant import ensure_recipe_champion, land_synthetic_tenant, run_seasons

NORMAL = SeasonShape()


def _run(resources, tenant, shapes, n_fields, tmp_path):
    instance = DagsterInstance.ephemeral()
    seasons = land_synthetic_tenant(resources, instance, tenant, shapes, n_fields, tmp_path / "keys")
    run_seasons(resources, instance, tenant, seasons[:2])
    champion = ensure_recipe_champion(resources, tenant, seasons[1])  # whatever the naive comparison said
    run_seasons(resources, instance, tenant, seasons[2:])
    with resources["ledger"].connect(tenant) as conn:
        candidate = model_store.latest_model_for_partition(conn, tenant, seasons[2])
        decisions = loop.promotion_decisions(conn, tenant, candidate.model_id)
        now_champion = model_store.get_champion(conn, tenant)
        chain_ok = audit.verify_chain(conn, tenant).ok
    return champion, candidate, decisions, now_champion, chain_ok


def test_truly_better_candidate_is_promoted(resources, suffix, tmp_path):
    tenant = f"better-{suffix}"
    old, candidate, decisions, champion, chain_ok = _run(
        resources, tenant, [SeasonShape(yield_factor=0.55), NORMAL, NORMAL], 700, tmp_path)
    assert [d["stage"] for d in decisions] == ["shadow", "canary"]
    canary = decisions[-1]
    assert canary["decision"] == "promote", canary["evidence"]
    assert canary["p_value"] < 0.05 and canary["sample_size"] >= 30 and canary["statistic"] > 0
    assert candidate.state is ModelState.CHAMPION and champion.model_id == candidate.model_id
    with resources["ledger"].connect(tenant) as conn:
        assert model_store.get_model(conn, old.model_id).state is ModelState.DEPRECATED
    assert resources["mlflow_registry"].champion_version(tenant) == candidate.mlflow_version
    assert chain_ok


def test_truly_worse_candidate_is_rolled_back(resources, suffix, tmp_path):
    tenant = f"worse-{suffix}"
    old, candidate, decisions, champion, chain_ok = _run(
        resources, tenant, [NORMAL, SeasonShape(yield_factor=1.6, yield_noise=0.5), NORMAL], 700, tmp_path)
    canary = decisions[-1]
    assert canary["decision"] == "rollback", canary["evidence"]
    assert canary["p_value"] < 0.05 and canary["statistic"] < 0
    assert candidate.state is ModelState.DEPRECATED
    assert champion.model_id == old.model_id  # the champion never changed
    with resources["ledger"].connect(tenant) as conn:
        assert loop.last_rollback(conn, tenant) is not None  # the abort is audited and starts the cooldown
    assert chain_ok


@pytest.mark.parametrize("n_fields", [56])
def test_no_decision_until_the_sample_suffices(resources, suffix, tmp_path, n_fields):
    tenant = f"equal-{suffix}"
    old, candidate, decisions, champion, chain_ok = _run(resources, tenant, [NORMAL, NORMAL, NORMAL], n_fields,
                                                         tmp_path)
    canary = decisions[-1]
    # equal models on a small slice: either below the minimum sample or not significant — no decision either way
    assert canary["decision"] in ("insufficient_sample", "continue"), canary["evidence"]
    if canary["decision"] == "continue":
        assert canary["sample_size"] >= 30 and canary["p_value"] >= 0.05
    else:
        assert canary["sample_size"] < 30
    assert candidate.state is ModelState.CANARY and champion.model_id == old.model_id
    assert chain_ok
    # the canary serves a slice of the *next* seasons' fields: season 3 was served before its labels were read
    # (and its labels decided SHADOW → CANARY), so no canary forecast of season 3 may exist
    with resources["ledger"].connect(tenant) as conn:
        rows = artifacts.served_forecasts(conn, tenant, candidate.season_id)
    served = {(r["source"], r["model_version"]) for r in rows}
    assert served == {("champion", old.mlflow_version)}


def test_degraded_new_champion_is_rolled_back_at_once(resources, suffix, tmp_path):
    """RET-8: the canary winner of season 3 degrades on season 4 (yields collapse):
    the promotion step rolls back to the previous champion at once, audits it and starts the cooldown."""
    tenant = f"degrade-{suffix}"
    depressed = SeasonShape(yield_factor=0.55)
    collapse = SeasonShape(yield_factor=0.35)  # season 4: yields collapse, the new champion's MAE degrades
    instance = DagsterInstance.ephemeral()
    seasons = land_synthetic_tenant(resources, instance, tenant, [depressed, NORMAL, NORMAL, collapse], 700,
                                    tmp_path / "keys")
    run_seasons(resources, instance, tenant, seasons[:2])
    first = ensure_recipe_champion(resources, tenant, seasons[1])
    run_seasons(resources, instance, tenant, seasons[2:3])
    with resources["ledger"].connect(tenant) as conn:
        winner = model_store.get_champion(conn, tenant)
    assert winner.model_id != first.model_id, "setup: season 3's candidate should win its canary"
    run_seasons(resources, instance, tenant, seasons[3:])
    with resources["ledger"].connect(tenant) as conn:
        champion = model_store.get_champion(conn, tenant)
        decisions = loop.promotion_decisions(conn, tenant)
        rollbacks = [d for d in decisions if d["stage"] == "rollback"]
        served = artifacts.forecasting_model(conn, tenant, seasons[3])
        assert loop.last_rollback(conn, tenant) is not None
        assert audit.verify_chain(conn, tenant).ok
    # whoever served season 4 degraded on it: the winner itself, or its refit when the winner's canary evidence
    # made the refit non-inferior (serving_model) — either is rolled back at once to the champion before it
    expected = (first.model_id, winner.model_id) if served == winner.model_id else (winner.model_id, served)
    assert [(d["candidate_model_id"], d["champion_model_id"]) for d in rollbacks] == [expected]
    if served != winner.model_id:
        assert champion.model_id == winner.model_id  # the degraded refit is gone; the winner serves again
    elif champion.model_id != first.model_id:
        # after the rollback, season 4's candidate (a refit of the winner's recipe, RET-10 lineage) may win
        # against the restored champion on its own evidence: then that decision follows the rollback
        later = [d for d in decisions if d["decision_id"] > rollbacks[0]["decision_id"]]
        assert [(d["decision"], d["candidate_model_id"], d["champion_model_id"]) for d in later
                if d["stage"] == "canary"] == [("promote", champion.model_id, first.model_id)]
    assert resources["mlflow_registry"].champion_version(tenant) == champion.mlflow_version


def test_promotion_verifies_the_stored_bias_audit_when_it_acts(resources, suffix, tmp_path):
    """REG-5 / issue 8 item 11: the bias audit object is edited after it was written and verified; the
    promotion step reads it back when it acts, refuses SHADOW and records the failed integrity check."""
    tenant = f"tamper-{suffix}"
    instance = DagsterInstance.ephemeral()
    seasons = land_synthetic_tenant(resources, instance, tenant, [NORMAL, NORMAL, NORMAL], 300, tmp_path / "keys")
    run_seasons(resources, instance, tenant, seasons[:2])
    ensure_recipe_champion(resources, tenant, seasons[1])
    key = partition_key(tenant, seasons[2])
    before_promotion = [a for a in ALL_ASSETS if a.key.to_user_string() != "model_promotion"]
    assert materialize(ALL_ASSETS, partition_key=key, resources=resources, instance=instance,
                       selection=before_promotion).success
    with resources["ledger"].connect(tenant) as conn:
        candidate = model_store.latest_model_for_partition(conn, tenant, seasons[2])
        row = artifacts.latest_signed(conn, "bias_audits", tenant, seasons[2])
    assert row["passed"] and row["model_id"] == candidate.model_id, "setup: the candidate's audit should pass"
    store = resources["object_store"]
    original = store.get_bytes(row["object_key"])
    overwrite(store, row["object_key"], original.replace(b'"passed":true', b'"passed":false'))
    assert materialize(ALL_ASSETS, partition_key=key, resources=resources, instance=instance,
                       selection=[model_promotion]).success
    with resources["ledger"].connect(tenant) as conn:
        decisions = [d["decision"] for d in loop.promotion_decisions(conn, tenant, candidate.model_id)
                     if d["stage"] == "shadow"]
        state = model_store.get_model(conn, candidate.model_id).state
        failed = conn.execute("SELECT count(*) AS n FROM integrity_checks WHERE tenant_id = %s AND artifact_sha256 = %s"
                              " AND NOT verified", (tenant, row["body_sha256"])).fetchone()["n"]
    assert decisions == ["refused: stored bias audit does not verify"]
    assert state is ModelState.VALIDATED and failed == 1
