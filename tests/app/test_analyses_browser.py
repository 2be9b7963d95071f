"""The Analyses tab in a real Chromium against a real ``fluxlens serve`` (its default worker) on the
monthly flux world of eight real FLUXNET2015 towers (:mod:`tests.validation.flux_world`):

- the scorecard of two products × LE and H against the towers, with an uploaded GeoJSON polygon as a
  region row, then switched to ILAMB's relative colouring;
- a Hovmöller diagram over a box, a correlation map of the two products and the area-weighted series
  of an uploaded polygon, each a job the worker runs;
- no overflow at 1400 × 900 and 1280 × 720, no console error. Screenshots go to
  ``artifacts/screenshots/analyses_*``.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.app.test_layout_browser import OVERFLOW_JS
from tests.browser import choose, save_screenshot, wait_idle
from tests.validation import flux_world

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WEST = {"type": "Polygon", "coordinates": [[[-125, 30], [-90, 30], [-90, 45], [-125, 45], [-125, 30]]]}
EUROPE = {"type": "Polygon", "coordinates": [[[-10, 35], [30, 35], [30, 65], [-10, 65], [-10, 35]]]}
TITLES = """() => { const out = [];
  for (const m of Bokeh.documents[0].all_models) {
    if (m.title && m.title.text) out.push(String(m.title.text)); }
  return out; }"""


@pytest.fixture(scope="module")
def analyses_server(shared_data, serve_dashboard, tmp_path_factory):
    root = tmp_path_factory.mktemp("analyses-browser")
    data_dir = root / "fluxlens-data"
    data_dir.mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("FLUXLENS_DATA_DIR", str(data_dir))
    try:
        flux_world.build(shared_data)
    finally:
        mp.undo()
    for name, shape in (("west", WEST), ("europe", EUROPE)):
        (root / f"{name}.geojson").write_text(json.dumps(shape))
    env = dict(os.environ, FLUXLENS_DATA_DIR=str(data_dir), FLUXLENS_VALIDATION_CACHE=str(root / "cache"))
    with serve_dashboard(env, root / "serve.log") as url:
        yield {"url": f"{url}/app?product=le_monthly&var=le", "root": root}


@pytest.fixture
def viewport() -> dict:
    return {"width": 1400, "height": 900}


def _tab(page, title: str) -> None:
    page.locator(".bk-tab").filter(has_text=title).first.click()
    wait_idle(page)


def _fits(page, what: str) -> None:
    problems = page.evaluate(OVERFLOW_JS)
    assert not problems, f"{what}: {problems}"


def _wait_title(page, start: str, timeout_ms: int = 180_000) -> str:
    page.wait_for_function(
        "(s) => [...Bokeh.documents[0].all_models].some(m => m.title && String(m.title.text).startsWith(s))",
        arg=start,
        timeout=timeout_ms,
    )
    return next(t for t in page.evaluate(TITLES) if t.startswith(start))


def _run(page, button: str) -> None:
    page.get_by_role("button", name=button).click()
    wait_idle(page)


def test_scorecard_and_maps_from_the_analyses_tab(analyses_server, browser_page):
    page, errors = browser_page
    root = analyses_server["root"]
    page.goto(analyses_server["url"])
    wait_idle(page, 120_000)
    _tab(page, "Analyses")

    # scorecard: two products, LE and H, a polygon region
    page.get_by_role("button", name="h", exact=True).click()
    wait_idle(page)
    page.locator(".choices").first.click()
    page.locator(".choices__list--dropdown .choices__item", has_text="le_monthly_b").first.click()
    page.keyboard.press("Escape")
    wait_idle(page)
    page.locator("input[type=file]").first.set_input_files(str(root / "west.geojson"))
    wait_idle(page)
    _run(page, "Compute scorecard")
    page.get_by_text("Overall score, region all").first.wait_for(timeout=240_000)
    wait_idle(page)
    cells = page.locator("td.score[data-score]")
    assert cells.count() > 0 and page.locator("td.score[data-overview]").count() == 4  # 2 products × 2
    assert page.get_by_text("west", exact=True).count() >= 2  # the polygon's row in the LE and H tables
    overview = page.locator('td.score[data-overview="le"]').first
    absolute = overview.evaluate("e => e.style.background")
    save_screenshot(page, "analyses_01_scorecard_1400x900", full_page=False)
    _fits(page, "scorecard at 1400 × 900")
    page.get_by_text("Relative to the other products (ILAMB)").click()
    wait_idle(page)
    page.get_by_text("score colour relative to the other products").first.wait_for(timeout=30_000)
    relative = page.locator('td.score[data-overview="le"]').first.evaluate("e => e.style.background")
    assert relative != absolute
    save_screenshot(page, "analyses_02_scorecard_relative_1400x900", full_page=False)
    page.set_viewport_size({"width": 1400, "height": 2600})  # the whole table (the template scrolls inside)
    page.wait_for_timeout(800)
    save_screenshot(page, "analyses_02_scorecard_relative_1400x900_full", full_page=False)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.wait_for_timeout(500)

    # maps and diagrams
    _tab(page, "Maps and diagrams")
    choose(page, "Hovmöller diagram, time × latitude")
    box = page.get_by_placeholder("e.g. -110,20,-80,50")
    box.fill("-20,30,40,60")
    box.press("Enter")
    wait_idle(page)
    _run(page, "Run analysis")
    title = _wait_title(page, "Hovmöller, time × latitude")
    assert "le_monthly le, lon -20…40, lat 30…60" in title
    wait_idle(page)
    save_screenshot(page, "analyses_03_hovmoller_1400x900", full_page=False)
    _fits(page, "Hovmöller at 1400 × 900")

    choose(page, "per-pixel temporal correlation map")
    wait_idle(page)
    second = [
        sel
        for sel in page.locator("select").all()
        if sel.is_visible() and "le_monthly_b" in sel.locator("option").all_inner_texts()
    ][1]  # the product, then the second product
    second.select_option(label="le_monthly_b")
    wait_idle(page)
    _run(page, "Run analysis")
    title = _wait_title(page, "Correlation with le_monthly_b")
    assert "le_monthly le, lon -20…40, lat 30…60" in title
    wait_idle(page)
    save_screenshot(page, "analyses_04_correlation_1400x900", full_page=False)
    _fits(page, "correlation map at 1400 × 900")

    choose(page, "area-weighted mean series")
    wait_idle(page)
    page.locator("input[type=file]").last.set_input_files(str(root / "europe.geojson"))
    wait_idle(page)
    _run(page, "Run analysis")
    title = _wait_title(page, "Area-weighted mean: le_monthly le, polygon europe")
    page.get_by_text("Computed as:").first.wait_for(timeout=30_000)
    wait_idle(page)
    save_screenshot(page, "analyses_05_polygon_series_1400x900", full_page=False)
    _fits(page, "polygon series at 1400 × 900")

    page.set_viewport_size({"width": 1280, "height": 720})
    page.wait_for_timeout(800)
    save_screenshot(page, "analyses_06_polygon_series_1280x720", full_page=False)
    _fits(page, "polygon series at 1280 × 720")
    _tab(page, "Scorecard")
    page.wait_for_timeout(500)
    save_screenshot(page, "analyses_07_scorecard_1280x720", full_page=False)
    _fits(page, "scorecard at 1280 × 720")
    assert errors == []
