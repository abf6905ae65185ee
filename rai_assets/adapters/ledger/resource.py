"""The governance ledger resource: a Postgres database (embedded pgserver by default)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from threading import Lock

import psycopg
from dagster import ConfigurableResource
from psycopg.rows import DictRow, dict_row

from rai_assets.adapters.ledger.embedded import start_embedded_postgres
from rai_assets.adapters.ledger.schema import ensure_schema

_embedded_urls: dict[str, str] = {}
_embedded_lock = Lock()

Conn = psycopg.Connection[DictRow]


class LedgerResource(ConfigurableResource):
    """Connections to the governance ledger.

    ``database_url`` (env ``RAI_LEDGER_URL``) is a libpq URL of a real Postgres with pgvector;
    when empty, the embedded pgserver under ``state_dir`` is started (or attached to) and used.
    The schema is migrated to head on first use in each process.
    """

    database_url: str = ""
    state_dir: str = ".rai"

    def resolved_url(self) -> str:
        """The libpq URL in use (starting the embedded server when no URL is configured)."""
        if self.database_url:
            return self.database_url
        with _embedded_lock:
            if self.state_dir not in _embedded_urls:
                _embedded_urls[self.state_dir] = start_embedded_postgres(self.state_dir)[0]
            return _embedded_urls[self.state_dir]

    @contextmanager
    def connect(self, tenant: str | None = None) -> Iterator[Conn]:
        """One transaction on the ledger; commits on success, rolls back on error.

        Args:
            tenant: when given, the transaction runs in that tenant's context
                (``rai.tenant_id`` setting, the key of row-level security).
        """
        url = self.resolved_url()
        ensure_schema(url)
        with psycopg.connect(url, row_factory=dict_row) as conn:
            if tenant is not None:
                conn.execute("SELECT set_config('rai.tenant_id', %s, true)", (tenant,))
            yield conn
