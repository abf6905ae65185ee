"""Initial ledger schema (tenants, seasons, events, dead letters, snapshots, models, reports).

Revision ID: 0001
"""

from rai_assets.adapters.ledger.sql_files import run_sql_file

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0001_initial.sql")


def downgrade() -> None:
    raise NotImplementedError("the governance ledger is append-only; restore from backup instead")
