"""Racing promotions have a single winner (T-D1-05, REG-4).

Two separate processes (``spawn``) read the same CANARY model version at the same state_version,
meet at a barrier and both promote it to CHAMPION with :func:`models.transition` on their own
connections. Optimistic locking (``WHERE state_version = <read>``) plus the row lock leave exactly
one winner; the loser's UPDATE waits for the winner's commit, then matches no row and raises
:class:`ConcurrentTransitionError`. Afterwards the tenant has exactly one champion, the previous
champion is DEPRECATED and the audit chain verifies.

The same-process variants show the mechanism step by step with two connections: the second
UPDATE is seen waiting on the first's row lock, and updates 0 rows once the first commits.

REQ: REG-3, REG-4, GOV-3
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from rai_assets.adapters.ledger import audit, models
from rai_assets.adapters.ledger.errors import LedgerRefusal
from rai_assets.adapters.ledger.models import ConcurrentTransitionError, ModelVersion
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets_tests.ledger.ledger_builders import (
    PATH_TO,
    S,
    bootstrap,
    drop_ledger_database,
    new_draft,
    new_ledger_database,
    open_conn,
    race_worker,
    setup_tenant,
    walk,
)


@pytest.fixture(scope="module")
def race_ledger(pg_server_url: str) -> Iterator[LedgerResource]:
    ledger = new_ledger_database(pg_server_url)
    yield ledger
    drop_ledger_database(pg_server_url, ledger)


def _champion_and_canaries(ledger: LedgerResource, tenant: str, canaries: int = 1
                           ) -> tuple[ModelVersion, list[ModelVersion]]:
    """A tenant with a bootstrap champion and ``canaries`` CANARY versions."""
    root = setup_tenant(ledger, tenant)
    with ledger.connect(tenant, actor="pipeline") as conn:
        champion = walk(conn, new_draft(conn, tenant, root), PATH_TO[S.VALIDATED])
        champion = bootstrap(conn, champion)
        found = [walk(conn, new_draft(conn, tenant, root), PATH_TO[S.CANARY]) for _ in range(canaries)]
    return champion, found


def _states(ledger: LedgerResource, tenant: str) -> dict[int, str]:
    with ledger.connect_owner() as conn:
        rows = conn.execute("SELECT model_id, state FROM model_versions WHERE tenant_id = %s", (tenant,)).fetchall()
    return {r["model_id"]: r["state"] for r in rows}


def _promotions_to_champion(ledger: LedgerResource, tenant: str, model_id: int) -> list[dict]:
    with ledger.connect(tenant) as conn:
        return list(conn.execute(
            "SELECT actor, db_role, before, after FROM audit_log WHERE tenant_id = %s AND model_id = %s"
            " AND after->>'state' = 'CHAMPION' ORDER BY seq", (tenant, model_id)).fetchall())


def _backend_waits_on_lock(ledger: LedgerResource, pid: int, timeout_s: float = 10.0) -> bool:
    """Whether backend ``pid`` is (or within ``timeout_s`` becomes) blocked on a heavyweight lock."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(ledger.owner_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
            if row is not None and row[0] == "Lock":
                return True
            time.sleep(0.02)
    return False


def test_two_processes_racing_one_promotion_have_a_single_winner(race_ledger: LedgerResource, suffix: str):
    """T-D1-05 / REG-4: of two processes promoting the same CANARY, exactly one wins; the other gets
    ConcurrentTransitionError; one champion remains, the old one is DEPRECATED, the chain verifies."""
    tenant = f"race-{suffix}"
    champion, (canary,) = _champion_and_canaries(race_ledger, tenant)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [ctx.Process(target=race_worker, args=(race_ledger.owner_url, tenant, canary.model_id, barrier, results,
                                                   0.5))
             for _ in range(2)]
    for p in procs:
        p.start()
    try:
        outcomes = [results.get(timeout=90) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs)
    assert all(o[3] == "" or o[1] == "ConcurrentTransitionError" for o in outcomes), [o[3] for o in outcomes]
    # both read the same version before either wrote
    assert [o[2] for o in outcomes] == [canary.state_version] * 2
    assert sorted(o[1] for o in outcomes) == ["ConcurrentTransitionError", "won"]
    winner_pid = next(o[0] for o in outcomes if o[1] == "won")

    states = _states(race_ledger, tenant)
    assert list(states.values()).count("CHAMPION") == 1
    assert states == {champion.model_id: "DEPRECATED", canary.model_id: "CHAMPION"}
    (promotion,) = _promotions_to_champion(race_ledger, tenant, canary.model_id)
    assert promotion["actor"] == f"racer-{winner_pid}" and promotion["db_role"] == "rai_manager"
    assert promotion["after"]["state_version"] == canary.state_version + 1
    with race_ledger.connect(tenant) as conn:
        final = models.get_champion(conn, tenant)
        check = audit.verify_chain(conn, tenant)
    assert final is not None and final.model_id == canary.model_id
    assert check.ok, check.problems


