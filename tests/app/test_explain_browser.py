"""Explanation maps and what-if re-prediction in a real Chromium against a real ``fluxlens serve`` and
the job worker it starts: submit an explain job for a box from the Jobs tab, see the dominant-driver
map with its legend (every class named, colours of the map's palette), click a pixel for its stacked
SHAP contributions; submit a ``ta+2K`` scenario and its baseline, and see scenario − baseline in
Compare after one click on "B = baseline of A". Screenshots at 1400 × 900 and 1280 × 720 go to
``artifacts/screenshots/``; any browser console error or overflowing element fails the test."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from app import contributions, data
from catalog import api
from models.jobs import SUCCEEDED, JobStore
from tests.app.conftest import OVERFLOW
from tests.browser import MAP_FRAME as FRAME
from tests.browser import save_screenshot, wait_idle
from tests.conftest import demo_copy_with_model

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BOX = "-104,30,-94,40"  # 5 × 5 px of the small demo's 2° grid
PERIOD = "2018-06-03~2018-06-07"  # the Jobs tab's default period: the map's period
VIEW = "-108,-90,27,43"
PIXEL = (-99.0, 35.0)  # a cell centre inside the box

# (name) => the colour bar of the named figure: its title and tick-label overrides
BAR = """(name) => { const m = Bokeh.documents[0].get_model_by_name(name);
  const bar = [...m.right, ...m.left, ...m.above, ...m.below].find(x => x.type === 'ColorBar');
  const o = bar.major_label_overrides;
  const labels = o instanceof Map ? Object.fromEntries(o) : o;
  return {title: String(bar.title), labels: labels}; }"""
# (prefix) => legend labels and the number of Quad glyph rows (HoloViews' Rectangles) of the shown
# figure whose title starts with prefix; null while there is none
BARS = """(prefix) => {
  const shown = Array.from(Bokeh.index.all_views()).filter(v => v.model.type === 'Figure' &&
    v.el.isConnected && v.model.title && String(v.model.title.text).startsWith(prefix));
  if (!shown.length) return null;
  const fig = shown[shown.length - 1].model;
  const labels = [];
  for (const l of [...fig.center, ...fig.right].filter(m => m.type === 'Legend'))
    for (const item of l.items) labels.push(typeof item.label === 'string' ? item.label : item.label.value);
  const quads = fig.renderers.filter(r => r.glyph && r.glyph.type === 'Quad')
    .map(r => r.data_source.get_length());
  return {labels: labels, quads: quads.reduce((a, b) => a + b, 0)}; }"""
SCROLL_TO = """(prefix) => { for (const v of Bokeh.index.all_views()) {
  if (v.model.type === 'Figure' && v.model.title && String(v.model.title.text).startsWith(prefix)) {
    v.el.scrollIntoView({block: 'start'}); return true; } } return false; }"""


@pytest.fixture
def viewport() -> dict:
    return {"width": 1400, "height": 900}


@pytest.fixture(scope="module")
def world(demo_world, tmp_path_factory):
    root = tmp_path_factory.mktemp("explain-browser") / "fluxlens-data"
    settings = dict(num_boost_round=15, n_folds=2, params={"min_data_in_leaf": 5}, shap_sample=100)
    with demo_copy_with_model(demo_world, root, **settings) as version:
        yield {"root": root, "version": version}


@pytest.fixture
def stack(serve_dashboard, world, tmp_path):
    """``fluxlens serve`` on the module's world with its default job worker beside it."""
    env = dict(
        os.environ,
        FLUXLENS_DATA_DIR=str(world["root"]),
        FLUXLENS_JOBS_DB=str(tmp_path / "jobs.sqlite"),
        FLUXLENS_JOB_HEARTBEAT_S="0.5",
        FLUXLENS_VALIDATION_CACHE=str(tmp_path / "cache"),
    )
    with serve_dashboard(env, tmp_path / "serve.log") as base:
        yield {"base": base, "store": JobStore(tmp_path / "jobs.sqlite")}


