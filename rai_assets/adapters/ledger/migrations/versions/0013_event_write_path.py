"""The learning-event write path: one foreign-key check per event, the policy's tenant read once per statement.

Revision ID: 0013
"""

from rai_assets.adapters.ledger.sql_files import run_sql_file

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0013_event_write_path.sql")


def downgrade() -> None:
    raise NotImplementedError("the governance ledger is append-only; restore from backup instead")
