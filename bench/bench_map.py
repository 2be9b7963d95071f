"""Map explorer benchmark on a global 1 km product (43200 × 21600 px per day).

The product is generated lazily: every pyramid level (level k = 2**k km, down to ≤ 1024 px wide) is a
dask array whose chunks (1, 256, 256), as in the catalog's stores, evaluate a deterministic field at
the cell centres, so only the chunks a view touches are ever computed (like reading chunks of the
Zarr pyramid). It is served to the app through a stand-in for ``catalog.api``'s product lookup
and ``open_product``; everything from ``catalog.api.choose_level`` down is the app's own code.

Prints medians of repeats:
  * server time to produce the map image (``app.data.map_image`` + Bokeh update) for the global
    view and 5 zoom levels, and the same with a naive full-resolution rasterize (datashader over
    level 0 for every view) — the ratio is the point;
  * page load to first map in Chromium, browser time from a wheel zoom to the new image;
  * server memory per open session (RSS growth of the server process over N sessions / N).

Targets: server re-render ≤ 150 ms at every zoom; first map ≤ 3 s; zoom to new image ≤ 0.5 s;
≤ 300 MB per session.

Usage: ``python bench/bench_map.py [--repeats 5] [--sessions 4] [--no-browser] [--naive-global]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

NAME = "global1km_bench"
N_LON0, N_LAT0 = 43200, 21600
CHUNK = 256  # the catalog's map chunks (catalog.store.map_chunks)
N_DAYS = 2
MAX_TOP_WIDTH = 1024
WIDTH, HEIGHT = 760, 380  # app.map_panel.MAP_WIDTH, MAP_HEIGHT
# Views (x_range, y_range): global, then 5 zooms around the US Great Plains.
VIEWS = [((-180.0, 180.0), (-90.0, 90.0))] + [
    ((-97.0 - w / 2, -97.0 + w / 2), (38.0 - w / 4, 38.0 + w / 4)) for w in (90.0, 22.5, 5.6, 1.4, 0.35)
]


def _field(lat: np.ndarray, lon: np.ndarray, day: int) -> np.ndarray:
    """Deterministic soil-moisture-like field (m3 m-3) with NaN 'oceans'."""
    la = np.deg2rad(lat)[:, None]
    lo = np.deg2rad(lon)[None, :]
    land = np.sin(3 * lo + 1.0) * np.cos(2 * la) + 0.4 * np.sin(7 * la + 0.5 * day) > -0.3
    v = 0.25 + 0.1 * np.sin(3 * lo) * np.cos(2 * la) + 0.05 * np.sin(400 * lo + day) * np.cos(400 * la)
    return np.where(land, v, np.nan).astype("float32")


def _level(k: int) -> xr.Dataset:
    res = 360.0 / N_LON0 * 2**k
    n_lon, n_lat = N_LON0 // 2**k, N_LAT0 // 2**k
    lon = -180 + (np.arange(n_lon) + 0.5) * res
    lat = 90 - (np.arange(n_lat) + 0.5) * res
    chunks = (1, min(CHUNK, n_lat), min(CHUNK, n_lon))

    def block(block_info=None):
        loc = block_info[None]["array-location"]
        (t0, _), (r0, r1), (c0, c1) = loc
        return _field(lat[r0:r1], lon[c0:c1], t0)[None]

    arr = da.map_blocks(
        block, dtype="float32", chunks=da.core.normalize_chunks(chunks, (N_DAYS, n_lat, n_lon))
    )
    times = pd.date_range("2018-07-01", periods=N_DAYS).as_unit("ns")
    ssm = xr.DataArray(
        arr,
        coords={"time": times, "lat": lat, "lon": lon},
        dims=("time", "lat", "lon"),
        attrs={"units": "m3 m-3", "long_name": "surface soil moisture"},
    )
    return xr.Dataset({"ssm": ssm})


def _levels() -> list[dict]:
    out, k = [], 0
    while True:
        n_lon = N_LON0 // 2**k
        out.append({"level": k, "n_lat": N_LAT0 // 2**k, "n_lon": n_lon, "resolution": 360.0 / n_lon})
        if n_lon <= MAX_TOP_WIDTH:
            return out
        k += 1


def install_lazy_product() -> None:
    """Serve the lazy product through ``catalog.api`` (product lookup and open_product only)."""
    from catalog import api

    info = api.ProductInfo(
        name=NAME,
        title="Global 1 km benchmark field (lazy, synthetic)",
        variables={"ssm": {"units": "m3 m-3", "long_name": "surface soil moisture"}},
        resolution=360.0 / N_LON0,
        time_start="2018-07-01",
        time_end=f"2018-07-{N_DAYS:02d}",
        n_time=N_DAYS,
        time_step="day",
        bbox=(-180.0, -90.0, 180.0, 90.0),
        levels=_levels(),
        synthetic=True,
        provenance={"generator": "bench/bench_map.py"},
        kind="gridded",
        store_id="lazy",
    )
    cache: dict[int, xr.Dataset] = {}

    def product_info(name):
        if name != NAME:
            raise api.InputError(f"unknown product {name!r}")
        return info

    def open_product(name, level=0):
        product_info(name)
        if level not in cache:
            cache[level] = _level(int(level))
        return cache[level]

    api.list_products = lambda: [info]
    api.product_info = product_info
    api.open_product = open_product


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench_server(repeats: int, naive_global: bool) -> None:
    import datashader as dsh

    from app import data, server
    from app.map_view import MapFigure

    install_lazy_product()
    server.warm_up()
    fig = MapFigure(width=WIDTH, height=HEIGHT)
    level0 = data.variable_array(NAME, "ssm", 0)

    def app_render(view):
        img, level = data.map_image(NAME, "ssm", "day", "2018-07-02", None, view[0], view[1], WIDTH, HEIGHT)
        fig.show(img, clim=(0, 0.5), cmap="YlGnBu", label="ssm (m3 m-3)", units="m3 m-3")
        return level

    def naive_render(view):
        canvas = dsh.Canvas(plot_width=WIDTH, plot_height=HEIGHT, x_range=view[0], y_range=view[1])
        day = level0.sel(time="2018-07-02")
        img = canvas.raster(day, agg="mean", downsample_method="mean", nan_value=np.nan)
        fig.show(img, clim=(0, 0.5), cmap="YlGnBu", label="ssm (m3 m-3)", units="m3 m-3")

    print(
        f"global 1 km product: {N_LON0} x {N_LAT0} px per day, {len(_levels())} pyramid levels, "
        f"map {WIDTH}x{HEIGHT}"
    )
    print(f"{'view width (deg)':>17} {'level':>5} {'app ms':>8} {'naive ms':>9} {'ratio':>6}")
    for view in VIEWS:
        app_render(view)  # first call of a view opens the level
        level = app_render(view)
        app_ms = _median_ms(lambda v=view: app_render(v), repeats)
        width = view[0][1] - view[0][0]
        if width >= 360 and not naive_global:
            naive = "skipped"
            ratio = ""
        else:
            n = 1  # one run: the naive path computes every level-0 chunk the view touches
            naive_ms = _median_ms(lambda v=view: naive_render(v), n)
            naive = f"{naive_ms:9.0f}"
            ratio = f"{naive_ms / app_ms:6.0f}x"
        print(f"{width:17.2f} {level:5d} {app_ms:8.1f} {naive:>9} {ratio:>6}")


def serve_lazy(port: int) -> None:
    """Child process: the real dashboard serving the lazy product."""
    import panel as pn

    install_lazy_product()
    from app import dashboard, server

    server.warm_up()
    dashboard._load_extensions()
    dashboard.create_dashboard()
    pn.serve(
        {"app": dashboard.create_dashboard}, port=port, show=False, websocket_origin=[f"localhost:{port}"]
    )


MAP_STATE = """(() => { if (!window.Bokeh || !Bokeh.documents.length) return null;
  const m = Bokeh.documents[0].get_model_by_name('main_map');
  if (!m) return null; const img = m.renderers.find(r => r.data_source && r.data_source.data.image);
  const a = img.data_source.data.image[0]; let finite = 0;
  for (let i = 0; i < a.length; i += 97) { if (Number.isFinite(a[i])) finite++; }
  return {finite: finite, dw: img.data_source.data.dw[0], x0: m.x_range.start, x1: m.x_range.end}; })()"""


def bench_browser(repeats: int, sessions: int) -> None:
    import psutil
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.browser import CHROMIUM, CHROMIUM_ARGS, free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve-lazy", str(port)])
    url = f"http://localhost:{port}/app?product={NAME}&date=2018-07-02"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://localhost:{port}/liveness", timeout=2)
                break
            except OSError:
                try:
                    urllib.request.urlopen(url, timeout=30)
                    break
                except OSError:
                    time.sleep(1)
        server = psutil.Process(proc.pid)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            loads, zooms = [], []
            for _ in range(repeats):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                t0 = time.perf_counter()
                page.goto(url)
                page.wait_for_function(
                    f"(() => {{ const s = {MAP_STATE}; return s && s.finite > 10; }})()", timeout=120_000
                )
                loads.append(time.perf_counter() - t0)
                page.wait_for_function("Bokeh.documents[0].is_idle")
                canvases = [c.bounding_box() for c in page.locator("canvas").all()]
                box = max((b for b in canvases if b), key=lambda b: b["width"] * b["height"])
                page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.45)
                for _z in range(3):
                    before = page.evaluate(MAP_STATE)
                    t0 = time.perf_counter()
                    page.mouse.wheel(0, -400)
                    page.wait_for_function(
                        f"(() => {{ const s = {MAP_STATE}; return s.dw < {before['dw']} * 0.9; }})()",
                        timeout=60_000,
                    )
                    zooms.append(time.perf_counter() - t0)
                    page.wait_for_timeout(300)
                page.close()
            print(f"page load to first map: median {statistics.median(loads):.2f} s over {len(loads)} loads")
            print(
                f"wheel zoom to new image: median {statistics.median(zooms) * 1000:.0f} ms "
                f"over {len(zooms)} zooms (wheel event to new image data in the page)"
            )
            rss0 = server.memory_info().rss
            pages = []
            for _ in range(sessions):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url)
                page.wait_for_function(
                    f"(() => {{ const s = {MAP_STATE}; return s && s.finite > 10; }})()", timeout=120_000
                )
                pages.append(page)
            time.sleep(2)
            rss1 = server.memory_info().rss
            print(
                f"server memory: {rss0 / 2**20:.0f} MB before, {rss1 / 2**20:.0f} MB with {sessions} "
                f"more open sessions → {(rss1 - rss0) / sessions / 2**20:.0f} MB per session"
            )
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--no-server-timings", action="store_true", help="only the browser measurements")
    parser.add_argument(
        "--naive-global", action="store_true", help="also time the naive global rasterize (slow)"
    )
    parser.add_argument("--serve-lazy", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("FLUXLENS_DATA_DIR", tempfile.mkdtemp(prefix="bench-map-"))
    if args.serve_lazy:
        serve_lazy(args.serve_lazy)
        return
    if not args.no_server_timings:
        bench_server(args.repeats, args.naive_global)
    if not args.no_browser:
        bench_browser(min(args.repeats, 3), args.sessions)


if __name__ == "__main__":
    main()
