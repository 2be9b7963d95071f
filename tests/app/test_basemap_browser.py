"""The optional web tile basemap in a real Chromium against a real ``fluxlens serve`` with a
configured tile URL. The browser has no internet: the page's requests for that URL are answered
with locally drawn tiles, so the test sees which tiles Bokeh asks for. Mercator coordinates of the
expected positions come from pyproj, values from the product's Zarr store read directly."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import time
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
import xarray as xr
from PIL import Image
from playwright.sync_api import expect
from pyproj import Transformer

from tests.browser import MAP_FRAME as FRAME
from tests.browser import SCREENSHOTS, drag, save_screenshot, wait_idle
from tests.stores import level_path

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TILE_URL = "https://tiles.fluxlens.test/{Z}/{X}/{Y}.png"
TILE_RGB = (236, 200, 236)
TARGET = (-99.0, 35.0)  # a cell centre of ssm_global_demo in the small demo world (2°)
QUERY = "?product=ssm_global_demo&var=ssm&date=2018-07-01&view=-110,-90,30,40"
TO_MERC = Transformer.from_crs(4326, 3857, always_xy=True)
TO_LONLAT = Transformer.from_crs(3857, 4326, always_xy=True)

@pytest.fixture(scope="module")
def tile_server(demo_world, serve_dashboard, tmp_path_factory):
    """``fluxlens serve`` on a hard-link copy of the demo world with ``FLUXLENS_TILE_URL`` set."""
    base = tmp_path_factory.mktemp("basemap-server")
    data_dir = base / "fluxlens-data"
    shutil.copytree(demo_world, data_dir, copy_function=os.link)
    env = dict(
        os.environ,
        FLUXLENS_DATA_DIR=str(data_dir),
        FLUXLENS_VALIDATION_CACHE=str(base / "cache"),
        FLUXLENS_TILE_URL=TILE_URL,
    )
    with serve_dashboard(env, base / "serve.log") as url:
        yield {"url": f"{url}/app", "data_dir": data_dir}


def _tile_png() -> bytes:
    img = Image.new("RGB", (256, 256), TILE_RGB)
    for i in range(0, 256, 32):
        img.paste((150, 90, 150), (i, 0, i + 1, 256))
        img.paste((150, 90, 150), (0, i, 256, i + 1))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _frame(page, name="main_map") -> dict:
    return page.evaluate(FRAME, name)


def _screen(frame: dict, x: float, y: float) -> tuple[float, float]:
    """Page pixel of plot coordinates (x, y) in ``frame``."""
    sx = frame["left"] + (x - frame["x0"]) / (frame["x1"] - frame["x0"]) * frame["width"]
    sy = frame["top"] + (frame["y1"] - y) / (frame["y1"] - frame["y0"]) * frame["height"]
    return sx, sy


def _plot_xy(frame: dict, sx: float, sy: float) -> tuple[float, float]:
    x = frame["x0"] + (sx - frame["left"]) / frame["width"] * (frame["x1"] - frame["x0"])
    y = frame["y1"] - (sy - frame["top"]) / frame["height"] * (frame["y1"] - frame["y0"])
    return x, y


def _query(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def _url_view_settled(page, name: str, timeout_s: float = 30) -> tuple[dict, list[float]]:
    """Wait until the URL's lon/lat ``view`` is the figure's mercator ranges converted back (the
    browser's last range change has reached the server); the frame and that view."""
    deadline = time.monotonic() + timeout_s
    while True:
        wait_idle(page)
        frame = _frame(page, name)
        lon, lat = TO_LONLAT.transform([frame["x0"], frame["x1"]], [frame["y0"], frame["y1"]])
        expect_view = [lon[0], lon[1], lat[0], lat[1]]
        view = _floats(_query(page)["view"])
        if np.allclose(view, expect_view, atol=1e-3) or time.monotonic() > deadline:
            assert view == pytest.approx(expect_view, abs=1e-3)
            return frame, view
        page.wait_for_timeout(300)


def _hover(page, frame, x, y) -> list[str]:
    """Tooltip rows (lon, lat, value) with the mouse over plot coordinates (x, y)."""
    page.mouse.move(frame["left"] - 30, frame["top"] - 30)
    page.wait_for_timeout(200)
    page.mouse.move(*_screen(frame, x, y))
    rows = page.locator(".bk-tooltip-row-value")
    rows.first.wait_for(state="visible", timeout=10_000)
    return rows.all_inner_texts()[:3]


def _click_pixel(page, frame, x, y) -> tuple[float, float]:
    """Clear the selection, click plot coordinates (x, y); the selected pixel (lon, lat) from the URL.
    ``frame`` is updated to the map's place on the page after the clearing."""
    page.get_by_role("button", name="Clear selection").click()
    page.wait_for_function("!location.search.includes('px=')", timeout=30_000)
    wait_idle(page)
    frame.update(_frame(page))  # the button sits below the map: clicking it may have scrolled the page
    page.mouse.click(*_screen(frame, x, y))
    page.wait_for_function("location.search.includes('px=')", timeout=30_000)
    wait_idle(page)
    lon, lat = _floats(_query(page)["px"])
    return lon, lat


def _map_region_png(page, frame, name: str) -> Image.Image:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    clip = {k: frame[k] for k in ("width", "height")} | {"x": frame["left"], "y": frame["top"]}
    page.screenshot(path=str(path), clip=clip)
    return Image.open(path).convert("RGB")


def _data_pixels(img: Image.Image) -> int:
    """Pixels that are neither page white nor tile colour (the data image and coastlines)."""
    a = np.asarray(img, dtype=int)
    white = (a > 245).all(axis=-1)
    tile = (np.abs(a - np.array(TILE_RGB)) < 12).all(axis=-1) | (
        np.abs(a - np.array((150, 90, 150))) < 12
    ).all(axis=-1)
    return int((~white & ~tile).sum())


def test_basemap_toggle_mercator_view_and_back(tile_server, browser_page):
    page, errors = browser_page
    try:
        _basemap(page, tile_server)
    except BaseException:
        with contextlib.suppress(Exception):  # keep the test's own error if the page is stuck
            save_screenshot(page, "basemap_failure")
        raise


def _basemap(page, server):
    tiles_asked: list[str] = []
    png = _tile_png()

    def answer(route):
        tiles_asked.append(route.request.url)
        route.fulfill(status=200, content_type="image/png", body=png)

    page.route("https://tiles.fluxlens.test/**", answer)
    page.goto(server["url"] + QUERY)
    wait_idle(page)
    page.wait_for_function(f"(({FRAME})('main_map') || {{}}).finite > 1000", timeout=60_000)
    page.get_by_text("pyramid level 0").first.wait_for(state="visible", timeout=30_000)
    store = xr.open_zarr(
        level_path(server["data_dir"], "ssm_global_demo"), consolidated=False
    )
    cell = store["ssm"].sel(time="2018-07-01").sel(lon=TARGET[0], lat=TARGET[1], method="nearest")
    assert (float(cell.lon), float(cell.lat)) == TARGET
    expect_value = f"{float(cell):.3f} m3 m-3"

    # plain lon/lat view: no tiles, hover and click at the target cell
    flat = _frame(page)
    assert flat["tiles"] == [] and (flat["x0"], flat["x1"]) == (-110, -90)
    lon_txt, lat_txt, value_flat = _hover(page, flat, *TARGET)
    assert (float(lon_txt), float(lat_txt)) == pytest.approx(TARGET, abs=0.03)
    assert value_flat == expect_value
    px_flat = _click_pixel(page, flat, *TARGET)
    assert px_flat == pytest.approx(TARGET, abs=0.03)
    page.get_by_text("product(s) with").first.wait_for(state="visible", timeout=60_000)
    _map_region_png(page, flat, "basemap_0_plain")

    # basemap on: a tile renderer with the configured URL, mercator plot ranges, same lon width
    page.get_by_role("button", name="Basemap").click()
    wait_idle(page)
    page.wait_for_function(
        f"(() => {{ const f = ({FRAME})('main_map'); "
        "return !!f && f.tiles.length === 1 && Math.abs(f.x0) > 1000 && f.finite > 1000; })()",
        timeout=60_000,
    )
    wait_idle(page)
    merc = _frame(page)
    assert merc["tiles"] == [{"url": TILE_URL, "attribution": "Map tiles: tiles.fluxlens.test"}]
    ex, ey = TO_MERC.transform([-110, -90], [30, 40])
    assert (merc["x0"], merc["x1"]) == pytest.approx(tuple(ex), rel=1e-9)
    assert (merc["x1"] - merc["x0"]) / (merc["y1"] - merc["y0"]) == pytest.approx(2.0, rel=1e-6)
    assert (merc["y0"] + merc["y1"]) / 2 == pytest.approx(np.mean(ey), rel=1e-6)
    page.get_by_text("Web Mercator").first.wait_for(state="visible", timeout=30_000)
    assert page.get_by_text("each screen row shows the lon/lat row holding its centre latitude").count() > 0
    page.wait_for_timeout(1500)  # tiles arrive
    assert tiles_asked and all(u.startswith("https://tiles.fluxlens.test/") for u in tiles_asked)
    zooms = {int(urlparse(u).path.split("/")[1]) for u in tiles_asked}
    assert zooms and all(2 <= z <= 8 for z in zooms), zooms
    shot = _map_region_png(page, merc, "basemap_1_on")
    assert _data_pixels(shot) > 0.5 * merc["width"] * merc["height"], "data image missing over the tiles"
    save_screenshot(page, "basemap_1_on_page")
    # the URL view stays lon/lat: the mercator ranges converted back
    merc, view = _url_view_settled(page, "main_map")
    lon, lat = view[:2], view[2:]

    # hover and click at the same lon/lat give the same value and the same cell as in lon/lat
    tx, ty = TO_MERC.transform(*TARGET)
    lon_txt, lat_txt, value_merc = _hover(page, merc, tx, ty)
    assert (float(lon_txt), float(lat_txt)) == pytest.approx(TARGET, abs=0.03)
    assert value_merc == value_flat
    px_merc = _click_pixel(page, merc, tx, ty)
    assert px_merc == pytest.approx(TARGET, abs=0.03)
    res = float(abs(store["lon"][1] - store["lon"][0]))
    assert np.floor(np.array(px_merc) / res).tolist() == np.floor(np.array(px_flat) / res).tolist()

    # box select drawn with the mouse: the box in lon/lat of the dragged pixels
    page.locator(".bk-tool-icon-box-select").first.click()
    start = (merc["left"] + 0.3 * merc["width"], merc["top"] + 0.25 * merc["height"])
    end = (merc["left"] + 0.6 * merc["width"], merc["top"] + 0.7 * merc["height"])
    drag(page, start, end)
    page.wait_for_function("location.search.includes('box=')", timeout=30_000)
    wait_idle(page)
    (x0, y1), (x1, y0) = _plot_xy(merc, *start), _plot_xy(merc, *end)
    blon, blat = TO_LONLAT.transform([x0, x1], [y0, y1])
    px_deg = (merc["x1"] - merc["x0"]) / merc["width"] / 111_320 * 2  # two screen pixels in degrees
    assert _floats(_query(page)["box"]) == pytest.approx([blon[0], blat[0], blon[1], blat[1]], abs=px_deg)
    page.get_by_text("cos(lat)-weighted mean of valid pixels").first.wait_for(state="visible", timeout=60_000)
    wait_idle(page)
    _map_region_png(page, merc, "basemap_2_box")

    # "Box = visible region" hands out the lon/lat view
    page.get_by_role("button", name="Box = visible region").click()
    page.wait_for_function(f"!location.search.includes('box={_query(page)['box']}')", timeout=30_000)
    assert _floats(_query(page)["box"]) == pytest.approx([lon[0], lat[0], lon[1], lat[1]], abs=1e-3)
    wait_idle(page)

    # comparison tab: the basemap setting is shared, so its three linked maps open in mercator over
    # the same lon/lat view
    page.locator(".bk-tab").filter(has_text="Compare").first.click()
    page.get_by_text("Common grid").first.wait_for(state="visible", timeout=60_000)
    wait_idle(page)
    page.wait_for_function(
        f"(() => ['compare_a', 'compare_b', 'compare_diff'].every(n => {{ const f = ({FRAME})(n); "
        "return !!f && f.tiles.length === 1 && Math.abs(f.x0) > 1000 && f.finite > 0; }))()",
        timeout=60_000,
    )
    wait_idle(page)
    _, view = _url_view_settled(page, "compare_a")
    assert _query(page).get("basemap") == "1"
    frames = [_frame(page, n) for n in ("compare_a", "compare_b", "compare_diff")]
    ranges = [tuple(f[k] for k in ("x0", "x1", "y0", "y1")) for f in frames]
    assert ranges[0] == ranges[1] == ranges[2]  # linked
    assert len({(f["width"], f["height"]) for f in frames}) == 1  # same frames: the same extent on screen
    # centred where the main map was, latitudes fitted to these frames' aspect (square metres);
    # Bokeh's tile layer, drawn first while its plot is still being laid out, may widen the view
    # by a few per cent
    assert (view[0] + view[1]) / 2 == pytest.approx((lon[0] + lon[1]) / 2, abs=1e-3)
    assert view[1] - view[0] == pytest.approx(lon[1] - lon[0], rel=0.05)
    x, y = TO_MERC.transform(view[:2], view[2:])
    assert (x[1] - x[0]) / (y[1] - y[0]) == pytest.approx(frames[0]["width"] / frames[0]["height"], rel=1e-3)
    save_screenshot(page, "basemap_3_compare")
    page.get_by_role("button", name="Basemap").last.click()
    page.wait_for_function(f"(({FRAME})('compare_a') || {{tiles: [1]}}).tiles.length === 0", timeout=30_000)
    wait_idle(page)

    # back on the map tab: switched off from the comparison tab, lon/lat degrees again, same value
    # under the mouse, the longitudes kept through the tab switches (up to the widening above)
    page.locator(".bk-tab").filter(has_text="Map").first.click()
    wait_idle(page)
    page.wait_for_function(
        f"(() => {{ const f = ({FRAME})('main_map'); "
        "return !!f && f.tiles.length === 0 && Math.abs(f.x0) < 1000 && f.finite > 1000; })()",
        timeout=60_000,
    )
    wait_idle(page)
    back = _frame(page)
    assert (back["x0"] + back["x1"]) / 2 == pytest.approx(np.mean(lon), abs=1e-3)
    assert back["x1"] - back["x0"] == pytest.approx(lon[1] - lon[0], rel=0.05)
    assert "basemap" not in _query(page)  # the permalink follows the shared setting
    assert (back["x1"] - back["x0"]) / (back["y1"] - back["y0"]) == pytest.approx(2.0, rel=1e-6)
    expect(page.get_by_text("pyramid level").first).not_to_contain_text("Web Mercator", timeout=30_000)
    expect(page.get_by_text("each screen row shows the lon/lat row")).to_be_hidden(timeout=30_000)
    assert _hover(page, back, *TARGET)[2] == value_flat
    shot = _map_region_png(page, back, "basemap_4_off")
    assert _data_pixels(shot) > 0.5 * back["width"] * back["height"]
