"""Tenant foreign keys: every reference between tenant-owned tables carries the tenant
(issue 8 item 2).

Revision ID: 0009
"""

from rai_assets.adapters.ledger.sql_files import run_sql_file

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0009_tenant_foreign_keys.sql")


def downgrade() -> None:
    raise NotImplementedError("the governance ledger is append-only; restore from backup instead")
