"""Lifecycle audit entries only from the ledger's own trigger.

Revision ID: 0003
"""

from rai_assets.adapters.ledger.sql_files import run_sql_file

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0003_lifecycle_entries_from_trigger_only.sql")


def downgrade() -> None:
    raise NotImplementedError("the governance ledger is append-only; restore from backup instead")
