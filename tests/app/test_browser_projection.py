"""The Map tab's Equal Earth globe in a real Chromium against a real ``fluxlens serve`` on the small
demo world (the session's shared ``demo_server``), at two window sizes: switching the projection,
the hover's lon/lat (the page's JavaScript inverse projection against pyproj) and value (against the
product's Zarr store), a click selecting the lon/lat pixel, the figure inside its container.
Screenshots go to the test's tmp dir and to ``/tmp/fluxlens-shots/``."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
import xarray as xr
from PIL import Image
from pyproj import Transformer

from app import projection
from tests.browser import MAP_FRAME as FRAME
from tests.browser import wait_idle
from tests.stores import level_path

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = Path("/tmp/fluxlens-shots")
QUERY = "?product=ssm_global_demo&var=ssm&date=2018-07-01"
TO_EQEARTH = Transformer.from_crs(4326, 8857, always_xy=True)
# cell centres of ssm_global_demo (2° grid in the small demo world): Great Plains, Taymyr, Chukotka
TARGETS = [(-99.0, 35.0), (101.0, 71.0), (179.0, 67.0)]

# The figure's host element and the chain of its containers up to the page: sizes and overflow.
CONTAINERS = """(name) => { const m = Bokeh.documents[0].get_model_by_name(name);
  const v = Bokeh.index.find_one(m); const out = []; let el = v.el;
  while (el) {
    const r = el.getBoundingClientRect();
    out.push({tag: el.tagName || '#shadow', cls: String(el.className || ''), left: r.left, right: r.right,
              scrollWidth: el.scrollWidth, clientWidth: el.clientWidth});
    el = el.parentElement || (el.getRootNode && el.getRootNode().host) || null;
  }
  return out; }"""


@pytest.fixture(params=[{"width": 1280, "height": 720}, {"width": 1400, "height": 900}], ids=lambda v: str(v))
def viewport(request) -> dict:
    return request.param


def _frame(page, name: str):
    return page.evaluate(FRAME, name)


def _screen(frame: dict, x: float, y: float) -> tuple[float, float]:
    sx = frame["left"] + (x - frame["x0"]) / (frame["x1"] - frame["x0"]) * frame["width"]
    sy = frame["top"] + (frame["y1"] - y) / (frame["y1"] - frame["y0"]) * frame["height"]
    return sx, sy


def _plot_xy(frame: dict, sx: float, sy: float) -> tuple[float, float]:
    x = frame["x0"] + (sx - frame["left"]) / frame["width"] * (frame["x1"] - frame["x0"])
    y = frame["y1"] - (sy - frame["top"]) / frame["height"] * (frame["y1"] - frame["y0"])
    return x, y


def _query(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def _tooltip(page, timeout_s: float = 10) -> list[str]:
    """The tooltip's (lon, lat, value) once the tooltip shows numbers (while the page redraws after a
    click, Bokeh may show a tooltip of the previous frame for a moment)."""
    rows = page.locator(".bk-tooltip-row-value")
    rows.first.wait_for(state="visible", timeout=timeout_s * 1000)
    deadline = time.monotonic() + timeout_s
    while True:
        texts = rows.all_inner_texts()[:3]
        try:
            float(texts[0]), float(texts[1])
            return texts
        except (ValueError, IndexError):
            if time.monotonic() > deadline:
                raise AssertionError(f"tooltip without lon/lat: {texts}") from None
        page.wait_for_timeout(200)


def _shoot(page, tmp_path: Path, name: str, clip: dict | None = None) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=clip is None, clip=clip)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)
    return path


def test_equal_earth_globe_in_the_browser(demo_server, browser_page, viewport, tmp_path):
    page, errors = browser_page
    size = f"{viewport['width']}x{viewport['height']}"
    page.goto(demo_server["url"] + QUERY)
    wait_idle(page)
    page.wait_for_function(f"(() => {{ const f = ({FRAME})('main_map'); return f && f.finite > 0; }})()")
    _shoot(page, tmp_path, f"projection_{size}_0_lonlat")

    page.get_by_role("combobox", name="Projection").select_option(label="Equal Earth (global)")
    page.wait_for_function("location.search.includes('proj=equal_earth')", timeout=30_000)
    wait_idle(page)
    page.wait_for_function(
        f"(() => {{ const f = ({FRAME})('projected_map'); return f && f.visible && f.finite > 1000; }})()",
        timeout=30_000,
    )
    frame = _frame(page, "projected_map")
    assert not _frame(page, "main_map")["visible"]
    page.get_by_text("Equal Earth (EPSG:8857").first.wait_for(state="visible", timeout=10_000)
    page.get_by_text("pyramid level").filter(has_text="Equal Earth").first.wait_for(state="visible")

    # the page's inverse projection (the hover's) against pyproj
    lon = np.array([-179.99, -120.5, -45.0, 0.0, 33.3, 99.9, 179.99, 10.0, -10.0])
    lat = np.array([0.0, 35.2, 82.3, -89.99, 89.99, -60.1, 66.6, -30.0, 45.0])
    x, y = TO_EQEARTH.transform(lon, lat)
    got = page.evaluate(
        f"(pts) => {{ {projection.INVERSE_JS} return pts.map(p => inverse(p[0], p[1])); }}",
        [[float(a), float(b)] for a, b in zip(x, y, strict=True)],
    )
    np.testing.assert_allclose(np.array(got), np.c_[lon, lat], atol=1e-6)

    # hover and click at cell centres: lon/lat of the mouse and the product's value there
    store = xr.open_zarr(level_path(demo_server["data_dir"], "ssm_global_demo"), consolidated=False)
    day = store["ssm"].sel(time="2018-07-01").load()
    finite = 0
    for tlon, tlat in TARGETS:
        sx, sy = _screen(frame, *TO_EQEARTH.transform(tlon, tlat))
        page.mouse.move(frame["left"] - 30, frame["top"] - 30)
        page.wait_for_timeout(200)
        page.mouse.move(sx, sy)
        hover_lon, hover_lat, value = _tooltip(page)
        mouse_lon, mouse_lat = projection.to_lonlat(*_plot_xy(frame, sx, sy))
        assert float(hover_lon) == pytest.approx(float(mouse_lon), abs=1.5e-3)
        assert float(hover_lat) == pytest.approx(float(mouse_lat), abs=1.5e-3)
        assert float(hover_lon) == pytest.approx(tlon, abs=0.3) and float(hover_lat) == pytest.approx(
            tlat, abs=0.3
        )
        expect = float(day.sel(lon=tlon, lat=tlat, method="nearest"))
        if np.isfinite(expect):
            assert value == f"{expect:.3f} m3 m-3", (tlon, tlat)
            finite += 1
        page.mouse.click(sx, sy)
        page.wait_for_function(
            f"(() => {{ const q = new URLSearchParams(location.search).get('px');"
            f" return q && Math.abs(+q.split(',')[1] - {tlat}) < 0.3; }})()",
            timeout=30_000,
        )
        px_lon, px_lat = (float(v) for v in _query(page)["px"].split(","))
        assert (px_lon, px_lat) == pytest.approx((float(mouse_lon), float(mouse_lat)), abs=1e-4)
        page.get_by_text("product(s) with").first.wait_for(state="visible", timeout=60_000)
        wait_idle(page)
    assert finite >= 2

    # drawn: the map region has many colours; inside its container, no horizontal overflow
    page.mouse.move(5, 5)
    page.wait_for_timeout(300)
    c = frame["canvas"]
    clip = {"x": c["left"], "y": c["top"], "width": c["right"] - c["left"], "height": c["bottom"] - c["top"]}
    colours = (
        Image.open(_shoot(page, tmp_path, f"projection_{size}_2_map", clip)).convert("RGB").getcolors(10**6)
    )
    assert colours is not None and len(colours) > 50, "projected map looks blank"
    chain = page.evaluate(CONTAINERS, "projected_map")
    assert chain[0]["scrollWidth"] <= chain[0]["clientWidth"], json.dumps(chain, indent=1)
    parent = next(el for el in chain[1:] if el["clientWidth"] > 0)
    assert c["right"] <= parent["right"] + 1, json.dumps(chain, indent=1)  # the globe fits its pane
    # (the Map tab as a whole is still wider than these windows: its row of export buttons, see
    # app/map_panel.py; an open defect of the first-hour issue)
    _shoot(page, tmp_path, f"projection_{size}_1_equal_earth")

    # a fresh page from the link opens on the globe; back to lon/lat shows the zoomable map
    page.goto(page.url)
    wait_idle(page)
    page.wait_for_function(
        f"(() => {{ const f = ({FRAME})('projected_map'); return f && f.visible && f.finite > 1000; }})()",
        timeout=30_000,
    )
    page.get_by_role("combobox", name="Projection").select_option(label="lon/lat (zoomable)")
    page.wait_for_function("!location.search.includes('proj=')", timeout=30_000)
    page.wait_for_function(
        f"(() => {{ const f = ({FRAME})('main_map'); return f && f.visible && f.finite > 1000; }})()",
        timeout=30_000,
    )
    wait_idle(page)
    _shoot(page, tmp_path, f"projection_{size}_3_back_to_lonlat")
    assert not errors
