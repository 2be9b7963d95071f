"""A real ERA5 flux cube in every view, in a real Chromium against a real ``fluxlens serve``: the
small demo world plus the Valdivia ERA5 fluxes (``fluxlens ingest cube --recipe era5``: le, h, rn on
a 5 × 5 px 0.25° grid, 600 time steps at 12 UTC on the 1st and 15th of each month 2000–2024) and
an emulator re-prediction of the same box for June–July 2018 (``fluxlens predict``; the small demo's
forcing is 2°, June–July 2018, so the box is widened to whole 2° cells).

Map (values on screen = the store's), date stepping through the product's own dates, product info
(units, sign, recipe, "not a daily mean"), pixel series (CSV = the store's), Compare against the
emulator (which grid, how, which days; numbers = an independent block mean of the stores), a date
without a common step, Profile (mean = the store's weighted mean) and the scoreboard against a
synthetic tower inside the box. Screenshots (1400 × 900) go to ``artifacts/screenshots/``; any
browser console error or traceback text fails the test.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import time

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from tests.browser import FLUXLENS, choose, save_screenshot, wait_idle
from tests.stores import level_path

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VALDIVIA = "era5_cds/era5_valdivia_accum_slhf_sshf_ssr_str.nc"
EMU_BBOX = "-75.5,-41.5,-72.5,-38.5"  # the Valdivia box widened to the 2° cells holding it
TOWER = {"site_id": "XX-Vd1", "name": "synthetic tower in the Valdivia box", "lat": -39.8, "lon": -73.2}
SHOT_PREFIX = "flux_"

IMAGE_VALUES = """((name) => { const m = Bokeh.documents[0].get_model_by_name(name);
  const img = m.renderers.find(r => r.glyph.type === 'Image' || r.glyph.constructor.name === 'Image');
  const a = img.data_source.data.image[0]; const seen = new Set();
  for (let i = 0; i < a.length; i++) { if (Number.isFinite(a[i])) seen.add(a[i]); }
  return Array.from(seen); })"""


@pytest.fixture
def viewport() -> dict:
    return {"width": 1400, "height": 900}


def _cli(env: dict, *args: str) -> str:
    done = subprocess.run([*FLUXLENS, *args], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _tower_network() -> tuple[pd.DataFrame, pd.DataFrame]:
    """One synthetic tower inside the box with daily LE for 2018 (a smooth seasonal curve)."""
    days = pd.date_range("2018-01-01", "2018-12-31")
    le = 60 + 40 * np.cos(2 * np.pi * (days.dayofyear.to_numpy() - 15) / 365.0)
    sites = pd.DataFrame([{**TOWER, "igbp": "ENF"}])
    obs = pd.DataFrame({"site_id": TOWER["site_id"], "time": days, "LE": le, "LE_QC": 1.0})
    return sites, obs


@pytest.fixture(scope="module")
def flux_server(chromium, demo_world, shared_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("flux-products")
    data_dir = base / "fluxlens-data"
    shutil.copytree(demo_world, data_dir, copy_function=os.link)
    env = dict(os.environ, FLUXLENS_DATA_DIR=str(data_dir), FLUXLENS_VALIDATION_CACHE=str(base / "cache"))
    mp = pytest.MonkeyPatch()
    mp.setenv("FLUXLENS_DATA_DIR", str(data_dir))
    try:
        from catalog import store
        from fluxlens.demo import train_demo_model

        src = shared_data / "gridded_real" / VALDIVIA
        _cli(env, "ingest", "cube", str(src), "--recipe", "era5", "--name", "era5_valdivia")
        version = train_demo_model(small=True)
        _cli(env, "predict", "--model", version, f"--bbox={EMU_BBOX}", "--start", "2018-06-01",
             "--end", "2018-07-30", "--name", "emu_valdivia")  # fmt: skip
        sites, obs = _tower_network()
        store.write_stations(
            "valdivia_tower", sites, obs, provenance={"description": "test tower"}, synthetic=True
        )
    finally:
        mp.undo()
    from tests.app.conftest import serve_or_fail

    with serve_or_fail(env, base / "serve.log") as url:
        yield {"url": f"{url}/app", "data_dir": data_dir}


def _store(data_dir, name: str) -> xr.Dataset:
    return xr.open_zarr(level_path(data_dir, name), consolidated=False)


def _status(page) -> str:
    return page.get_by_text("pyramid level").first.inner_text()


def _wait_status(page, text: str, timeout=60_000):
    page.get_by_text("pyramid level").filter(has_text=text).first.wait_for(state="visible", timeout=timeout)


def _wait_text(page, text: str, timeout=60_000):
    page.get_by_text(text).first.wait_for(state="visible", timeout=timeout)


def _wait_image(page, figure: str, values, timeout_s: float = 30) -> None:
    """Wait until the figure's image holds exactly the distinct finite ``values`` (float32)."""
    expect = sorted({float(np.float32(v)) for v in np.ravel(values) if np.isfinite(v)})
    deadline = time.monotonic() + timeout_s
    while True:
        shown = sorted(page.evaluate(f"{IMAGE_VALUES}('{figure}')"))
        if shown == expect:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{figure} shows {shown[:6]}…, the store has {expect[:6]}…")
        page.wait_for_timeout(300)


