"""What a backfill must reproduce: a tenant's registry history, read from the ledger."""

from __future__ import annotations

from typing import Any

from rai_assets.adapters.ledger.resource import LedgerResource


def registry_history(ledger: LedgerResource, tenant: str) -> dict[str, list[tuple[Any, ...]]]:
    """The tenant's registry history in a total order, so two deployments compare equal exactly when they hold
    the same history:

    - ``snapshots``: ``(season, Merkle root)`` of every dataset snapshot, by season and root;
    - ``models``: ``(season, snapshot root, MLflow version, state)`` of every model version, by season and MLflow
      version (a season can have several: its candidate and a refit);
    - ``champions``: the season of each model that became champion, in the audit log's order.

    Raises:
        psycopg.Error: the ledger cannot be read.
    """
    with ledger.connect(tenant) as conn:
        snapshots = [(r["season_id"], r["merkle_root"]) for r in conn.execute(
            "SELECT season_id, merkle_root FROM dataset_snapshots WHERE tenant_id = %s ORDER BY season_id, merkle_root",
            (tenant,)).fetchall()]
        models = [(r["season_id"], r["snapshot_root"], r["mlflow_version"], r["state"]) for r in conn.execute(
            "SELECT season_id, snapshot_root, mlflow_version, state FROM model_versions WHERE tenant_id = %s"
            " ORDER BY season_id, mlflow_version, snapshot_root, state", (tenant,)).fetchall()]
        champions = [(r["season_id"],) for r in conn.execute(
            "SELECT m.season_id FROM audit_log a JOIN model_versions m USING (model_id)"
            " WHERE a.tenant_id = %s AND a.after->>'state' = 'CHAMPION' ORDER BY a.seq", (tenant,)).fetchall()]
    return {"snapshots": snapshots, "models": models, "champions": champions}
