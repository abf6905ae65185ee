"""The embedded Postgres (pgserver, with pgvector) behind the local default ledger.

pgserver runs Postgres over a Unix socket in a data directory. Exactly one process owns the server:
the one whose :func:`ensure_embedded_postgres` call started it (``started=True``); it alone stops it,
by the postmaster's PID (:func:`stop_embedded_postgres`). A process that finds it running attaches
and never stops it. Everything else connects by URL (``RAI_LEDGER_URL``).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import pgserver

log = logging.getLogger(__name__)

LEDGER_DATABASE = "rai_ledger"


def embedded_data_dir(state_dir: str | Path) -> Path:
    """Data directory of the embedded server under the local state directory."""
    return Path(state_dir).resolve() / "ledger-pg"


def running_postmaster_pid(state_dir: str | Path) -> int | None:
    """PID of the embedded server of ``state_dir`` if one is running, else None."""
    pid_file = embedded_data_dir(state_dir) / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def ensure_embedded_postgres(state_dir: str | Path) -> tuple[str, int, bool]:
    """Start the embedded server, or attach to the one already running.

    Returns:
        ``(url, pid, started)``: ``started`` is True only when this call started the server — the
        caller then owns it and is the only one that may stop it.
    """
    already = running_postmaster_pid(state_dir)
    url, pid = start_embedded_postgres(state_dir)
    return url, pid, already is None


def start_embedded_postgres(state_dir: str | Path) -> tuple[str, int]:
    """Start (or attach to) the embedded server and make sure the ledger database exists.

    The server is left running when this process exits (pgserver ``cleanup_mode=None``); stop it
    with :func:`stop_embedded_postgres`.

    Returns:
        ``(url, pid)``: a libpq URL of the ledger database (Unix socket) and the postmaster PID.
    """
    data_dir = embedded_data_dir(state_dir)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode=None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{LEDGER_DATABASE}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {LEDGER_DATABASE};")
    pid = server.get_pid()
    if pid is None:
        raise RuntimeError(f"embedded Postgres in {data_dir} did not report a PID")
    return server.get_uri(LEDGER_DATABASE), pid


def stop_embedded_postgres(state_dir: str | Path, timeout_s: float = 30.0) -> int | None:
    """Stop the embedded server of ``state_dir`` by its postmaster PID (SIGINT: fast shutdown).

    Returns:
        The PID that was stopped, or None when no server was running.
    """
    pid_file = embedded_data_dir(state_dir) / "postmaster.pid"
    if not pid_file.is_file():
        return None
    pid = int(pid_file.read_text().splitlines()[0])
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        time.sleep(0.1)
    log.warning("embedded Postgres PID %s did not stop within %.0f s", pid, timeout_s)
    return pid
