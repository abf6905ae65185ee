"""Tenant locks: keys derived with an owner-only salt, taken only by the tenant's own sessions
(issue 8 item 4).

Revision ID: 0008
"""

from rai_assets.adapters.ledger.sql_files import run_sql_file

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0008_tenant_locks.sql")


def downgrade() -> None:
    raise NotImplementedError("the governance ledger is append-only; restore from backup instead")