@pytest.mark.parametrize("via", ["raw-update", "models.transition"])
def test_second_update_waits_on_the_row_lock_then_updates_nothing(race_ledger: LedgerResource, suffix: str,
                                                                  via: str):
    """REG-4 (same process): connection 2's promotion blocks on connection 1's row lock; after 1
    commits, 2 re-checks ``state_version`` and updates 0 rows (ConcurrentTransitionError)."""
    tenant = f"lock-{suffix}-{'raw' if via == 'raw-update' else 'api'}"
    champion, (canary,) = _champion_and_canaries(race_ledger, tenant)
    first = open_conn(race_ledger, tenant, role="manager", actor="first")
    second = open_conn(race_ledger, tenant, role="manager", actor="second")
    try:
        read1, read2 = models.get_model(first, canary.model_id), models.get_model(second, canary.model_id)
        assert read1.state_version == read2.state_version == canary.state_version
        models.transition(first, read1, S.CHAMPION, reason="first")  # holds the row lock, not committed
        second_pid = second.info.backend_pid
        outcome: queue.Queue[object] = queue.Queue()

        def promote_second() -> None:
            try:
                if via == "raw-update":
                    cur = second.execute(
                        "UPDATE model_versions SET state = 'CHAMPION', state_version = state_version + 1"
                        " WHERE model_id = %s AND state_version = %s", (read2.model_id, read2.state_version))
                    outcome.put(cur.rowcount)
                else:
                    models.transition(second, read2, S.CHAMPION, reason="second")
                    outcome.put("won")
            except Exception as exc:
                outcome.put(exc)

        worker = threading.Thread(target=promote_second)
        worker.start()
        assert _backend_waits_on_lock(race_ledger, second_pid), "the second UPDATE did not wait on the row lock"
        assert outcome.empty()
        first.commit()
        worker.join(timeout=30)
        result = outcome.get_nowait()
        if via == "raw-update":
            assert result == 0
        else:
            assert isinstance(result, ConcurrentTransitionError), result
        second.commit()
    finally:
        first.close()
        second.close()
    assert _states(race_ledger, tenant) == {champion.model_id: "DEPRECATED", canary.model_id: "CHAMPION"}
    assert [p["actor"] for p in _promotions_to_champion(race_ledger, tenant, canary.model_id)] == ["first"]
    with race_ledger.connect(tenant) as conn:
        assert audit.verify_chain(conn, tenant).ok


def test_stale_read_after_commit_is_refused_without_waiting(race_ledger: LedgerResource, suffix: str):
    """REG-4: a promotion from a version read before another transition committed is refused at once."""
    tenant = f"stale-{suffix}"
    _, (canary,) = _champion_and_canaries(race_ledger, tenant)
    with race_ledger.connect(tenant, role="manager") as conn:
        models.transition(conn, canary, S.QUARANTINED, reason="suspicious canary")
    with pytest.raises(ConcurrentTransitionError), race_ledger.connect(tenant, role="manager") as conn:
        models.transition(conn, canary, S.CHAMPION, reason="stale read")
    assert _states(race_ledger, tenant)[canary.model_id] == "QUARANTINED"


def _race_two_canaries(ledger: LedgerResource, tenant: str) -> tuple[ModelVersion, ModelVersion, ModelVersion, object]:
    """Promote canary x on one connection and, while x's transaction is open, canary y on another.

    Returns ``(old champion, x, y, what y's promotion returned or raised)``.
    """
    champion, (x, y) = _champion_and_canaries(ledger, tenant, canaries=2)
    first = open_conn(ledger, tenant, role="manager", actor="first")
    second = open_conn(ledger, tenant, role="manager", actor="second")
    outcome: queue.Queue[object] = queue.Queue()

    def promote_y() -> None:
        try:
            outcome.put(models.transition(second, y, S.CHAMPION, reason="y better"))
        except Exception as exc:
            outcome.put(exc)

    try:
        models.transition(first, x, S.CHAMPION, reason="x better")
        worker = threading.Thread(target=promote_y)
        worker.start()
        if not _backend_waits_on_lock(ledger, second.info.backend_pid):
            pytest.fail("y's promotion did not wait for x's transaction")
        first.commit()
        worker.join(timeout=30)
        result = outcome.get_nowait()
        second.rollback()
    finally:
        first.close()
        second.close()
    return champion, x, y, result


def test_two_different_canaries_racing_leave_one_champion(race_ledger: LedgerResource, suffix: str):
    """REG-4: two *different* canaries promoted concurrently still leave exactly one champion (the
    partial unique index ``model_versions_one_champion`` is the last line of defence)."""
    tenant = f"pair-{suffix}"
    champion, x, y, result = _race_two_canaries(race_ledger, tenant)
    assert isinstance(result, ConcurrentTransitionError), result
    states = _states(race_ledger, tenant)
    assert states == {champion.model_id: "DEPRECATED", x.model_id: "CHAMPION", y.model_id: "CANARY"}
    with race_ledger.connect(tenant) as conn:
        assert audit.verify_chain(conn, tenant).ok


def test_loser_of_different_canaries_race_gets_a_ledger_error(race_ledger: LedgerResource, suffix: str):
    """REG-4: the loser should be told in the ledger's own terms, so callers can re-read and retry."""
    *_, result = _race_two_canaries(race_ledger, f"pairx-{suffix}")
    assert isinstance(result, LedgerRefusal), f"got {type(result).__module__}.{type(result).__name__}"
