"""Real browser, real dashboard server, real worker: type a box in the Jobs tab, submit, watch the
progress bar move, and find the new product in the map's product picker. Screenshots go to
``artifacts/screenshots/``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from models.jobs import SUCCEEDED, JobStore
from tests.models import test_worker
from tests.models.test_jobs_cli import worker_command
from tests.models.test_worker import region, watch

pytestmark = [pytest.mark.browser, pytest.mark.slow]

world = test_worker.world  # the demo world with a trained model (module-scoped fixture)

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
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
IDLE = "() => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents[0].is_idle"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def stack(world, tmp_path):
    """Dashboard server and one worker on a copy of the demo world, sharing one job database."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    port = free_port()
    env = dict(
        os.environ,
        FLUXLENS_DATA_DIR=str(world["root"]),
        FLUXLENS_JOBS_DB=str(tmp_path / "jobs.sqlite"),
        FLUXLENS_JOB_HEARTBEAT_S="0.5",
        FLUXLENS_JOB_BLOCK="10,32,32",  # several blocks, so the bar has steps to show
    )
    logs = open(tmp_path / "stack.log", "w")  # noqa: SIM115 (closed below)
    serve = [sys.executable, "-m", "fluxlens.cli", "serve", "--port", str(port)]
    server = subprocess.Popen(serve, env=env, stdout=logs, stderr=logs)
    worker = subprocess.Popen([*worker_command(), "--poll", "0.2"], env=env, stdout=logs, stderr=logs)
    base = f"http://localhost:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            break
        except OSError as exc:
            if time.monotonic() > deadline or server.poll() is not None:
                logs.flush()
                tail = (tmp_path / "stack.log").read_text()[-3000:]
                raise AssertionError(f"dashboard did not start:\n{tail}") from exc
            time.sleep(0.5)
    yield {"base": base, "store": JobStore(tmp_path / "jobs.sqlite"), "log": tmp_path / "stack.log"}
    for proc in (worker, server):
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    logs.close()


def test_submit_in_browser_progress_and_product_picker(world, stack, tmp_path):
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    req = region(world, 300, 30)
    bbox = ",".join(f"{v:g}" for v in req["bbox"])
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium"),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            viewport={"width": 1500, "height": 1000},
        )
        page = browser.new_page()
        page.goto(stack["base"] + "/", timeout=120_000)
        page.get_by_text("Jobs", exact=True).first.click()
        box = page.get_by_placeholder("-100,35,-95,40")
        box.fill(bbox)
        box.press("Enter")
        page.wait_for_function(IDLE, timeout=60_000)
        page.get_by_role("button", name="Submit").click()
        page.locator(".job-row").first.wait_for(timeout=30_000)
        [job] = stack["store"].jobs()
        assert job.request["bbox"] == req["bbox"]

        # the bar moves: sample the <progress> value the page shows while the worker runs
        values = []
        deadline = time.monotonic() + 300
        shot_taken = False
        while time.monotonic() < deadline:
            value = page.locator(".job-row progress").first.get_attribute("value")
            values.append(int(value or 0))
            if 0 < values[-1] < 1000 and not shot_taken:
                page.screenshot(path=str(SCREENSHOTS / "jobs-progress.png"))
                shot_taken = True
            if page.locator(".job-row").first.get_attribute("data-status") == "succeeded":
                break
            time.sleep(0.25)
        final, _ = watch(stack["store"], job.id, timeout=5)
        assert final.status == SUCCEEDED, final.error
        assert any(0 < v < 1000 for v in values), values  # seen part-way
        assert values[-1] == 1000
        page.get_by_text(final.output).first.wait_for(timeout=10_000)  # the result is named
        page.screenshot(path=str(SCREENSHOTS / "jobs-succeeded.png"))

        # a new session's product picker lists the new product
        page.reload()
        page.wait_for_function(IDLE, timeout=120_000)
        options = page.locator("select").first.locator("option").all_text_contents()
        assert any(f"({final.output})" in o for o in options), options
        page.screenshot(path=str(SCREENSHOTS / "jobs-product-picker.png"))
        browser.close()
