"""A fresh local deployment served by a real `dagster dev` (webserver + daemon), for tests that go through
Dagster's run queue the way production does."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from dagster import DagsterInstance

from rai_assets.adapters.ledger.embedded import start_embedded_postgres, stop_embedded_postgres
from rai_assets.adapters.ledger.resource import APP_ROLE, LedgerResource, with_user
from rai_assets.adapters.ledger.schema import upgrade
from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.demo.closed_loop import _stop
from rai_assets.demo.runner import land_and_register

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
T = TypeVar("T")


def free_port() -> int:
    """A TCP port free on the loopback interface now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], T], timeout_s: float, what: str, poll_s: float = 2.0) -> T:
    """Poll ``predicate`` every ``poll_s`` seconds until it returns something truthy; returns it.

    Raises:
        TimeoutError: not within ``timeout_s`` (the message names ``what``).
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")


def http_ok(url: str) -> bool:
    """``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@dataclass(frozen=True)
class Deployment:
    """The deployment's ledger, Dagster instance, webserver URL and the environment its processes run with."""

    ledger: LedgerResource
    instance: DagsterInstance
    url: str
    env: dict[str, Any]


@contextmanager
def served_deployment(state: Path, panel: pd.DataFrame, keys: Path) -> Iterator[Deployment]:
    """A deployment under ``state`` (embedded Postgres ledger, local object store, ``$DAGSTER_HOME`` with the
    repository's ``dagster.yaml``), ``panel`` landed with the tenant keys in ``keys`` and registered, and
    ``dagster dev`` serving the code location; the server and Postgres are stopped by PID on exit."""
    home = state / "dagster"
    home.mkdir(parents=True)
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    owner, _pid = start_embedded_postgres(state)
    server = None
    try:
        upgrade(owner)
        ledger = LedgerResource(owner_url=owner)
        instance = DagsterInstance.from_config(str(home))
        land_and_register(ledger, ObjectStoreResource(local_root=str(state / "objects")), instance, panel, keys)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAI_", "MLFLOW_", "DAGSTER_"))}
        env.update({"RAI_STATE_DIR": str(state), "DAGSTER_HOME": str(home), "RAI_LEDGER_OWNER_URL": owner,
                    "RAI_LEDGER_URL": with_user(owner, APP_ROLE)})
        port = free_port()
        server = subprocess.Popen([str(BIN / "dagster"), "dev", "-m", "rai_assets.definitions", "-h", "127.0.0.1",
                                   "-p", str(port)], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_ok(f"{url}/server_info"), 180, "the Dagster webserver")
        yield Deployment(ledger, instance, url, env)
    finally:
        if server is not None:
            _stop(server)
        stop_embedded_postgres(state)
