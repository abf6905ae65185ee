"""A refit of the champion's recipe serves the next season only on non-inferiority evidence (issue 7).

Synthetic tenants (resampled RiceFarms rows, 300 fields a season). The champion is the season-2
candidate; season 3's candidate (a refit of the same recipe) is judged on season 3 and its paired
evidence against the champion is the recipe's refit history. Before season 4's forecasts:
- stable seasons: refits are as good as the fits they replace → season 4's refit serves season 4
  (VALIDATED → SHADOW → CANARY → CHAMPION, pre-serve bias audit, test in the audit log);
- season 2 corrupted: the season-3 refit (trained on it) was clearly worse → no refit serves.
"""

from __future__ import annotations

from dagster import DagsterInstance

from rai_assets.adapters.ledger import artifacts, audit, loop
from rai_assets.adapters.ledger import models as model_store
from rai_assets.demo.synthetic import SeasonShape
from rai_assets.domain.lifecycle import ModelState
from rai_assets_tests.loop.synthetic_tenant import ensure_recipe_champion, land_synthetic_tenant, run_seasons

NORMAL = SeasonShape()
FIELDS = 300


def _through_season_three(resources, tenant, shapes, tmp_path):
    instance = DagsterInstance.ephemeral()
    seasons = land_synthetic_tenant(resources, instance, tenant, shapes, FIELDS, tmp_path / "keys")
    run_seasons(resources, instance, tenant, seasons[:2])
    ensure_recipe_champion(resources, tenant, seasons[1])
    run_seasons(resources, instance, tenant, seasons[2:3])
    with resources["ledger"].connect(tenant) as conn:
        before = model_store.get_champion(conn, tenant)
    run_seasons(resources, instance, tenant, seasons[3:])
    return seasons, before


def test_a_refit_of_the_champions_recipe_serves_on_non_inferiority_evidence(resources, suffix, tmp_path):
    # REQ: RET-7, RET-10, REG-5
    tenant = f"refit-{suffix}"
    seasons, before = _through_season_three(resources, tenant, [NORMAL] * 4, tmp_path)
    with resources["ledger"].connect(tenant) as conn:
        refit = model_store.latest_model_for_partition(conn, tenant, seasons[3])
        decisions = [d for d in loop.promotion_decisions(conn, tenant, refit.model_id) if d["stage"] == "refit"]
        served_by = artifacts.forecasting_model(conn, tenant, seasons[3])
        history = model_store.state_history(conn, refit.model_id)
        audits = conn.execute("SELECT body FROM bias_audits WHERE tenant_id = %s AND model_id = %s",
                              (tenant, refit.model_id)).fetchall()
        evidence = conn.execute(
            "SELECT candidate_ref, champion_ref, cardinality(differences) AS n FROM promotion_evidence"
            " WHERE tenant_id = %s AND season_id = %s", (tenant, seasons[3])).fetchall()
        chain_ok = audit.verify_chain(conn, tenant).ok
        now = model_store.get_model(conn, refit.model_id)
    assert [d["decision"] for d in decisions] == ["refit"], decisions
    decision = decisions[0]
    assert decision["champion_model_id"] == before.model_id
    assert decision["p_value"] < 0.05 and decision["sample_size"] == FIELDS
    assert decision["evidence"]["pre_serve_bias_audit"]
    # the refit served the season it was trained for, and nothing of that season decided it
    assert served_by == refit.model_id
    pre_serve = [a["body"] for a in audits if a["body"]["scope"].startswith("pre-serve")]
    assert pre_serve and all(w["season"] != seasons[3] for w in pre_serve[0]["window"])
    assert [h[1] for h in history][-3:] == ["SHADOW", "CANARY", "CHAMPION"]
    assert "non-inferior" in history[-1][2] and "p=" in history[-1][2]
    # after the season's labels: the replaced fit was scored as more refit evidence; the refit kept serving
    assert {(r["candidate_ref"], r["champion_ref"]) for r in evidence} >= {(refit.mlflow_ref, before.mlflow_ref)}
    assert now.state is ModelState.CHAMPION
    assert resources["mlflow_registry"].champion_version(tenant) == refit.mlflow_version
    assert chain_ok


def test_no_refit_serves_when_the_recipes_refits_were_worse(resources, suffix, tmp_path):  # REQ: RET-7
    tenant = f"norefit-{suffix}"
    corrupted = SeasonShape(yield_factor=1.6, yield_noise=0.5)  # season 2: whatever trains on it over-forecasts
    seasons, before = _through_season_three(resources, tenant, [NORMAL, corrupted, NORMAL, NORMAL], tmp_path)
    with resources["ledger"].connect(tenant) as conn:
        candidate = model_store.latest_model_for_partition(conn, tenant, seasons[3])
        decisions = [d for d in loop.promotion_decisions(conn, tenant, candidate.model_id) if d["stage"] == "refit"]
        served_by = artifacts.forecasting_model(conn, tenant, seasons[3])
    assert [d["decision"] for d in decisions] == ["refit: champion keeps serving"], decisions
    assert decisions[0]["p_value"] >= 0.05 and decisions[0]["sample_size"] == FIELDS
    assert served_by == before.model_id != candidate.model_id
