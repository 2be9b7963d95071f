"""Real browser, real dashboard server, real worker: type a box in the Jobs tab, submit, watch the
progress bar move, and find the new product in the map's product picker. Screenshots go to
``artifacts/screenshots/``; any browser console error fails the test."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from playwright.sync_api import expect

from app import data
from models.jobs import SUCCEEDED, JobStore
from tests.browser import BOKEH_IDLE, save_screenshot
from tests.models import test_worker
from tests.models.test_jobs_cli import worker_command
from tests.models.test_worker import region, watch

pytestmark = [pytest.mark.browser, pytest.mark.slow]

world = test_worker.world  # the demo world with a trained model (module-scoped); the test adds to it


@pytest.fixture
def viewport() -> dict:
    return {"width": 1500, "height": 1000}


@pytest.fixture
def stack(serve_dashboard, world, tmp_path):
    """Dashboard server and one worker on the module's copy of the demo world, sharing one job
    database."""
    env = dict(
        os.environ,
        FLUXLENS_DATA_DIR=str(world["root"]),
        FLUXLENS_JOBS_DB=str(tmp_path / "jobs.sqlite"),
        FLUXLENS_JOB_HEARTBEAT_S="0.5",
        FLUXLENS_JOB_BLOCK="1,32,32",  # 90 blocks: the job outlasts several 2 s refreshes of the bar
    )
    with (
        serve_dashboard(env, tmp_path / "serve.log") as base,
        open(tmp_path / "worker.log", "w") as log,
    ):
        worker = subprocess.Popen([*worker_command(), "--poll", "0.2"], env=env, stdout=log, stderr=log)
        try:
            yield {"base": base, "store": JobStore(tmp_path / "jobs.sqlite")}
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def test_submit_in_browser_progress_and_product_picker(world, stack, browser_page):
    page, _ = browser_page
    req = region(world, 300, 30)
    bbox = ",".join(f"{v:g}" for v in req["bbox"])
    page.goto(stack["base"] + "/", timeout=120_000)
    page.locator(".bk-tab", has_text="Jobs").first.click()  # (the welcome panel also says "Jobs")
    box = page.get_by_placeholder("-100,35,-95,40")
    box.fill(bbox)
    box.press("Enter")
    page.wait_for_function(BOKEH_IDLE, timeout=60_000)
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
            save_screenshot(page, "jobs-progress", full_page=False)
            shot_taken = True
        if page.locator(".job-row").first.get_attribute("data-status") == "succeeded":
            break
        time.sleep(0.25)
    final, _ = watch(stack["store"], job.id, timeout=5)
    assert final.status == SUCCEEDED, final.error
    assert any(0 < v < 1000 for v in values), values  # seen part-way
    # the bar ends full: the row's status and its bar can arrive in separate refreshes
    # (a locator: the table sits in a pane's shadow root, out of document.querySelector's reach)
    expect(page.locator(".job-row progress").first).to_have_attribute("value", "1000", timeout=10_000)
    # the result is named in the job's row (the product picker lists it too, as a hidden option)
    page.locator(".job-row").first.get_by_text(final.output).wait_for(timeout=10_000)
    title = final.request["title"]  # its box and period, beside the unique name
    assert f"{final.request['start']}…{final.request['end']}" in title and "…" in title.split(" E,")[0]
    page.locator(".job-row").first.get_by_text(title).wait_for(timeout=10_000)
    save_screenshot(page, "jobs-succeeded", full_page=False)

    # a new session's product picker lists the new product (once the server's product list cache,
    # possibly filled just before the product was registered, has expired)
    page.wait_for_timeout(data.PRODUCTS_TTL_S * 1000 + 500)
    page.reload()
    page.wait_for_function(BOKEH_IDLE, timeout=120_000)
    picker = page.locator("select").first
    labels = picker.locator("option").all_text_contents()
    [label] = [o for o in labels if o.startswith("LE/H re-prediction")]  # the title, cut to fit the picker
    picker.select_option(label=label)
    page.wait_for_function(BOKEH_IDLE, timeout=120_000)
    page.locator(".product-title", has_text=title).first.wait_for(timeout=30_000)  # in full below it
    save_screenshot(page, "jobs-product-picker", full_page=False)
