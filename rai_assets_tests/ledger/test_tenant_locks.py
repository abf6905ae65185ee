"""Issue 8 item 4: a tenant's session cannot hold another tenant's ledger locks. REQ: GOV-1, GOV-3, REG-4.

Threat: tenant A's pipeline (``rai_app``, or a manager/admin login of A) takes the advisory lock that
serialises tenant B's audit appends, champion changes or ingestion, and B's writes wait until they
time out. Before migration 0008 the keys were ``hashtextextended('audit|' || tenant, 0)``, computable
by anyone; now they carry an owner-only salt, and the one function that takes them refuses another
tenant's lock.
"""

from __future__ import annotations

import psycopg
import pytest

from rai_assets.adapters.ledger import audit
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets_tests.ledger.ledger_builders import assert_sqlstate, setup_tenant


@pytest.fixture
def two_tenants(ledger: LedgerResource, suffix: str) -> tuple[str, str]:
    a, b = f"lock-a-{suffix}", f"lock-b-{suffix}"
    setup_tenant(ledger, a)
    setup_tenant(ledger, b)
    return a, b


def _append_with_timeout(ledger: LedgerResource, tenant: str, timeout_ms: int = 3000) -> int:
    with ledger.connect(tenant) as conn:
        conn.execute(f"SET LOCAL lock_timeout = {timeout_ms}")
        return audit.append(conn, tenant=tenant, action="governance.test", actor="b", reason="must not wait")


@pytest.mark.parametrize("role", ["app", "manager", "admin"])
def test_the_old_forgeable_audit_key_no_longer_blocks_another_tenant(ledger, two_tenants, role):
    a, b = two_tenants
    with ledger.connect(a, role=role) as hostile:
        hostile.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"audit|{b}",))
        hostile.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"champion|{b}",))
        assert _append_with_timeout(ledger, b) >= 1  # B's append does not wait on A's locks
        hostile.execute("SELECT pg_advisory_unlock_all()")


@pytest.mark.parametrize("role", ["app", "manager", "admin"])
def test_another_tenants_lock_is_refused_and_its_salt_unreadable(ledger, two_tenants, role):
    a, b = two_tenants
    with pytest.raises(psycopg.Error) as excinfo, ledger.connect(a, role=role) as hostile:
        hostile.execute("SELECT rai_tenant_xact_lock('audit', %s)", (b,))
    assert_sqlstate(excinfo, "42501")
    with pytest.raises(psycopg.errors.InsufficientPrivilege), ledger.connect(a, role=role) as hostile:
        hostile.execute("SELECT salt FROM ledger_lock_salt")


def test_a_tenants_own_lock_still_serialises_its_appends(ledger, two_tenants):
    """The lock still does its job for the tenant itself: B holding its audit lock makes B's append wait."""
    _a, b = two_tenants
    with ledger.connect(b) as holder:
        holder.execute("SELECT rai_tenant_xact_lock('audit', %s)", (b,))
        with pytest.raises(psycopg.errors.LockNotAvailable):
            _append_with_timeout(ledger, b, timeout_ms=300)


def test_the_salted_key_is_not_the_old_key(ledger, two_tenants):
    """Sanity: the owner-side key differs from the forgeable formula (it depends on the salt)."""
    _a, b = two_tenants
    with ledger.connect_owner() as owner:
        salt = owner.execute("SELECT salt FROM ledger_lock_salt").fetchone()["salt"]
        old, new = owner.execute(
            "SELECT hashtextextended(%s, 0) AS old, hashtextextended(%s, 0) AS new",
            (f"audit|{b}", f"audit|{b}|{salt}")).fetchone().values()
    assert old != new and len(salt) >= 32
