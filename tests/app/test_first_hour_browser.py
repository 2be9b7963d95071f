"""A newcomer's first hour, end to end: from an EMPTY data directory, the README's path (``fluxlens
serve`` refuses it and names ``fluxlens demo``; then the README's one command, ``bash dev.sh serve``,
builds the demo world (``FLUXLENS_DEMO_SIZE=small``: the small one) and its emulator and serves it
with its default job worker), a real Chromium submits a re-prediction from the Jobs tab, sees it finish,
and opens the new product on the Map and in Compare. The first-run panel shows, is dismissed (and
stays dismissed after a reload) and comes back from the About tab. Every tab is opened at 1280 × 720
and at 1400 × 900, screenshot under the test's tmp dir (``shots/``), and checked for overflow: the
document wider than the window, a visible layout element wider than its box or past the window's
right edge, a Tabulator table wider than its holder. Any browser console error fails the test."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time

import pytest

from tests.app.conftest import (
    HAS_FINITE,
    MAP_DRAWN,
    MAP_IMAGE,
    OVERFLOW,
    PAINTED,
    TAB_READY,
    TAB_STATE,
    screenshots,
)
from tests.browser import FLUXLENS, README_SERVE, REPO, free_port, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TABS = ("Map", "Compare", "Profile", "Validation", "Analyses", "Models", "Jobs", "About")
WITH_PLOTS = {"Map", "Compare", "Validation", "Models"}
BOX = "-100,36,-96,40"  # 2 × 2 cells of the small demo world's 2° grid
REMEMBER_IMAGE = f"(name) => {{ window.__shownImage = {MAP_IMAGE}(name); }}"
NEW_IMAGE = (
    f"(name) => {{ const img = {MAP_IMAGE}(name); return img !== window.__shownImage && {HAS_FINITE}(img); }}"
)


@pytest.fixture
def viewport() -> dict:
    return {"width": 1280, "height": 720}


def _tab(page, title: str, timeout_s: float = 30) -> dict | None:
    """Open a main tab and wait until it is ready (:data:`TAB_READY`); None when it is, else what
    it still lacks after ``timeout_s`` (:data:`TAB_STATE`)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.locator(".bk-tab").filter(has_text=title).first.click()
    try:
        page.wait_for_function(
            TAB_READY, arg={"title": title, "plots": title in WITH_PLOTS}, timeout=timeout_s * 1000
        )
    except PlaywrightTimeout:
        return page.evaluate(f"(t) => {TAB_STATE}(t)", title)
    wait_idle(page)
    page.evaluate(PAINTED)
    return None


def _open(page, title: str) -> None:
    """:func:`_tab`, failing the test when the tab is not ready."""
    lacking = _tab(page, title)
    if lacking is not None:
        pytest.fail(f"the {title} tab was not ready: {json.dumps(lacking)}", pytrace=False)


def _product_picker(page):
    return page.get_by_role("combobox", name="Product", exact=True)


def _first_run(page):
    return page.get_by_text("Welcome to FluxLens")


def _every_tab(page, size: str, shots, problems: dict) -> None:
    """Open, screenshot and check every tab; what is wrong goes into ``problems`` (a tab not ready,
    overflowing elements), so that one run reports every tab."""
    for title in TABS:
        lacking = _tab(page, title)
        screenshots(page, str(shots / f"{size}-{title}"))
        found = page.evaluate(OVERFLOW)
        if lacking is not None:
            found.insert(0, {"what": "tab not ready after 30 s", **lacking})
        if found:
            problems[f"{size} {title}"] = found


@pytest.fixture
def first_run() -> bool:
    """This test is the new visitor: the first-run panel shows."""
    return True


