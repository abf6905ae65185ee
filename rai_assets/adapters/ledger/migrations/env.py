"""Alembic environment of the governance ledger; run through ``rai_assets.adapters.ledger.schema``."""

from alembic import context
from sqlalchemy import create_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "sqlalchemy.url must be set"
engine = create_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, version_table="ledger_schema_version", transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
