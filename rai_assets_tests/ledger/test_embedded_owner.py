"""One owner for the embedded ledger: a command that attaches to a running server never stops it, and
a second `make dagster` on a busy port refuses before starting anything. REQ: GOV-8 (issue 8, item 12)."""

from __future__ import annotations

import socket
import sys

from click.testing import CliRunner

from rai_assets.adapters.ledger.embedded import (
    embedded_data_dir,
    ensure_embedded_postgres,
    running_postmaster_pid,
    stop_embedded_postgres,
)
from rai_assets.cli import main as cli


def test_an_attached_command_leaves_the_owners_ledger_running(tmp_path, monkeypatch):
    state = tmp_path / "state"
    _url, pid, started = ensure_embedded_postgres(state)
    try:
        assert started
        assert ensure_embedded_postgres(state)[1:] == (pid, False)  # a second caller attaches
        monkeypatch.setenv("RAI_STATE_DIR", str(state))
        monkeypatch.setenv("RAI_LEDGER_URL", "")  # as in a shell without a ledger URL
        monkeypatch.setenv("RAI_LEDGER_OWNER_URL", "")
        result = CliRunner().invoke(cli, ["with-ledger", sys.executable, "-c", "pass"])
        assert result.exit_code == 0, result.output
        assert "stopped the embedded ledger" not in result.output
        assert running_postmaster_pid(state) == pid  # measured before: the owner's server was stopped
    finally:
        assert stop_embedded_postgres(state) == pid


def test_a_second_dagster_on_a_busy_port_refuses_before_starting_anything(tmp_path, monkeypatch):
    state = tmp_path / "state"
    monkeypatch.setenv("RAI_STATE_DIR", str(state))
    monkeypatch.setenv("RAI_LEDGER_URL", "")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["with-ledger", "dagster", "dev", "-m", "rai_assets.definitions",
                                          "-h", "127.0.0.1", "-p", str(port)])
    assert result.exit_code == 1
    assert f"port {port} is already in use" in result.output and "Traceback" not in result.output
    assert not (embedded_data_dir(state) / "postmaster.pid").exists()
