"""Applying the ledger's versioned migrations (Alembic) — ``rai-assets db upgrade``."""

from __future__ import annotations

from pathlib import Path
from threading import Lock

from alembic import command
from alembic.config import Config

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_applied: set[str] = set()
_lock = Lock()


def sqlalchemy_url(libpq_url: str) -> str:
    """``postgresql://…`` → ``postgresql+psycopg://…`` (SQLAlchemy with the psycopg 3 driver)."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if libpq_url.startswith(prefix):
            return "postgresql+psycopg://" + libpq_url[len(prefix) :]
    raise ValueError(f"ledger URL must start with postgresql://, got {libpq_url.split(':', 1)[0]}://")


def upgrade(libpq_url: str) -> None:
    """Apply all pending migrations to the ledger at ``libpq_url`` (idempotent)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(libpq_url).replace("%", "%%"))
    command.upgrade(cfg, "head")


def ensure_schema(libpq_url: str) -> None:
    """:func:`upgrade` once per process and URL."""
    with _lock:
        if libpq_url in _applied:
            return
        upgrade(libpq_url)
        _applied.add(libpq_url)
