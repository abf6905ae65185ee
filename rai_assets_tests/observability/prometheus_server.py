"""A real Prometheus and Pushgateway on loopback for the tests, started on free ports and stopped by PID."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from urllib.request import urlopen

import yaml

from rai_assets.resource_files import resources_dir

OBS = resources_dir() / "observability"
WAIT_S = 120  # an upper bound on waiting for something that should happen, never a measured threshold


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, probe: Callable[[], Any]) -> Any:
    """Poll ``probe`` until it returns something truthy; fail after :data:`WAIT_S`."""
    deadline = time.monotonic() + WAIT_S
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except Exception as exc:  # not up yet
            last_error = exc
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for {what} (last error: {last_error!r})")


def get_json(url: str) -> Any:
    """GET ``url`` and decode its JSON body."""
    with urlopen(url, timeout=10) as response:
        return json.load(response)


@dataclass
class Stack:
    """The running Prometheus and Pushgateway."""

    prometheus_url: str
    pushgateway: str
    metrics_port: int
    pids: tuple[int, ...]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query through Prometheus's HTTP API; the result vector."""
        body = get_json(f"{self.prometheus_url}/api/v1/query?{urlencode({'query': promql})}")
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing)."""
        return list(get_json(f"{self.prometheus_url}/api/v1/alerts")["data"]["alerts"])


def _config(tmp: Path, pushgateway_port: int, metrics_port: int) -> Path:
    """The checked-in prometheus.yml with this test's ports, a 1 s interval and the checked-in rules."""
    config = yaml.safe_load((OBS / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(OBS / f) for f in config["rule_files"]]
    ports = {"rai-pushgateway": pushgateway_port, "rai-code-server": metrics_port}
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[job['job_name']]}"]}]
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def start_stack(tmp: Path) -> Iterator[Stack]:
    """Start the Pushgateway and Prometheus, wait until both are ready, yield, stop both by PID."""
    for tool in ("prometheus", "prometheus-pushgateway"):
        assert shutil.which(tool), f"{tool} is missing: `make observability-tools` installs it"
    pg_port, prom_port, metrics_port = free_port(), free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    log = (tmp / "observability.log").open("wb")
    try:
        procs.append(subprocess.Popen(["prometheus-pushgateway", f"--web.listen-address=127.0.0.1:{pg_port}",
                                       f"--persistence.file={tmp / 'pushgateway.data'}"],
                                      stdout=log, stderr=subprocess.STDOUT))
        procs.append(subprocess.Popen([
            "prometheus", f"--config.file={_config(tmp, pg_port, metrics_port)}",
            f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}",
        ], stdout=log, stderr=subprocess.STDOUT))
        stack = Stack(f"http://127.0.0.1:{prom_port}", f"127.0.0.1:{pg_port}", metrics_port,
                      tuple(p.pid for p in procs))
        wait_for("the Pushgateway", lambda: urlopen(f"http://{stack.pushgateway}/-/ready", timeout=2).status == 200)
        wait_for("Prometheus", lambda: urlopen(f"{stack.prometheus_url}/-/ready", timeout=2).status == 200)
        yield stack
    finally:
        for proc in reversed(procs):
            _stop(proc)
        log.close()