def test_first_hour_from_an_empty_data_directory(serve_dashboard, browser_page, tmp_path):
    page, _errors = browser_page
    shots = tmp_path / "shots"
    shots.mkdir()
    data_dir = tmp_path / "fluxlens-data"
    env = dict(os.environ, FLUXLENS_DATA_DIR=str(data_dir))

    # the README's path: serve refuses an empty data directory and says what to run
    refused = subprocess.run([*FLUXLENS, "serve", "--port", str(free_port())], env=env,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert refused.returncode == 2 and "fluxlens demo" in refused.stderr, refused.stderr
    stamp = REPO / ".setup-stamp"
    want = hashlib.sha256((REPO / "pyproject.toml").read_bytes() + (REPO / "dev.sh").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text().strip() != want:
        pytest.skip("the README's serve command would install the dependencies first: run `bash dev.sh test`")
    t0 = time.monotonic()
    readme = dict(env, FLUXLENS_DEMO_SIZE="small")
    with serve_dashboard(
        readme, tmp_path / "serve.log", command=README_SERVE
    ) as base:  # one worker beside it
        demo_s = time.monotonic() - t0
        assert (
            "building the demo world and its emulator (fluxlens demo --small)"
            in (tmp_path / "serve.log").read_text()
        )
        try:
            page.goto(f"{base}/app", timeout=120_000)
            page.wait_for_function(MAP_DRAWN, arg="main_map", timeout=120_000)
            wait_idle(page)
            _first_run(page).wait_for(state="visible")
            page.get_by_text("Synthetic data.").first.wait_for(state="visible")
            page.screenshot(path=str(shots / "1280x720-first-run.png"))
            offered = set(_product_picker(page).locator("option").all_inner_texts())

            # a re-prediction from the Jobs tab, run by the default worker
            _open(page, "Jobs")
            box = page.get_by_placeholder("-100,35,-95,40")
            box.fill(BOX)
            box.press("Enter")
            wait_idle(page)
            page.get_by_role("button", name="Submit").click()
            row = page.locator(".job-row").first
            row.wait_for(timeout=30_000)
            deadline = time.monotonic() + 240
            while row.get_attribute("data-status") not in ("succeeded", "failed", "cancelled"):
                assert time.monotonic() < deadline, f"job not finished after 240 s: {row.inner_text()}"
                page.wait_for_timeout(500)
            assert row.get_attribute("data-status") == "succeeded", row.inner_text()
            product = row.locator("td").last.locator("code").inner_text()
            assert product

            # dismissed, it stays dismissed for this browser
            page.locator(".first-run-dismiss button").click()
            _first_run(page).wait_for(state="hidden")

            # the new product on the Map (the picker refreshes from the catalog without a reload)
            _open(page, "Map")
            page.evaluate(REMEMBER_IMAGE, "main_map")
            deadline = time.monotonic() + 60
            while not (new := set(_product_picker(page).locator("option").all_inner_texts()) - offered):
                assert time.monotonic() < deadline, "the finished job's product never appeared in the picker"
                page.wait_for_timeout(1000)
            assert len(new) == 1, new
            _product_picker(page).select_option(label=new.pop())
            wait_idle(page)
            page.wait_for_function(NEW_IMAGE, arg="main_map", timeout=60_000)
            assert f"product={product}" in page.url  # the permalink names the product shown
            page.screenshot(path=str(shots / "1280x720-new-product-map.png"), full_page=True)

            # ... and in Compare, as product A beside the demo's LE product (fluxes_demo): LE on the map
            # first (a product opens on its first variable; Compare offers the map variable's products)
            variable = page.get_by_role("combobox", name="Variable", exact=True)
            [le] = [t for t in variable.locator("option").all_inner_texts() if t.endswith("(le)")]
            page.evaluate(REMEMBER_IMAGE, "main_map")
            variable.select_option(label=le)
            page.wait_for_function(NEW_IMAGE, arg="main_map", timeout=60_000)
            _open(page, "Compare")
            compare_a = page.get_by_role("combobox", name="Product A", exact=True)
            [mine] = [t for t in compare_a.locator("option").all_inner_texts() if product in t]
            if compare_a.input_value() != mine:
                compare_a.select_option(label=mine)
                wait_idle(page)
            compare_b = page.get_by_role("combobox", name="Product B", exact=True)
            [demo_le] = [t for t in compare_b.locator("option").all_inner_texts() if "fluxes_demo" in t]
            if compare_b.input_value() != demo_le:
                compare_b.select_option(label=demo_le)
            wait_idle(page)
            for name in ("compare_a", "compare_b", "compare_diff"):
                page.wait_for_function(MAP_DRAWN, arg=name, timeout=60_000)
            page.wait_for_function(
                f"() => location.search.includes('compare={product}~fluxes_demo')", timeout=30_000
            )
            page.screenshot(path=str(shots / "1280x720-new-product-compare.png"), full_page=True)

            problems: dict[str, list] = {}
            _every_tab(page, "1280x720", shots, problems)

            page.set_viewport_size({"width": 1400, "height": 900})
            page.reload()
            page.wait_for_function(MAP_DRAWN, arg="main_map", timeout=120_000)
            wait_idle(page)
            assert not _first_run(page).is_visible()  # the cookie kept it dismissed
            _every_tab(page, "1400x900", shots, problems)

            # About brings the first-run help back, for good (the cookie is cleared)
            page.get_by_role("button", name="Show first-run help").click()
            _first_run(page).wait_for(state="visible")
            page.reload()
            page.wait_for_function(MAP_DRAWN, arg="main_map", timeout=120_000)
            _first_run(page).wait_for(state="visible")
        except BaseException:
            page.screenshot(path=str(shots / "failure.png"), full_page=True)
            raise

    print(f"bash dev.sh serve (small demo) to the first answer: {demo_s:.0f} s; screenshots in {shots}")
    lines = [f"{where}: {json.dumps(item)}" for where, items in problems.items() for item in items]
    report = "tabs not ready or overflowing:\n" + "\n".join(lines)
    assert not problems, report
