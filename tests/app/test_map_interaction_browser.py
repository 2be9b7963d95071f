"""Map interactions in a real Chromium against the session's ``demo_server``: a box drawn with the
box-select tool, the play button, and the coastlines on the dark theme. Reference values are read
from the product's Zarr store directly; screenshots go to ``artifacts/screenshots/``."""

from __future__ import annotations

import csv
import datetime as dt
import time
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from app import styles
from tests.browser import SCREENSHOTS, drag, save_screenshot, wait_idle
from tests.stores import level_path

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VIEW = "?product=ssm_global_demo&var=ssm&date=2018-07-01&view=-110,-90,30,40"
FRAME = """(name) => { const m = Bokeh.documents[0].get_model_by_name(name);
  const v = Bokeh.index.find_one(m);
  const r = v.canvas_view.el.getBoundingClientRect();
  const img = m.renderers.find(r => r.glyph && r.glyph.type === 'Image').data_source.data.image[0];
  let finite = 0; for (let i = 0; i < img.length; i++) { if (Number.isFinite(img[i])) finite++; }
  const coast = m.renderers.find(r => r.glyph && r.glyph.type === 'MultiLine');
  return {left: r.x + v.frame.bbox.x, top: r.y + v.frame.bbox.y, width: v.frame.bbox.width,
          height: v.frame.bbox.height, x0: m.x_range.start, x1: m.x_range.end, y0: m.y_range.start,
          y1: m.y_range.end, finite: finite, coast: coast.glyph.line_color,
          background: m.background_fill_color}; }"""

TITLES = """() => Array.from(Bokeh.documents[0].all_models).filter(m => m.type === 'Title')
  .map(m => String(m.text))"""


