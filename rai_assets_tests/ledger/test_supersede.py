"""A newer candidate supersedes the tenant's undecided SHADOW/CANARY versions (REG-3, RET-10)."""

from __future__ import annotations

from rai_assets.adapters.ledger import models
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets_tests.ledger.ledger_builders import S, insert_snapshot, new_draft, setup_tenant, sha, walk

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