def _map_canvas_box(page):
    boxes = [c.bounding_box() for c in page.locator("canvas").all()]
    return max((b for b in boxes if b and b["width"] > 0), key=lambda b: b["width"] * b["height"])


def _cell(row, field: str) -> str:
    """The text of a Tabulator row's cell of column ``field``."""
    return row.locator(f'.tabulator-cell[tabulator-field="{field}"]').first.inner_text().strip()


def _row_text(page, label: str) -> str:
    return page.locator("tr").filter(has_text=label).first.inner_text()


def _number(text: str) -> float:
    return float(text.split("\t")[-1].split()[0])


def _shot(page, name: str) -> None:
    save_screenshot(page, SHOT_PREFIX + name, full_page=False)


def _no_traceback(page) -> None:
    assert page.get_by_text("Traceback").count() == 0
    assert page.get_by_text("failed:").count() == 0, page.get_by_text("failed:").first.inner_text()


def _block_mean(fine: xr.DataArray, lat_c: np.ndarray, lon_c: np.ndarray, step: float) -> np.ndarray:
    """Independent block mean: each coarse cell (centres ``lat_c``, ``lon_c``, ``step``° wide) gets
    the mean of the valid fine cells whose centres lie in [west, east) × [south, north)."""
    out = np.full((lat_c.size, lon_c.size), np.nan)
    flat, flon = fine["lat"].values, fine["lon"].values
    for i, la in enumerate(lat_c):
        for j, lo in enumerate(lon_c):
            rows = (flat >= la - step / 2) & (flat < la + step / 2)
            cols = (flon >= lo - step / 2) & (flon < lo + step / 2)
            block = fine.values[np.ix_(rows, cols)]
            if np.isfinite(block).any():
                out[i, j] = np.nanmean(block)
    return out


def _weighted(values: np.ndarray, lat: np.ndarray) -> float:
    w = np.broadcast_to(np.cos(np.deg2rad(lat))[:, None], values.shape)
    ok = np.isfinite(values)
    return float((w[ok] * values[ok]).sum() / w[ok].sum())


def test_flux_cube_in_every_view(flux_server, browser_page):
    page, errors = browser_page
    try:
        _views(page, flux_server)
    except BaseException:
        _shot(page, "failure")
        raise


