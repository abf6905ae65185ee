"""Cohorts, promotion evidence, the naive floor and the bias gate of bootstrap promotions.

Revision ID: 0005
"""

from rai_assets.adapters.ledger.sql_files import run_sql_file

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0005_cohorts_evidence_floor.sql")


def downgrade() -> None:
    raise NotImplementedError("the governance ledger is append-only; restore from backup instead")
