"""Run a versioned SQL file from ``resources/migrations/ledger`` inside an Alembic migration."""

from __future__ import annotations

from alembic import op

from rai_assets.resource_files import resources_dir


def run_sql_file(name: str) -> None:
    """Execute ``resources/migrations/ledger/<name>`` on the migration's connection.

    Raises:
        FileNotFoundError: the SQL file does not exist.
    """
    sql = (resources_dir() / "migrations" / "ledger" / name).read_text(encoding="utf-8")
    # The driver's own connection, without parameters: '%' in PL/pgSQL format() strings stays literal.
    driver = op.get_bind().connection.driver_connection
    assert driver is not None
    driver.execute(sql)
