"""Prediction intervals in a real Chromium against a real ``fluxlens serve`` (:func:`model_server`: the
small demo world with an emulator and its re-prediction carrying ``le_q05`` … ``h_q95``): the Map tab
draws the upper LE bound (the uncertainty map, colour bar in W m-2); a click on a pixel gives the pixel
series with the product's 90 % band under its curve and the method stated; the Validation site view
at US-D01 (a tower inside the re-prediction's box) shades the band at the tower and counts the tower
observations inside it, in W m-2 and in mm d-1. The bands are read from the Bokeh document (the
Patch glyph HoloViews draws an Area with) and checked against the product's store. Screenshots at
1280 × 720 and 1400 × 900 go to ``artifacts/screenshots/``; any browser console error fails the test."""

from __future__ import annotations

import time

import numpy as np
import pytest
import xarray as xr

from tests.app.conftest import BAND_PRODUCT, OVERFLOW
from tests.browser import MAP_FRAME as FRAME
from tests.browser import save_screenshot, wait_idle
from tests.stores import level_path

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TOWER = ("US-D01", -97.4131, 38.0293)  # fluxnet_demo, inside the band world's box
CELL = (-97.0, 39.0)  # the re-prediction's 2° cell holding the tower
VIEW = f"?product={BAND_PRODUCT}&var=le_q95&date=2018-06-04&view=-110,-80,20,50"

COLORBAR_TITLES = """() => Array.from(Bokeh.documents[0].all_models).filter(m => m.type === 'ColorBar')
  .map(m => String(m.title))"""
# ``(prefix) => [...]``: of the shown figure whose title starts with ``prefix`` (a redrawn plot's old
# figure stays in the document), every Patch glyph (an hv.Area) with its legend label, its x (ms) and
# y values; null while there is no such figure.
BANDS = """(prefix) => {
  const shown = Array.from(Bokeh.index.all_views()).filter(v => v.model.type === 'Figure' &&
    v.el.isConnected && v.model.title && String(v.model.title.text).startsWith(prefix));
  if (!shown.length) return null;
  const fig = shown[shown.length - 1].model;
  const labels = new Map();
  const legends = [...fig.center, ...fig.right, ...fig.left, ...fig.above, ...fig.below]
    .filter(m => m.type === 'Legend');
  for (const l of legends) for (const item of l.items) {
    const text = typeof item.label === 'string' ? item.label : item.label && (item.label.value ?? null);
    for (const r of item.renderers) labels.set(r.id, text);
  }
  return fig.renderers.filter(r => r.glyph && r.glyph.type === 'Patch' && r.visible).map(r => ({
    label: labels.get(r.id) ?? null, x: Array.from(r.data_source.data[r.glyph.x.field] ?? []),
    y: Array.from(r.data_source.data[r.glyph.y.field] ?? [])})); }"""
SCROLL_TO = """(prefix) => { for (const v of Bokeh.index.all_views()) {
  if (v.model.type === 'Figure' && v.model.title && String(v.model.title.text).startsWith(prefix)) {
    v.el.scrollIntoView({block: 'start'}); return true; } } return false; }"""


@pytest.fixture(params=[(1280, 720), (1400, 900)], ids=lambda wh: f"{wh[0]}x{wh[1]}")
def viewport(request) -> dict:
    return {"width": request.param[0], "height": request.param[1]}


def _bounds(band: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times in ms, lower, upper) of an Area's Patch: x forward then back, the upper bound forward
    and the lower bound back."""
    x, y = np.asarray(band["x"], dtype=float), np.asarray(band["y"], dtype=float)
    n = x.size // 2
    assert x.size == 2 * n and np.array_equal(x[:n], x[n:][::-1]), band
    return x[:n], y[n:][::-1], y[:n]


def _wait_band(page, prefix: str, timeout: float = 120_000) -> list[dict]:
    page.wait_for_function(
        f"(() => {{ const b = ({BANDS})({prefix!r}); return b && b.length > 0; }})()",
        timeout=timeout,
        polling=500,
    )
    wait_idle(page)
    return page.evaluate(BANDS, prefix)


def _text(page, css: str) -> str:
    """The paragraphs of the Markdown pane with CSS class ``css`` (its text is in a shadow root)."""
    return "\n".join(page.locator(f"{css} p").all_inner_texts())


def _shot(page, prefix: str, name: str) -> None:
    assert page.evaluate(SCROLL_TO, prefix), prefix
    page.wait_for_timeout(400)
    save_screenshot(page, name, full_page=False)


def _select(page, option: str, timeout_s: float = 60.0) -> None:
    """Pick ``option`` in the first visible select offering it: an option text equal to it or, in
    the sidebar, ending with it in brackets (``latent heat flux … (le)``). Retried until one takes it:
    a tab's selects are re-rendered while it opens (the one found can be replaced before the pick)."""
    from playwright.sync_api import Error as PlaywrightError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            for sel in page.locator("select").all():
                if not sel.is_visible():
                    continue
                texts = sel.locator("option").all_inner_texts()
                hit = next((t for t in texts if t == option), None) or next(
                    (t for t in texts if t.endswith(f"({option})")), None
                )
                if hit is not None:
                    sel.select_option(label=hit, timeout=5_000)
                    return
        except PlaywrightError:
            pass  # the select went away under us: look again
        if time.monotonic() > deadline:
            raise AssertionError(f"no visible select offers {option!r}")
        page.wait_for_timeout(300)


