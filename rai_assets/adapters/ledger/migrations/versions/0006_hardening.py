"""Hardening: pinned search_path of every ledger function, no TEMP for the ledger roles, dead letters
with their raw bytes and recorded once per (source, line, reason).

Revision ID: 0006
"""

from rai_assets.adapters.ledger.sql_files import run_sql_file

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0006_hardening.sql")


def downgrade() -> None:
    raise NotImplementedError("the governance ledger is append-only; restore from backup instead")
