"""The governance ledger resource: a Postgres database (embedded pgserver by default).

Two kinds of connection (GOV-1, GOV-4):

* the **owner** URL runs migrations (``RAI_LEDGER_OWNER_URL``; the embedded server's superuser);
* the **application** URL is what the assets use (``RAI_LEDGER_URL``): the ``rai_app`` role — not
  the owner, not superuser, no BYPASSRLS — so row-level security really applies to it.

Governance commands connect as ``rai_manager`` / ``rai_admin`` / ``rai_agronomist`` the same way.
Every transaction runs in one tenant's context (``rai.tenant_id``); with none set, tenant-owned
tables return nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from threading import Lock
from urllib.parse import urlsplit, urlunsplit

import psycopg
from dagster import ConfigurableResource
from psycopg.rows import DictRow, dict_row

from rai_assets.adapters.ledger.embedded import start_embedded_postgres
from rai_assets.adapters.ledger.schema import ensure_schema
from rai_assets.adapters.tracing import current_trace_id

_embedded_urls: dict[str, str] = {}
_embedded_lock = Lock()

Conn = psycopg.Connection[DictRow]

_SETTINGS_SQL = ("SELECT set_config('rai.tenant_id', %s, true), set_config('rai.actor', %s, true),"
                 " set_config('rai.trace_id', %s, true), set_config('rai.cohort_id', %s, true)")
# Idle connections kept for reuse, per process and URL (a URL names the role): opening one costs ≈ 5 ms and a
# partition run opens ~100 (issue 12, goal 3). Each is reset (DISCARD ALL but its prepared statements) before it is
# kept: session state (roles, settings, temporary tables) never passes from one transaction to the next.
_IDLE_MAX = 8
# DISCARD ALL less DEALLOCATE ALL: psycopg's own prepared statements stay valid (it tracks them client-side)
_RESET_SQL = ("CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; DISCARD TEMP; DISCARD SEQUENCES;"
              " UNLISTEN *; SELECT pg_advisory_unlock_all()")
_idle: dict[tuple[int, str], list[Conn]] = {}
_idle_lock = Lock()
_inherited: list[Conn] = []  # a forked child's copies of its parent's sockets: kept, never used nor closed


def _forget_parent_connections() -> None:
    global _idle_lock
    _idle_lock = Lock()  # another thread may have held it at the fork
    _inherited.extend(c for pool in _idle.values() for c in pool)
    _idle.clear()


os.register_at_fork(after_in_child=_forget_parent_connections)


def _checkout(url: str) -> Conn:
    with _idle_lock:
        pool = _idle.get((os.getpid(), url))
        conn = pool.pop() if pool else None
    return conn if conn is not None else psycopg.connect(url, row_factory=dict_row)


def _checkin(url: str, conn: Conn) -> None:
    """Keep ``conn`` for reuse when it is healthy and idle, reset; close it otherwise."""
    if conn.closed:
        return
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            raise psycopg.InterfaceError("not idle")
        conn.autocommit = True
        conn.execute(_RESET_SQL)
        conn.autocommit = False
    except psycopg.Error:
        conn.close()
        return
    evicted: Conn | None = None
    with _idle_lock:
        key = (os.getpid(), url)
        _idle.setdefault(key, []).append(conn)
        if sum(len(v) for v in _idle.values()) > _IDLE_MAX:  # the oldest idle connection of any URL goes
            oldest_key = next(k for k, v in _idle.items() if v)
            evicted = _idle[oldest_key].pop(0)
            if not _idle[oldest_key]:
                del _idle[oldest_key]
    if evicted is not None:
        evicted.close()

APP_ROLE = "rai_app"
ROLES = {"app": APP_ROLE, "agronomist": "rai_agronomist", "manager": "rai_manager", "admin": "rai_admin",
         "cohort": "rai_cohort"}


def with_user(url: str, user: str) -> str:
    """``url`` with its user name replaced by ``user`` (password kept only if the user is unchanged)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    old_user = parts.username or ""
    auth = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc and old_user == user else user
    return urlunsplit((parts.scheme, f"{auth}@{host}", parts.path, parts.query, parts.fragment))


