"""Closed loop: promotion decisions, retraining outcomes, guard decisions, breaker resets.

Revision ID: 0004
"""

from rai_assets.adapters.ledger.sql_files import run_sql_file

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0004_closed_loop.sql")


def downgrade() -> None:
    raise NotImplementedError("the governance ledger is append-only; restore from backup instead")
