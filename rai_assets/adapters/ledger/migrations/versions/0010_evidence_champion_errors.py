"""Promotion evidence keeps the champion's absolute errors (non-inferiority margin of a refit)
(issue 7).

Revision ID: 0010
"""

from rai_assets.adapters.ledger.sql_files import run_sql_file

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0010_evidence_champion_errors.sql")


def downgrade() -> None:
    raise NotImplementedError("the governance ledger is append-only; restore from backup instead")
