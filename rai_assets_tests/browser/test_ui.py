"""The UIs in a real browser: Playwright for Python driving Debian's ``chromium`` (never a downloaded browser)
on ``dagster dev`` and ``mlflow server`` over a small demo's stores. Asserts on what is on the page and saves
the screenshots the README shows (docs/screenshots/*.png, 1280×800). Run with ``make test-browser``.
REQ: OBS-1 (the asset graph and runs in the Dagster UI), DRIFT-3 (a signed drift report with its picture),
REG-5 (the bias audit as an asset check, red when it failed), REG-1 (MLflow registry aliases)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "docs" / "screenshots"
BIN = Path(sys.executable).parent
TENANT = "ciwangi"  # the first village; with the cohort, models are yield-cohort-ricefarms
MODEL = "yield-cohort-ricefarms"
UNFAIR = "synth-planthopper"  # the demo's --unfair-tenant: a pest hits one variety in s03, its bias audit fails


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, timeout_s: float, what: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before answering; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise TimeoutError(f"{what} did not answer {url} within {timeout_s:.0f} s; see {log}")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A 2 villages × 3 seasons demo (plus the synthetic tenant whose last bias audit fails) on a temporary
    state dir, then ``dagster dev`` and ``mlflow server`` on free
    ports over it; both stopped by PID (their whole process groups) at the end."""
    from rai_assets.demo.closed_loop import _stop

    state = tmp_path_factory.mktemp("ui-state")
    env = {**os.environ, "RAI_STATE_DIR": str(state), "DAGSTER_HOME": str(state / "dagster"),
           "GX_ANALYTICS_ENABLED": "false", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    for name in ("RAI_LEDGER_URL", "RAI_LEDGER_OWNER_URL", "MLFLOW_TRACKING_URI", "RAI_S3_BUCKET"):
        env.pop(name, None)
    demo = subprocess.run([sys.executable, "-m", "rai_assets.cli", "demo", "--tenants", "2", "--seasons", "3",
                           "--unfair-tenant"],
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    dagster_port, mlflow_port = _free_port(), _free_port()
    started: list[subprocess.Popen[bytes]] = []
    try:
        dagster_log = state / "dagster-dev.log"
        with dagster_log.open("w") as log:
            started.append(subprocess.Popen(
                [sys.executable, "-m", "rai_assets.cli", "with-ledger", str(BIN / "dagster"), "dev", "-m",
                 "rai_assets.definitions", "-h", "127.0.0.1", "-p", str(dagster_port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        mlflow_log = state / "mlflow-server.log"
        with mlflow_log.open("w") as log:
            started.append(subprocess.Popen(
                [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{state}/mlflow/mlflow.db",
                 "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        _wait_http(f"http://127.0.0.1:{dagster_port}/server_info", 240, "dagster dev", started[0], dagster_log)
        _wait_http(f"http://127.0.0.1:{mlflow_port}/health", 120, "mlflow server", started[1], mlflow_log)
        yield {"dagster": f"http://127.0.0.1:{dagster_port}", "mlflow": f"http://127.0.0.1:{mlflow_port}",
               "state": state, "demo_stdout": demo.stdout}
    finally:
        for proc in started:
            _stop(proc)


@pytest.fixture(scope="module")
def page(servers: dict[str, Any]) -> Iterator[Any]:
    """One Chromium page (1280×800) of Debian's ``chromium``; Playwright downloads no browser."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    assert executable, "chromium is not installed: `make test-browser` apt-installs it"
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.set_default_timeout(60_000)
            yield context.new_page()
        finally:
            browser.close()


def _dagster(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    skip = page.get_by_role("button", name="Skip")  # the "Join the Dagster community" dialog, once
    if skip.count():
        skip.click()


def _shot(page: Any, name: str) -> None:
    """``docs/screenshots/<name>.png``: 1280×800, quantized to 128 colours (about 40 kB instead of 120 kB)."""
    from PIL import Image

    page.wait_for_timeout(500)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=128)
    small.save(path, optimize=True)


def test_asset_graph_shows_the_tenant_season_assets(servers, page):
    _dagster(page, f"{servers['dagster']}/asset-groups")
    for asset in ("learning_events", "dataset_snapshot", "trained_model", "bias_audit", "drift_report",
                  "model_promotion"):
        page.get_by_text(asset, exact=True).first.wait_for()
    _shot(page, "asset-graph")


def test_drift_report_materialization_shows_its_psi_picture(servers, page):
    """DRIFT-3: the signed report's metadata, and the PSI picture (an <img> with a data: URI)."""
    _dagster(page, f"{servers['dagster']}/assets/drift_report?view=events&partition=s03%7C{TENANT}")
    page.get_by_text("signature_verified").first.wait_for()
    page.locator("tr", has_text="plot_psi").get_by_text("[Show Markdown]").click()
    picture = page.locator("img[src^='data:image/']").first
    picture.wait_for()
    assert picture.bounding_box()["width"] > 200
    _shot(page, "drift-report")
    page.keyboard.press("Escape")


def test_failed_bias_audit_check_is_red(servers, page):
    """REG-5: the bias audit's asset check. The synthetic tenant's s03 bias audit failed for a real reason
    (a planthopper outbreak hit the high-yielding variety only; the model could not know): its
    ``bias_audit_passed`` check is Failed with ERROR severity — red in the UI — with the verdict, the
    signature state and the reasons (the variety subgroup's signed-residual gap)."""
    assert f"s03 {UNFAIR}" in servers["demo_stdout"], servers["demo_stdout"][-2000:]
    _dagster(page, f"{servers['dagster']}/assets/bias_audit?view=checks")
    page.get_by_text("bias_audit_passed").first.click()
    page.get_by_text("Evaluation result").first.wait_for()
    body = page.inner_text("body")
    # the latest execution is the synthetic tenant's s03 (the demo materializes it last)
    assert f"s03|{UNFAIR}" in body and "verdict fail" in body and "signature_verified" in body, body[:3000]
    result = page.get_by_text("Failed", exact=True).last  # the "Evaluation result" tag of the latest execution
    colours = result.evaluate(  # the text's colour and its tag's background (the first opaque one above it)
        "e => { let n = e; while (n && ['rgba(0, 0, 0, 0)', 'transparent'].includes(getComputedStyle(n)"
        ".backgroundColor)) n = n.parentElement; return [getComputedStyle(e).color, n ? "
        "getComputedStyle(n).backgroundColor : 'none']; }")
    _shot(page, "bias-audit-failed")
    for colour in colours:  # Dagster's danger tag: red text on a light red background
        red, green, blue = (int(v) for v in re.findall(r"\d+", colour)[:3])
        assert red > green + 20 and red > blue + 20, f"the Failed tag is not red: {colours}"
    page.locator("tr", has_text="reasons").get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    reasons = dialog.inner_text()
    assert "variety" in reasons and "signed residual gap" in reasons and "entirely above" in reasons, reasons
    page.keyboard.press("Escape")


def test_backfill_dialog_offers_tenant_season_partitions(servers, page):
    _dagster(page, f"{servers['dagster']}/assets/bias_audit")
    page.get_by_role("button", name="Materialize…").first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    text = dialog.inner_text()
    assert "tenant" in text and "season" in text, text
    _shot(page, "backfill-dialog")
    page.keyboard.press("Escape")


def _mlflow(page: Any, url: str, ready_text: str) -> None:
    """Open ``url``, wait for ``ready_text``, and close the "MLflow Assistant" side panel if it is open."""
    page.goto(url)
    page.get_by_text(ready_text).first.wait_for()
    close = page.get_by_role("button", name="Close")
    if close.count() and close.first.is_visible():
        close.first.click()


def test_mlflow_model_page_shows_the_champion_alias(servers, page):
    """REG-1: the cohort's registered model with its versions and the village's ``champion-<tenant>`` alias."""
    _mlflow(page, f"{servers['mlflow']}/#/models/{MODEL}", "Version 1")
    page.get_by_text(f"champion-{TENANT}").first.wait_for()
    page.get_by_text("Aliases").first.wait_for()
    _shot(page, "mlflow-model")


def test_mlflow_compares_two_model_versions(servers, page):
    """The model page's versions table: tick two versions, Compare → their runs' parameters side by side."""
    _mlflow(page, f"{servers['mlflow']}/#/models/{MODEL}", "Version 2")
    boxes = page.get_by_role("checkbox")  # the header's select-all, then one per version, newest first
    assert boxes.count() >= 3
    boxes.nth(1).check()
    boxes.nth(2).check()
    page.get_by_test_id("compareButton").click()
    page.get_by_text("Comparing 2 Versions").first.wait_for()
    body = page.inner_text("body")
    assert "Model Version:" in body and f"train {TENANT} s02" in body, body[:2000]
    _shot(page, "mlflow-compare")