def _query(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def _open(page, url: str, min_finite: int = 1) -> dict:
    page.goto(url)
    wait_idle(page)
    page.get_by_text("pyramid level").first.wait_for(state="visible", timeout=60_000)
    page.wait_for_function(f"({FRAME})('main_map').finite >= {min_finite}", timeout=60_000)
    wait_idle(page)
    return page.evaluate(FRAME, "main_map")


def _lonlat(frame: dict, sx: float, sy: float) -> tuple[float, float]:
    lon = frame["x0"] + (sx - frame["left"]) / frame["width"] * (frame["x1"] - frame["x0"])
    lat = frame["y1"] - (sy - frame["top"]) / frame["height"] * (frame["y1"] - frame["y0"])
    return lon, lat


def test_box_drawn_with_the_mouse_gives_box_series_and_histogram(demo_server, browser_page):
    page, errors = browser_page
    frame = _open(page, demo_server["url"] + VIEW)
    page.locator(".bk-tool-icon-box-select").first.click()
    start = (frame["left"] + 0.27 * frame["width"], frame["top"] + 0.23 * frame["height"])
    end = (frame["left"] + 0.69 * frame["width"], frame["top"] + 0.78 * frame["height"])
    drag(page, start, end)
    page.wait_for_function("location.search.includes('box=')", timeout=30_000)
    page.get_by_text("cos(lat)-weighted mean of valid pixels").first.wait_for(state="visible", timeout=60_000)
    page.wait_for_function(f"({TITLES})().some(t => t.includes('pixels in the box'))", timeout=60_000)
    wait_idle(page)
    save_screenshot(page, "interaction_box_drag")

    # the box (lon/lat) is the dragged rectangle, to a screen pixel
    (w, n), (e, s) = _lonlat(frame, *start), _lonlat(frame, *end)
    px = (frame["x1"] - frame["x0"]) / frame["width"]
    box = [float(v) for v in _query(page)["box"].split(",")]
    assert box == pytest.approx([w, s, e, n], abs=1.5 * px)
    w, s, e, n = box

    store = xr.open_zarr(
        level_path(demo_server["data_dir"], "ssm_global_demo"), consolidated=False
    )
    day = store["ssm"].sel(time="2018-07-01").sel(lon=slice(w, e), lat=slice(n, s)).load()
    assert day.size >= 4

    # histogram of the box on the map's product: every valid pixel of the box counted once
    (title,) = [t for t in page.evaluate(TITLES) if "pixels in the box" in t]
    assert "ssm_global_demo" in title and "(level 0)" in title
    counts = page.evaluate(
        """() => { for (const m of Bokeh.documents[0].all_models) {
             if (m.glyph && m.glyph.type === 'Quad' && m.data_source.data.top
                 && m.data_source.data.top.length === 30) { return Array.from(m.data_source.data.top); } }
           return null; }"""
    )
    assert counts is not None and len(counts) == 30
    assert sum(counts) == int(np.isfinite(day.values).sum())

    # area-weighted mean series of every product over the box (CSV of the plotted series)
    with page.expect_download() as dl:
        page.get_by_role("button", name="Box series as CSV").click()
    rows = list(csv.DictReader(open(dl.value.path(), newline="")))
    ours = {r["time"]: float(r["value"]) for r in rows if r["product"] == "ssm_global_demo"}
    assert {r["product"] for r in rows} >= {"ssm_global_demo", "esacci_demo"}
    weights = np.cos(np.deg2rad(day["lat"].values))[:, None] * np.ones(day.shape)
    ok = np.isfinite(day.values)
    expect = float((weights[ok] * day.values[ok]).sum() / weights[ok].sum())
    assert ours["2018-07-01"] == pytest.approx(expect, rel=1e-5)


def _url_date(page) -> str:
    return _query(page).get("date", "")


def test_play_advances_the_date_and_stop_halts_it(demo_server, browser_page):
    page, errors = browser_page
    _open(page, demo_server["url"] + VIEW)
    first = _url_date(page)
    assert first == "2018-07-01"
    page.get_by_role("button", name="▶ play").click()
    seen = [first]
    deadline = time.monotonic() + 60
    while len(seen) < 3 and time.monotonic() < deadline:
        page.wait_for_timeout(200)
        date = _url_date(page)
        if date != seen[-1]:
            seen.append(date)
    assert len(seen) >= 3, f"date did not advance twice while playing: {seen}"
    days = [dt.date.fromisoformat(d) for d in seen]
    assert all(b > a for a, b in zip(days, days[1:], strict=False)), seen
    # the slider's label shows the playing date
    shown = dt.date.fromisoformat(_url_date(page))
    page.get_by_text(shown.strftime("%d %b %Y")).first.wait_for(state="visible", timeout=10_000)
    page.get_by_role("button", name="■ stop").click()
    page.get_by_role("button", name="▶ play").wait_for(state="visible", timeout=10_000)
    wait_idle(page)
    stopped = _url_date(page)
    page.wait_for_timeout(4000)  # more than three play intervals
    wait_idle(page)
    assert _url_date(page) == stopped
    save_screenshot(page, "interaction_play_stopped")


def test_coastlines_are_light_on_the_dark_theme(demo_server, browser_page):
    page, errors = browser_page
    # a view without data of the 1 km product: background and coastlines only
    url = demo_server["url"] + "?theme=dark&product=gssm1km_demo&var=ssm&view=-20,40,30,60"
    frame = _open(page, url, min_finite=0)
    assert frame["finite"] == 0
    assert frame["coast"]["value"] == styles.coastline_colour(True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / "interaction_dark_coastlines.png"
    clip = {"x": frame["left"], "y": frame["top"], "width": frame["width"], "height": frame["height"]}
    page.screenshot(path=str(path), clip=clip)
    save_screenshot(page, "interaction_dark_page")
    lum = np.asarray(Image.open(path).convert("L"), dtype=int)
    background = np.median(lum)
    assert background < 90, f"map background is not dark (median luminance {background})"
    light = int((lum > background + 100).sum())
    assert light > 500, f"only {light} light coastline pixels on the dark map"