def _views(page, server):
    data_dir = server["data_dir"]
    era5 = _store(data_dir, "era5_valdivia")
    emu = _store(data_dir, "emu_valdivia")

    # -- Map: a date between two samples goes to the nearest sample ------------------------------
    page.goto(
        f"{server['url']}?product=era5_valdivia&var=le&date=2018-06-03&compare=era5_valdivia~emu_valdivia"
    )
    wait_idle(page, 120_000)
    _wait_status(page, "2018-06-01")
    page.wait_for_function("location.search.includes('date=2018-06-01')", timeout=30_000)
    status = _status(page)
    assert "ERA5 single levels" in status and "(W m-2)" in status and "positive upward" in status
    assert "not a daily mean" in page.get_by_text("valid at 12:00 UTC").first.inner_text()
    assert "irregular: 600 time steps" in page.get_by_text("Time steps of era5_valdivia").first.inner_text()
    stored = era5["le"].sel(time="2018-06-01").values.astype("float32")
    assert stored.shape == (5, 5) and np.isfinite(stored).all()
    _wait_image(page, "main_map", stored)  # the 25 values of the store, no other
    _no_traceback(page)
    _shot(page, "01_map")

    # stepping goes through the product's own dates (the next sample, not the next day)
    page.get_by_role("button", name="step ▶").click()
    _wait_status(page, "2018-06-15")
    _wait_image(page, "main_map", era5["le"].sel(time="2018-06-15").values)
    page.get_by_role("button", name="◀ step").click()
    _wait_status(page, "2018-06-01")

    # product info: units, sign convention, recipe, time aggregation, regridding, source file
    card = page.locator(".product-info").first
    page.get_by_text("Product info: era5_valdivia").first.evaluate("e => e.scrollIntoView({block: 'start'})")
    text = card.inner_text()
    for expect in (
        "real data (not synthetic)",
        "le: latent heat flux (positive upward) [W m-2]; sign: positive upward",
        "irregular: 600 time steps",
        "each value: one value per time step (valid at 12:00 UTC), not a daily mean",
        "recipe era5 (ERA5 single levels)",
        "le: sign -1 (source flux positive downward; FLUXNET LE/H positive upward)",
        "regridding: none",
        "era5_valdivia_accum_slhf_sshf_ssr_str.nc (sha256",
    ):
        assert expect in text, expect
    assert "/work/" not in text and "shared/data" not in text  # no server paths
    _shot(page, "02_product_info")

    # -- pixel series: click a cell, the CSV holds the store's 600 values -------------------------
    page.locator(".bk-tab").filter(has_text="Map").first.scroll_into_view_if_needed()
    box = _map_canvas_box(page)
    page.mouse.click(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.5)
    _wait_text(page, "product(s) with", 60_000)
    wait_idle(page)
    row = page.locator(".tabulator-row").filter(has_text="era5_valdivia").first
    assert "irregular: 600 time steps" in row.inner_text() and "not a daily mean" in row.inner_text()
    with page.expect_download() as dl:
        page.get_by_role("button", name="Pixel series as CSV").click()
    rows = [r for r in csv.DictReader(open(dl.value.path(), newline="")) if r["product"] == "era5_valdivia"]
    assert len(rows) == 600 and {r["units"] for r in rows} == {"W m-2"}
    lon, lat = float(rows[0]["lon"]), float(rows[0]["lat"])
    ref = era5["le"].sel(lon=lon, lat=lat)  # exact coordinates: the pixel's centre
    np.testing.assert_array_equal(np.array([float(r["value"]) for r in rows]), ref.values.astype("float64"))
    assert [r["time"][:10] for r in rows] == [f"{t:%Y-%m-%d}" for t in pd.DatetimeIndex(era5.time.values)]
    page.get_by_role("button", name="Pixel series as CSV").scroll_into_view_if_needed()
    _no_traceback(page)
    _shot(page, "03_pixel_series")

    # -- Compare against the emulator on the common 2° grid --------------------------------------
    page.locator(".bk-tab").filter(has_text="Compare").first.click()
    _wait_text(page, "Common grid", 60_000)
    wait_idle(page)
    stats = page.get_by_text("is regridded to the coarser grid").first.inner_text()
    assert (
        "era5_valdivia (0.25°) is regridded to the coarser grid of emu_valdivia (2°) by block mean" in stats
    )
    assert "only partly covered by era5_valdivia" in stats
    assert (
        "1 day both products have on 2018-06-01: 2018-06-01."
        in page.get_by_text("Time: 1 day").first.inner_text()
    )
    a = era5["le"].sel(time="2018-06-01")
    b = emu["le"].sel(time="2018-06-01").values.astype("float64")
    a_on_b = _block_mean(a, emu["lat"].values, emu["lon"].values, 2.0)
    ok = np.isfinite(a_on_b) & np.isfinite(b)
    lat_b = emu["lat"].values
    mean_a = _weighted(np.where(ok, a_on_b, np.nan), lat_b)
    mean_b = _weighted(np.where(ok, b, np.nan), lat_b)
    assert _number(_row_text(page, "mean A (era5_valdivia)")) == pytest.approx(mean_a, rel=1e-3)
    assert _number(_row_text(page, "mean B (emu_valdivia)")) == pytest.approx(mean_b, rel=1e-3)
    assert _number(_row_text(page, "mean A − B")) == pytest.approx(mean_a - mean_b, rel=1e-3, abs=1e-3)
    diff_shown = sorted(page.evaluate(f"{IMAGE_VALUES}('compare_diff')"))
    expect_diff = sorted(float(np.float32(v)) for v in (a_on_b - b)[ok])
    np.testing.assert_allclose(diff_shown, expect_diff, rtol=1e-5)
    _no_traceback(page)
    _shot(page, "04_compare")

    # a sample date before the emulator's period: no common step, the nearest common day is offered
    page.get_by_role("button", name="◀ step").click()
    _wait_text(page, "No common time step", 60_000)
    wait_idle(page)
    why = page.get_by_text("have no time step on the same day").first.inner_text()
    assert "on 2018-05-15: era5_valdivia has 1, emu_valdivia has 0 there" in why, why
    _shot(page, "05_compare_no_common_day")
    page.get_by_role("button", name="Go to 2018-06-01").click()
    _wait_text(page, "Time: 1 day both products have on 2018-06-01", 60_000)
    wait_idle(page)

    # -- Profile: the regional cube's mean is the store's cos(lat)-weighted mean -----------------
    page.locator(".bk-tab").filter(has_text="Profile").first.click()
    _wait_text(page, "time steps used", 60_000)
    wait_idle(page)
    means = page.locator(".tabulator").filter(has_text="time steps used").first
    row = means.locator(".tabulator-row").filter(has_text="era5_valdivia").first
    assert _cell(row, "time steps used") == "2018-06-01" and _cell(row, "units") == "W m-2"
    mean = float(_cell(row, "mean, all valid pixels"))
    assert mean == pytest.approx(_weighted(a.values.astype("float64"), a["lat"].values), abs=1e-4)
    note = page.get_by_text("Each product uses its own time steps").first.inner_text()
    assert "era5_valdivia le: one value per time step (valid at 12:00 UTC), not a daily mean" in note
    _no_traceback(page)
    _shot(page, "06_profile")

    # -- Validation: scoreboard against a tower inside the box, pairs on the sample days only -----
    page.locator(".bk-tab").filter(has_text="Validation").first.click()
    wait_idle(page, 120_000)
    page.wait_for_timeout(1000)
    choose(page, "valdivia_tower", exact=True)
    wait_idle(page)
    page.locator(".bk-tab").filter(has_text="Scoreboard").first.click()
    wait_idle(page)
    choose(page, "era5_valdivia", exact=True)
    wait_idle(page)
    page.get_by_role("button", name="Compute scoreboard").click()
    _wait_text(page, "sites matched", 120_000)
    wait_idle(page)
    status = page.get_by_text("sites matched").first.inner_text()
    assert "1 of 1 sites matched" in status, status
    assert "not a daily mean" in page.get_by_text("daily means, on the").first.inner_text()
    table_row = page.locator(".scoreboard-table .tabulator-row").filter(has_text=TOWER["site_id"]).first
    assert table_row.count() == 1
    n_2018 = int((pd.DatetimeIndex(era5.time.values).year == 2018).sum())
    assert n_2018 == 24
    assert int(float(_cell(table_row, "n"))) == n_2018
    # independent pairs: the tower's daily LE against the store's nearest pixel on the 2018 samples
    _, obs = _tower_network()
    pixel = (
        era5["le"].sel(lon=TOWER["lon"], lat=TOWER["lat"], method="nearest").sel(time=slice("2018", "2018"))
    )
    observed = obs.set_index("time")["LE"].reindex(pd.DatetimeIndex(pixel.time.values)).to_numpy()
    assert float(_cell(table_row, "bias")) == pytest.approx(float(np.mean(pixel.values - observed)), abs=1e-3)
    _no_traceback(page)
    _shot(page, "07_scoreboard")
