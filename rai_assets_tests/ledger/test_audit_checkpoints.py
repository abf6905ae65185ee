"""Signed checkpoints anchor each tenant's audit chain outside the database: an owner who deletes the
chain's tail (triggers disabled) leaves a chain that verifies on its own, and the checkpoint finds it.
REQ: GOV-8, GOV-3 (issue 8, item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from rai_assets.adapters.ledger import audit
from rai_assets.adapters.ledger.resource import APP_ROLE, LedgerResource, with_user
from rai_assets.adapters.object_store import ObjectExistsError, ObjectStoreResource
from rai_assets.adapters.signer import SignerResource
from rai_assets.cli import main as cli
from rai_assets.domain.signing import KeyPair
from rai_assets.governance import checkpoints
from rai_assets_tests.ledger.ledger_builders import owner_replica, setup_tenant


def _history(ledger: LedgerResource, tenant: str, n: int = 4) -> None:
    setup_tenant(ledger, tenant)
    with ledger.connect(tenant, role="admin", actor="root") as conn:
        for i in range(n):
            audit.append(conn, tenant=tenant, action="governance.note", actor="root", reason=f"entry {i}")


@pytest.fixture
def stores(tmp_path: Path) -> tuple[ObjectStoreResource, SignerResource]:
    return ObjectStoreResource(local_root=str(tmp_path / "objects")), SignerResource(state_dir=str(tmp_path))


def test_deleting_the_last_entry_is_found_by_the_checkpoint(ledger, stores, suffix, monkeypatch, tmp_path):
    tenant = f"anchor-{suffix}"
    store, signer = stores
    _history(ledger, tenant)
    key = signer.key()
    with ledger.connect(tenant) as conn:
        written = checkpoints.write_checkpoint(conn, store, key, tenant)
        assert written is not None
        assert checkpoints.verify_against_checkpoints(conn, store, key.public_key_b64, tenant) == (written, [])
    assert store.get_bytes(written.object_key)  # stored write-once: a different head cannot replace it
    with pytest.raises(ObjectExistsError):
        store.put_bytes(written.object_key, b"{}", write_once=True)

    with owner_replica(ledger) as conn:
        cur = conn.execute("DELETE FROM audit_log WHERE tenant_id = %s AND seq = %s", (tenant, written.seq))
        assert cur.rowcount == 1
    with ledger.connect(tenant) as conn:
        assert audit.verify_chain(conn, tenant).ok  # the hash chain alone cannot see a cut tail
        _latest, problems = checkpoints.verify_against_checkpoints(conn, store, key.public_key_b64, tenant)
    assert problems == [f"entry seq {written.seq}: missing, but the signed checkpoint {written.object_key} anchors "
                        f"it (the chain ends at seq {written.seq - 1}: its tail was cut)"]

    owner = ledger.owner_url
    monkeypatch.setenv("RAI_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("RAI_LEDGER_OWNER_URL", owner)
    monkeypatch.setenv("RAI_LEDGER_URL", with_user(owner, APP_ROLE))
    result = CliRunner().invoke(cli, ["audit", "verify", "--tenant", tenant])
    assert result.exit_code == 1
    assert "its tail was cut" in result.output


def test_a_replaced_entry_at_a_checkpointed_seq_and_a_forged_checkpoint_are_reported(ledger, stores, suffix):
    tenant = f"anchor2-{suffix}"
    store, signer = stores
    _history(ledger, tenant)
    key = signer.key()
    with ledger.connect(tenant) as conn:
        written = checkpoints.write_checkpoint(conn, store, key, tenant)
    assert written is not None
    with owner_replica(ledger) as conn:  # cut the tail, then append afresh: same seq, another hash
        conn.execute("DELETE FROM audit_log WHERE tenant_id = %s AND seq = %s", (tenant, written.seq))
    with ledger.connect(tenant, role="admin", actor="root") as conn:
        audit.append(conn, tenant=tenant, action="governance.note", actor="root", reason="rewritten history")
    # a checkpoint signed with another key (an insider with store access) does not count
    forged = checkpoints.checkpoint_key(tenant, 1)
    doc = checkpoints.sign_document({"kind": "audit_checkpoint", "tenant": tenant, "seq": 1, "entry_hash": "0" * 64},
                                    KeyPair.generate())
    store.put_bytes(forged, doc.to_bytes(), write_once=True)
    with ledger.connect(tenant) as conn:
        assert audit.verify_chain(conn, tenant).ok
        _latest, problems = checkpoints.verify_against_checkpoints(conn, store, key.public_key_b64, tenant)
    assert f"entry seq {written.seq}: entry_hash differs from the signed checkpoint {written.object_key}" in problems
    assert any(p.startswith(f"audit checkpoint {forged}: does not verify") for p in problems)
