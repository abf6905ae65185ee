"""A newer candidate supersedes the tenant's undecided SHADOW/CANARY versions (REG-3, RET-10)."""

from __future__ import annotations

from rai_assets.adapters.ledger import models
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets_tests.ledger.ledger_builders import (
    S,
    ensure_season,
    insert_snapshot,
    new_draft,
    setup_tenant,
    sha,
    walk,
)

LIVE = (S.TRAINING, S.VALIDATED, S.SHADOW)


def _model(conn, tenant: str, name: str, path: tuple) -> models.ModelVersion:
    insert_snapshot(conn, tenant, sha(name))
    model = walk(conn, new_draft(conn, tenant, sha(name)), (S.TRAINING,))
    model = models.transition(conn, model, S.VALIDATED, reason="registered", mlflow_model_name=f"m-{name}",
                              mlflow_version=1)
    return walk(conn, model, path)


def test_supersede_deprecates_live_challengers_or_only_the_named_refits(ledger: LedgerResource, suffix: str):
    tenant = f"sup-{suffix}"
    setup_tenant(ledger, tenant)
    with ledger.connect(tenant) as conn:
        shadow = _model(conn, tenant, f"a{suffix}", (S.SHADOW,))
        canary = _model(conn, tenant, f"b{suffix}", (S.SHADOW, S.CANARY))
        other = _model(conn, tenant, f"c{suffix}", (S.SHADOW,))
        newer = _model(conn, tenant, f"d{suffix}", ())
        # only the named refits (the refit path): the other recipe's SHADOW version stays live
        done = models.supersede_live_challengers(conn, newer, reason="refit serves", only_refs={shadow.mlflow_ref,
                                                                                                 canary.mlflow_ref})
        assert {m.model_id for m in done} == {shadow.model_id, canary.model_id}
        assert models.get_model(conn, other.model_id).state is S.SHADOW
        # every live challenger (the gated path), never the superseding version itself
        done = models.supersede_live_challengers(conn, newer, reason="newer candidate")
        assert [m.model_id for m in done] == [other.model_id]
        assert models.get_model(conn, newer.model_id).state is S.VALIDATED
        assert all(models.get_model(conn, m.model_id).state is S.DEPRECATED for m in (shadow, canary, other))
        assert models.state_history(conn, other.model_id)[-1][1:] == ("DEPRECATED", "newer candidate")


def test_lineage_fits_are_the_older_refits_of_the_same_recipe_by_season(ledger: LedgerResource, suffix: str):
    """The bias audit's backtests use the recipe's own refits (RET-10 lineage): same registered model, kind,
    cohort, code and spec; older versions only; another recipe's version is not one of them."""
    tenant = f"lin-{suffix}"
    setup_tenant(ledger, tenant)
    for i, season in enumerate((f"a{suffix}", f"b{suffix}", f"c{suffix}"), start=2):
        ensure_season(ledger, season, i, tenant=tenant)

    def fit(conn, season: str, version: int, code: str, name: str = "m") -> models.ModelVersion:
        insert_snapshot(conn, tenant, sha(f"{season}{code}{version}"), season=season)
        model = walk(conn, new_draft(conn, tenant, sha(f"{season}{code}{version}"), season=season, code_version=code),
                     (S.TRAINING,))
        return models.transition(conn, model, S.VALIDATED, reason="registered", mlflow_model_name=name,
                                 mlflow_version=version)

    with ledger.connect(tenant) as conn:
        first = fit(conn, f"a{suffix}", 1, "code-1")
        second = fit(conn, f"b{suffix}", 2, "code-1")
        fit(conn, f"b{suffix}", 3, "code-2")  # another recipe (other training code)
        newest = fit(conn, f"c{suffix}", 4, "code-1")
        found = models.lineage_fits(conn, newest)
    assert {s: m.model_id for s, m in found.items()} == {f"a{suffix}": first.model_id, f"b{suffix}": second.model_id}
