"""Governance: roles, row-level security, lifecycle FSM trigger, immutability, hash-chained audit log,
season profiles (pgvector).

Revision ID: 0002
"""

from rai_assets.adapters.ledger.sql_files import run_sql_file

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0002_governance.sql")


def downgrade() -> None:
    raise NotImplementedError("the governance ledger is append-only; restore from backup instead")
