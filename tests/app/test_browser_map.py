"""The map explorer in a real Chromium against a real ``fluxlens serve`` on the small demo world
(the session's shared ``demo_server``). Screenshots go to ``artifacts/screenshots/``. Any browser
console error fails the test.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import xarray as xr

from tests.browser import SCREENSHOTS, choose, save_screenshot, wait_idle
from tests.stores import level_path

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MAP_VIEW = """(() => { const m = Bokeh.documents[0].get_model_by_name('main_map');
  const img = m.renderers.find(r => r.glyph.type === 'Image' || r.glyph.constructor.name === 'Image');
  const a = img.data_source.data.image[0]; let finite = 0;
  for (let i = 0; i < a.length; i++) { if (Number.isFinite(a[i])) finite++; }
  return {x0: m.x_range.start, x1: m.x_range.end, y0: m.y_range.start, y1: m.y_range.end,
          finite: finite, n: a.length, dw: img.data_source.data.dw[0]}; })()"""


def _map_canvas(page):
    """The largest canvas on the page (the main map)."""
    boxes = [(c, c.bounding_box()) for c in page.locator("canvas").all()]
    boxes = [(c, b) for c, b in boxes if b and b["width"] > 0]
    return max(boxes, key=lambda cb: cb[1]["width"] * cb[1]["height"])


def _wait_text(page, text: str, timeout=30_000):
    """Wait until ``text`` is visible (locators see inside Panel's shadow DOM; innerText does not)."""
    page.get_by_text(text).first.wait_for(state="visible", timeout=timeout)


def _wait_status(page, text: str, timeout=30_000):
    """Wait until the map's status line (product, variable, date, level) contains ``text``."""
    page.get_by_text("pyramid level").filter(has_text=text).first.wait_for(state="visible", timeout=timeout)


def _has_text(page, text: str) -> bool:
    return page.get_by_text(text).count() > 0


def _status(page) -> str:
    return page.get_by_text("pyramid level").first.inner_text()


def test_map_explorer_end_to_end(demo_server, browser_page):
    page, errors = browser_page
    try:
        _explore(page, demo_server)
    except BaseException:
        save_screenshot(page, "failure")
        raise


def _explore(page, server):
    from PIL import Image

    page.goto(server["url"])
    wait_idle(page)
    page.wait_for_function(MAP_VIEW.replace("return {", "return {ok: true,") + ".finite > 0", timeout=30_000)
    view = page.evaluate(MAP_VIEW)
    assert view["finite"] > 1000, view
    assert "gssm1km_demo" in page.url or "GSSM" in _status(page)
    canvas, box = _map_canvas(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    png = SCREENSHOTS / "01_first_map.png"
    canvas.screenshot(path=str(png))
    colours = Image.open(png).convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50, "map canvas looks blank"
    save_screenshot(page, "01_page")

    # switch product: the global soil moisture keeps the current (Great Plains) view
    choose(page, "Demo global surface")
    wait_idle(page)
    _wait_status(page, "Demo global surface soil moisture")
    page.wait_for_function("location.search.includes('product=ssm_global_demo')", timeout=30_000)
    # step the date forward
    page.get_by_role("button", name="step ▶").click()
    wait_idle(page)
    _wait_status(page, "2018-07-02")
    page.wait_for_function("location.search.includes('date=2018-07-02')", timeout=30_000)

    # back to the 1 km product, zoom in with the wheel over the map (once its wheel zoom is picked in
    # the toolbar: by default the wheel scrolls the page)
    choose(page, "Demo GSSM1km-like surface")
    wait_idle(page)
    _wait_status(page, "GSSM1km")
    before = page.evaluate(MAP_VIEW)
    page.locator(".bk-tool-icon-wheel-zoom").first.click()
    canvas, box = _map_canvas(page)
    cx, cy = box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5
    page.mouse.move(cx, cy)
    for _ in range(4):
        page.mouse.wheel(0, -300)
        page.wait_for_timeout(150)
    wait_idle(page)
    page.wait_for_function(
        f"(() => {{ const v = {MAP_VIEW}; return v.x1 - v.x0 < {0.8 * (before['x1'] - before['x0'])} && "
        f"v.dw < {0.8 * before['dw']}; }})()",
        timeout=30_000,
    )
    zoomed = page.evaluate(MAP_VIEW)
    assert zoomed["finite"] > 1000
    save_screenshot(page, "02_zoomed")

    # click a pixel inside the 1 km region → time series of every soil-moisture product there
    canvas, box = _map_canvas(page)
    page.mouse.click(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.5)
    _wait_text(page, "product(s) with", 60_000)
    wait_idle(page)
    assert _has_text(page, "distance (km)")
    page.wait_for_function("location.search.includes('px=')", timeout=30_000)
    assert "product=gssm1km_demo" in page.url
    save_screenshot(page, "03_pixel_series")

    # CSV export of the pixel series, checked against the product's store read directly
    with page.expect_download() as dl:
        page.get_by_role("button", name="Pixel series as CSV").click()
    path = dl.value.path()
    rows = list(csv.DictReader(open(path, newline="")))
    assert rows and {"time", "product", "variable", "value", "units", "lon", "lat"} <= set(rows[0])
    gssm = [r for r in rows if r["product"] == "gssm1km_demo"]
    assert gssm and all(r["units"] == "m3 m-3" for r in gssm)
    lon, lat = float(gssm[0]["lon"]), float(gssm[0]["lat"])
    store = xr.open_zarr(
        level_path(server["data_dir"], "gssm1km_demo"), consolidated=False
    )
    ref = store["ssm"].sel(lon=lon, lat=lat, method="nearest")
    assert abs(float(ref.lon) - lon) < 1e-6 and abs(float(ref.lat) - lat) < 1e-6
    ref_by_day = {str(t)[:10]: float(v) for t, v in zip(ref.time.values, ref.values, strict=True)}
    for r in gssm:
        expect = ref_by_day[r["time"]]
        got = float(r["value"]) if r["value"] else np.nan
        assert (np.isnan(expect) and np.isnan(got)) or abs(got - expect) < 1e-6, r
    assert {r["product"] for r in rows} >= {"gssm1km_demo", "ssm_global_demo"}

    # map as PNG
    with page.expect_download() as dl:
        page.get_by_role("button", name="Map as PNG").click()
    assert open(dl.value.path(), "rb").read(8) == b"\x89PNG\r\n\x1a\n"

    # box = visible region → area-weighted series of every product and a histogram
    page.get_by_role("button", name="Box = visible region").click()
    _wait_text(page, "cos(lat)-weighted mean of valid pixels", 60_000)
    page.wait_for_function("location.search.includes('box=')", timeout=30_000)
    wait_idle(page)

    # month mean: the status names the period, the URL holds the aggregation
    page.get_by_role("button", name="month", exact=True).click()
    _wait_status(page, "mean 2018-07-01 … 2018-07-31", 60_000)
    page.wait_for_function("location.search.includes('agg=month')", timeout=30_000)
    wait_idle(page)
    save_screenshot(page, "03b_month_mean_box")
    page.get_by_role("button", name="day", exact=True).click()
    _wait_status(page, "2018-07-02 · pyramid")
    wait_idle(page)

    # comparison tab
    page.locator(".bk-tab").filter(has_text="Compare").first.click()
    _wait_text(page, "Common grid", 60_000)
    wait_idle(page)
    assert _has_text(page, "block mean")
    save_screenshot(page, "04_compare")

    # latitudinal profile tab
    page.locator(".bk-tab").filter(has_text="Profile").first.click()
    _wait_text(page, "mean, all valid pixels", 60_000)
    wait_idle(page)
    for name in ("ssm_global_demo", "esacci_demo", "smap_demo"):
        assert page.locator(".tabulator-cell").filter(has_text=name).count() > 0, name
    save_screenshot(page, "05_profile")

    # permalink: a fresh page restores product, date, view and pixel
    page.locator(".bk-tab").filter(has_text="Map").first.click()
    wait_idle(page)
    link = page.url
    state = page.evaluate(MAP_VIEW)
    page.goto("about:blank")
    page.goto(link)
    wait_idle(page)
    _wait_text(page, "product(s) with", 60_000)
    restored = page.evaluate(MAP_VIEW)
    for k in ("x0", "x1", "y0", "y1"):
        assert restored[k] == pytest.approx(state[k], abs=1e-3), k
    assert "2018-07-02" in _status(page) and "GSSM1km" in _status(page)
    save_screenshot(page, "06_permalink_restored")
