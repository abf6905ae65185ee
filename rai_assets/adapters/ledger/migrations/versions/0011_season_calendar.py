"""Season calendar per tenant, written only through rai_register_season
(issue 8 item 3).

Revision ID: 0011
"""

from rai_assets.adapters.ledger.sql_files import run_sql_file

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0011_season_calendar.sql")


def downgrade() -> None:
    raise NotImplementedError("the governance ledger is append-only; restore from backup instead")
