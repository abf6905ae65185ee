"""Forecast unit: every stored forecast names the unit of its spec's target (issue 10 item 7).

Revision ID: 0012
"""

from rai_assets.adapters.ledger.sql_files import run_sql_file

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0012_forecast_unit.sql")


def downgrade() -> None:
    raise NotImplementedError("the governance ledger is append-only; restore from backup instead")