class LedgerResource(ConfigurableResource):
    """Connections to the governance ledger.

    ``database_url`` (env ``RAI_LEDGER_URL``) is the application role's libpq URL of a Postgres
    with pgvector; ``owner_url`` (env ``RAI_LEDGER_OWNER_URL``) the migration owner's. When
    ``database_url`` is empty, the embedded pgserver under ``state_dir`` is started (or attached
    to): its superuser migrates and the assets connect as ``rai_app``. With an owner URL the
    schema is migrated to head on first use in each process.
    """

    database_url: str = ""
    owner_url: str = ""
    state_dir: str = ".rai"

    def resolved_owner_url(self) -> str | None:
        """The owner's URL, or None when migrations are not this process's business."""
        if self.owner_url:
            return self.owner_url
        if self.database_url:
            return None
        with _embedded_lock:
            if self.state_dir not in _embedded_urls:
                _embedded_urls[self.state_dir] = start_embedded_postgres(self.state_dir)[0]
            return _embedded_urls[self.state_dir]

    def resolved_url(self, role: str = "app") -> str:
        """The libpq URL for ``role`` (``app``, ``agronomist``, ``manager``, ``admin``, ``cohort``).

        Raises:
            ValueError: unknown role.
        """
        if role not in ROLES:
            raise ValueError(f"unknown ledger role {role!r}; one of {sorted(ROLES)}")
        owner = self.resolved_owner_url()
        if owner is not None:
            ensure_schema(owner)
        base = self.database_url or owner
        assert base is not None
        return with_user(base, ROLES[role]) if role != "app" or not self.database_url else base

    @contextmanager
    def connect(self, tenant: str | None = None, *, role: str = "app", actor: str = "rai-assets",
                trace_id: str = "", cohort: str | None = None) -> Iterator[Conn]:
        """One transaction on the ledger; commits on success, rolls back on error.

        Args:
            tenant: the tenant whose rows this transaction may see and write (``rai.tenant_id``).
            role: the database role to connect as.
            actor: who acts (recorded in the audit log with the database role).
            trace_id: OpenTelemetry trace id, recorded in the audit log (``rai.trace_id``); default:
                the current span's (OBS-2).
            cohort: the cohort whose current members' rows the ``cohort`` role may read
                (``rai.cohort_id``; REG-9).
        """
        url = self.resolved_url(role)
        settings = (tenant or "", actor, trace_id or current_trace_id(), cohort or "")
        conn = _checkout(url)
        try:
            try:
                conn.execute(_SETTINGS_SQL, settings)
            except psycopg.OperationalError:  # an idle connection the server closed (restart, DROP … FORCE)
                conn.close()
                conn = psycopg.connect(url, row_factory=dict_row)
                conn.execute(_SETTINGS_SQL, settings)
            yield conn
        except BaseException:
            if not conn.closed:
                conn.rollback()
            _checkin(url, conn)
            raise
        else:
            conn.commit()
            _checkin(url, conn)

    @staticmethod
    def switch_tenant(conn: Conn, tenant: str) -> None:
        """Make ``tenant`` the transaction's tenant (``rai.tenant_id``) on a connection from :meth:`connect`.

        Lets a sensor batch many tenants' ledger work in one connection and transaction (one round trip
        per switch) instead of one connection per tenant; row-level security still applies to each.
        """
        conn.execute("SELECT set_config('rai.tenant_id', %s, true), set_config('rai.trace_id', %s, true)",
                     (tenant, current_trace_id()))

    @contextmanager
    def connect_owner(self) -> Iterator[Conn]:
        """A transaction as the schema owner (migrations, tests of the database's own guards).

        Raises:
            RuntimeError: no owner URL is configured.
        """
        owner = self.resolved_owner_url()
        if owner is None:
            raise RuntimeError("no ledger owner URL configured (RAI_LEDGER_OWNER_URL)")
        ensure_schema(owner)
        with psycopg.connect(owner, row_factory=dict_row) as conn:
            yield conn