def test_uncertainty_map_pixel_band_and_site_band(model_server, browser_page, viewport):
    page, errors = browser_page
    size = f"{viewport['width']}x{viewport['height']}"
    store = xr.open_zarr(level_path(model_server["data_dir"], BAND_PRODUCT), consolidated=False)
    cell = store.sel(lon=CELL[0], lat=CELL[1])
    lower_ref, upper_ref = cell["le_q05"].values.astype(float), cell["le_q95"].values.astype(float)
    days_ms = store["time"].values.astype("datetime64[ms]").astype(float)

    # -- the uncertainty map: the upper LE bound, its colour bar in W m-2 --------------------------
    page.goto(model_server["url"] + VIEW)
    wait_idle(page, 120_000)
    page.wait_for_function(f"({FRAME})('main_map').finite > 20", timeout=90_000, polling=500)
    wait_idle(page)
    titles = page.evaluate(COLORBAR_TITLES)
    assert any("le_q95" in t and "W m-2" in t for t in titles), titles
    save_screenshot(page, f"uncertainty_01_map_{size}", full_page=False)

    # -- a click on the tower's cell: the pixel series with the band under the product's curve -----
    frame = page.evaluate(FRAME, "main_map")
    sx = frame["left"] + (TOWER[1] - frame["x0"]) / (frame["x1"] - frame["x0"]) * frame["width"]
    sy = frame["top"] + (frame["y1"] - TOWER[2]) / (frame["y1"] - frame["y0"]) * frame["height"]
    assert frame["left"] < sx < frame["left"] + frame["width"], (sx, frame)
    assert frame["top"] < sy < frame["top"] + frame["height"], (sy, frame)
    page.mouse.click(sx, sy)
    page.get_by_text("product(s) with").first.wait_for(timeout=120_000)
    page.wait_for_function("location.search.includes('px=')", timeout=30_000)
    # the pixel series is of the selected variable (le_q95): a bound chosen itself has no band
    page.wait_for_function(f"({BANDS})('le_q95 at') !== null", timeout=120_000, polling=500)
    assert page.evaluate(BANDS, "le_q95 at") == []
    _select(page, "le")
    pixel = _wait_band(page, "le at (")
    assert [b["label"] for b in pixel] == [f"{BAND_PRODUCT} 90 % interval"]
    t, lower, upper = _bounds(pixel[0])
    np.testing.assert_array_equal(t, days_ms)
    assert np.isfinite(lower).all() and np.isfinite(upper).all() and (lower <= upper).all()
    np.testing.assert_allclose(lower, lower_ref, rtol=1e-5)
    np.testing.assert_allclose(upper, upper_ref, rtol=1e-5)
    note = _text(page, ".band-note")
    assert "90 % prediction interval" in note and "split-conformal" in note
    assert model_server["version"] in note and "leave-cluster-out" in note
    assert page.evaluate(OVERFLOW) == []
    _shot(page, "le at (", f"uncertainty_02_pixel_band_{size}")

    # -- Validation's site view at the tower: the band at the tower and the observations inside ----
    page.locator(".bk-tab", has_text="Validation").first.click()
    wait_idle(page)
    _select(page, "le")
    wait_idle(page)
    search = page.get_by_placeholder("type a site id or name")
    search.click()
    search.type("grassland 01", delay=40)
    page.locator(".bk-menu").get_by_text(TOWER[0]).first.click()
    site = _wait_band(page, f"{TOWER[0]}: observed vs products")
    assert [b["label"] for b in site] == [f"{BAND_PRODUCT} 90 % interval"]
    _, s_lower, s_upper = _bounds(site[0])
    np.testing.assert_allclose(s_lower, lower_ref, rtol=1e-5)
    np.testing.assert_allclose(s_upper, upper_ref, rtol=1e-5)
    page.locator(".site-band-note p").first.wait_for(timeout=30_000)
    coverage = _text(page, ".site-band-note")
    assert "Tower observations inside the 90 % band:" in coverage
    assert " / 3 (" in coverage  # the product's three days, each with a QC-passed tower day
    assert page.evaluate(OVERFLOW) == []
    _shot(page, f"{TOWER[0]}: observed", f"uncertainty_03_site_band_{size}")

    # -- LE as evaporation: the band converts with the series, the count stays -------------------
    watts = coverage.split("band:")[1].strip()
    page.locator(".le-units").get_by_text("mm d-1").first.click()
    page.wait_for_function(
        f"(() => {{ const b = ({BANDS})('{TOWER[0]}: observed vs products'); "
        "return b && b.length && Math.max(...b[0].y) < 20; })()",
        timeout=120_000,
        polling=500,
    )
    wait_idle(page)
    _, e_lower, e_upper = _bounds(page.evaluate(BANDS, f"{TOWER[0]}: observed vs products")[0])
    # 86400 / λ(T), λ = (2.501 − 0.002361 T) MJ kg-1: 0.0336 … 0.0363 mm d-1 per W m-2 for -30 … 50 °C
    ratio = e_upper / s_upper
    assert ((ratio > 0.0335) & (ratio < 0.0363)).all(), ratio
    np.testing.assert_allclose(e_lower / s_lower, ratio, rtol=1e-6)  # same λ(T) for both bounds
    assert _text(page, ".site-band-note").split("band:")[1].strip() == watts
    _shot(page, f"{TOWER[0]}: observed", f"uncertainty_04_site_band_mm_{size}")
    assert not errors