def _submit(page, store, kind: str, scenario: str = "") -> int:
    """Fill and submit the Jobs tab's form; the new job's id."""
    before = {j.id for j in store.jobs()}
    page.get_by_role("button", name=kind, exact=True).click()
    box = page.get_by_placeholder("-100,35,-95,40")
    box.fill(BOX)
    box.press("Enter")
    if kind == "Re-predict LE/H":
        what_if = page.get_by_placeholder("ta+2K, precip*0.8, ssm-0.05, lai*1.1")
        what_if.fill(scenario)
        what_if.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Submit").click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        new = {j.id for j in store.jobs()} - before
        if new:
            return new.pop()
        time.sleep(0.2)
    raise AssertionError(f"no {kind} job was queued")


def _finished(store, job_id: int, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = store.get(job_id)
        if not job.is_active:
            assert job.status == SUCCEEDED, job.error
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def _click_lonlat(page, name: str, lon: float, lat: float) -> None:
    f = page.evaluate(FRAME, name)
    sx = f["left"] + (lon - f["x0"]) / (f["x1"] - f["x0"]) * f["width"]
    sy = f["top"] + (f["y1"] - lat) / (f["y1"] - f["y0"]) * f["height"]
    assert f["left"] < sx < f["left"] + f["width"] and f["top"] < sy < f["top"] + f["height"], f
    page.mouse.click(sx, sy)


def _wait_contributions(page) -> None:
    """Until the pixel's contribution plot is drawn with its bars."""
    page.wait_for_function(
        f"(() => {{ const b = ({BARS})('SHAP contributions to LE at'); return b && b.quads > 0; }})()",
        timeout=120_000,
        polling=500,
    )
    wait_idle(page)


def _shot(page, prefix: str, name: str) -> None:
    assert page.evaluate(SCROLL_TO, prefix), prefix
    page.wait_for_timeout(400)
    save_screenshot(page, name, full_page=False)


def test_explain_map_contributions_and_scenario_difference(world, stack, browser_page):
    page, errors = browser_page
    store = stack["store"]
    app = f"{stack['base']}/app"
    page.goto(f"{app}?product=fluxes_demo&var=le&agg=period&period={PERIOD}&view={VIEW}", timeout=120_000)
    wait_idle(page, 120_000)

    # -- three jobs from the Jobs tab: an explanation map, a ta+2K scenario and its baseline --------
    page.locator(".bk-tab", has_text="Jobs").first.click()
    wait_idle(page)
    page.get_by_role("button", name="Explain EF (SHAP map)", exact=True).click()
    page.get_by_text("60 times as long as a re-prediction").first.wait_for(timeout=30_000)
    save_screenshot(page, "explain_01_jobs_form", full_page=False)
    explain_id = _submit(page, store, "Explain EF (SHAP map)")
    scenario_id = _submit(page, store, "Re-predict LE/H", "ta+2K")
    baseline_id = _submit(page, store, "Re-predict LE/H", "")
    assert store.get(scenario_id).request["scenario"] == ["ta +2 K"]
    assert "scenario" not in store.get(baseline_id).request
    jobs = (explain_id, scenario_id, baseline_id)
    explained, scenario, baseline = (_finished(store, i).output for i in jobs)
    page.locator(".job-row[data-status='succeeded']").nth(2).wait_for(timeout=30_000)  # the table follows
    save_screenshot(page, "explain_02_jobs_done", full_page=False)
    features = api.product_info(explained).provenance["features"]

    # -- the dominant-driver map: classes with their names on the colour bar ------------------------
    page.wait_for_timeout(data.PRODUCTS_TTL_S * 1000 + 500)  # the server's product list cache
    page.goto(f"{app}?product={explained}&var=dominant_driver&agg=period&period={PERIOD}&view={VIEW}")
    wait_idle(page, 120_000)
    page.wait_for_function(f"({FRAME})('main_map') && ({FRAME})('main_map').finite > 20", timeout=90_000)
    wait_idle(page)
    # the legend names every class, with its colour on the map's palette; the colour bar has a tick
    # at each class
    page.locator(".class-legend").first.wait_for(timeout=30_000)
    legend = page.locator(".class-item").all_inner_texts()
    assert sorted(t.split(" ")[0] for t in legend) == sorted(features), legend
    palette = page.evaluate(
        "() => Array.from(Bokeh.documents[0].get_model_by_name('main_map').renderers"
        ".find(r => r.glyph && r.glyph.type === 'Image').glyph.color_mapper.palette)"
    )
    colours = {
        int(e.get_attribute("data-code")): e.get_attribute("data-colour")
        for e in page.locator(".class-item").all()
    }
    assert all(palette[c].lower() == colour.lower() for c, colour in colours.items()), (palette, colours)
    image = page.evaluate(
        "() => Array.from(Bokeh.documents[0].get_model_by_name('main_map').renderers"
        ".find(r => r.glyph && r.glyph.type === 'Image').data_source.data.image[0])"
    )
    codes = {v for v in image if v is not None and np.isfinite(v)}
    assert codes and codes <= set(range(len(features))), codes  # classes, never a blend of two
    overflow = page.evaluate(OVERFLOW)
    assert overflow == [], str(overflow)
    save_screenshot(page, "explain_03_dominant_driver_1400x900", full_page=False)

    # -- a pixel's stacked contributions -------------------------------------------------------------
    _click_lonlat(page, "main_map", *PIXEL)
    _wait_contributions(page)
    shown = page.evaluate(BARS, "SHAP contributions to LE at")
    drawn = set(shown["labels"]) - {"Σ = LE − LE0"}
    assert "Σ = LE − LE0" in shown["labels"] and len(drawn) <= contributions.SHOWN + 1, shown
    assert len(drawn - set(features)) <= 1  # the weaker inputs summed into one "other" segment
    page.get_by_text("largest mean |contribution|").first.wait_for(timeout=30_000)
    overflow = page.evaluate(OVERFLOW)
    assert overflow == [], str(overflow)
    _shot(page, "SHAP contributions", "explain_04_pixel_contributions_1400x900")

    # -- Compare: scenario − baseline after one click ----------------------------------------------
    page.goto(f"{app}?product={scenario}&var=le&agg=period&period={PERIOD}&view={VIEW}"
              f"&compare={scenario}~fluxes_demo")  # fmt: skip
    wait_idle(page, 120_000)
    page.locator(".bk-tab", has_text="Compare").first.click()
    wait_idle(page)
    page.get_by_role("button", name="B = baseline of A").click()
    page.wait_for_function(
        f"(() => {{ const f = ({FRAME})('compare_diff'); return f && f.title.startsWith("
        "'scenario (ta +2 K) − baseline') && f.finite > 0; })()",
        timeout=120_000,
        polling=500,
    )
    wait_idle(page)
    assert page.evaluate(BAR, "compare_diff")["title"] == "Δ le (W m-2)"
    page.get_by_text("is its baseline").first.wait_for(timeout=30_000)
    assert baseline in page.url
    overflow = page.evaluate(OVERFLOW)
    assert overflow == [], str(overflow)
    _shot(page, "scenario (ta +2 K)", "explain_05_compare_scenario_1400x900")

    # -- the same views in a 1280 × 720 window ------------------------------------------------------
    page.set_viewport_size({"width": 1280, "height": 720})
    page.wait_for_timeout(600)
    overflow = page.evaluate(OVERFLOW)
    assert overflow == [], str(overflow)
    _shot(page, "scenario (ta +2 K)", "explain_06_compare_scenario_1280x720")
    page.goto(f"{app}?product={explained}&var=dominant_driver&agg=period&period={PERIOD}&view={VIEW}"
              f"&px={PIXEL[0]},{PIXEL[1]}")  # fmt: skip
    wait_idle(page, 120_000)
    _wait_contributions(page)
    overflow = page.evaluate(OVERFLOW)
    assert overflow == [], str(overflow)
    save_screenshot(page, "explain_07_dominant_driver_1280x720", full_page=False)
    _shot(page, "SHAP contributions", "explain_08_pixel_contributions_1280x720")
    assert not errors
