"""Trace ids: every ledger row a step writes carries the trace id of the transaction that wrote it
(``rai.trace_id``, as audit_log does).

Revision ID: 0007
"""

from rai_assets.adapters.ledger.sql_files import run_sql_file

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0007_trace_ids.sql")


def downgrade() -> None:
    raise NotImplementedError("the governance ledger is append-only; restore from backup instead")
