"""The Validation tab in a real Chromium against a real ``fluxlens serve`` on the small demo world:
find a site by search, see its series, scatter and metrics; compute the scoreboard, see its Taylor
diagram, download the metrics CSV. Screenshots go to ``artifacts/screenshots/``; any browser
console error fails the test.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IDLE = "window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents[0].is_idle"
PLOT_TITLES = """(() => { const out = [];
  for (const m of Bokeh.documents[0].all_models) { if (m.title && m.title.text) out.push(m.title.text); }
  return out; })()"""
TAYLOR_POINTS = """(() => { for (const m of Bokeh.documents[0].all_models) {
    if (m.title && m.title.text && m.title.text.startsWith('Taylor diagram')) {
      let n = 0; for (const r of m.renderers) {
        const d = r.data_source && r.data_source.data;
        if (d && d.site_id) n += d.site_id.length; }
      return n; } } return -1; })()"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    base = tmp_path_factory.mktemp("validation-browser")
    data_dir = base / "fluxlens-data"
    port = _free_port()
    env = dict(os.environ, FLUXLENS_DATA_DIR=str(data_dir), FLUXLENS_VALIDATION_CACHE=str(base / "cache"))
    log = open(base / "serve.log", "w")
    fluxlens = shutil.which("fluxlens", path=str(Path(sys.executable).parent)) or "fluxlens"
    proc = subprocess.Popen(
        [fluxlens, "serve", "--port", str(port), "--small-demo"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://localhost:{port}/app"
    try:
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                pytest.fail(f"fluxlens serve exited ({proc.returncode}): {(base / 'serve.log').read_text()}")
            try:
                urllib.request.urlopen(url, timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("fluxlens serve did not answer within 600 s")
                time.sleep(1)
        yield {"url": url, "data_dir": data_dir}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture
def browser_page(tmp_path):
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1500, "height": 2600},
            accept_downloads=True,
        )
        page = ctx.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        yield page, errors
        ctx.close()
    assert not errors, f"browser console errors: {errors}"


def _idle(page, timeout=60_000):
    page.wait_for_timeout(300)
    page.wait_for_function(IDLE, timeout=timeout)


def _shot(page, name: str):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _select(page, option_text: str, timeout_s: float = 60):
    """Pick, in the select whose options include exactly ``option_text``, that option (tabs are
    built on first open, so the select may arrive a moment after the click)."""
    deadline = time.monotonic() + timeout_s
    while True:
        for sel in page.locator("select").all():
            if option_text in sel.locator("option").all_inner_texts():
                sel.select_option(label=option_text)
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"no select offers {option_text!r}")
        page.wait_for_timeout(250)


def test_validation_site_and_scoreboard(server, browser_page, tmp_path):
    page, errors = browser_page
    page.goto(server["url"])
    _idle(page, 120_000)
    page.locator(".bk-tab", has_text="Validation").first.click()
    _idle(page)
    _select(page, "le")
    _idle(page)

    search = page.get_by_placeholder("type a site id or name")
    search.click()
    search.type("grassland 03", delay=40)
    page.locator(".bk-menu").get_by_text("US-D03").first.click()
    page.locator("h3", has_text="US-D03 — Demo grassland 03").first.wait_for(timeout=90_000)
    page.wait_for_function(
        f"({PLOT_TITLES}).some(t => t.startsWith('fluxes_demo: n '))", timeout=60_000
    )  # the scatter's title carries n, R, RMSE
    _idle(page)
    titles = page.evaluate(PLOT_TITLES)
    assert "US-D03: observed vs products" in titles
    assert any(t.startswith("Closure: ratio") for t in titles)
    row = page.locator(".site-metrics .tabulator-row", has_text="fluxes_demo").first
    row.wait_for(timeout=30_000)
    n_pairs = row.locator(".tabulator-cell[tabulator-field='n']").inner_text()
    assert int(n_pairs) >= 10
    assert float(row.locator(".tabulator-cell[tabulator-field='rmse']").inner_text()) > 0
    _shot(page, "validation_01_site_view")

    page.locator(".bk-tab", has_text="Scoreboard").first.click()
    _idle(page)
    page.get_by_role("button", name="Compute scoreboard").click()
    page.get_by_text("sites matched").first.wait_for(timeout=180_000)
    page.wait_for_function(f"({TAYLOR_POINTS}) > 0", timeout=60_000)
    _idle(page)
    n_taylor = page.evaluate(TAYLOR_POINTS)
    assert page.get_by_text("Pooled over").count() > 0
    _shot(page, "validation_02_scoreboard")

    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Metrics as CSV").click()
    path = tmp_path / "metrics.csv"
    download.value.save_as(path)
    lines = path.read_text().splitlines()
    header = [line for line in lines if line.startswith("# ")]
    assert "# product: fluxes_demo" in header and any(h.startswith("# units: W m-2") for h in header)
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    assert len(rows) >= 10  # every tower of the small demo network
    with_metrics = [r for r in rows if r["rmse"] not in ("", "nan")]
    assert len(with_metrics) == n_taylor  # every site with metrics is a point on the diagram
    assert all(float(r["n"]) >= 10 for r in with_metrics)
    assert not errors
