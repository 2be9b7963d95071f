"""Products with their own time steps and small grids in the views, without a browser: an irregular
cube (values on the 1st and 15th of each month, like the ERA5 12 UTC samples) on a fine 0.25° grid
against a daily cube on a coarse 2° grid, both written here through ``catalog.store``; the pure
time-step and regridding helpers against independent numpy computations."""

from __future__ import annotations

import datetime as dt

import holoviews as hv
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from app import compute, data, product_info
from app.state import AppState
from catalog import store

SAMPLES = pd.DatetimeIndex([f"2018-{m:02d}-{d:02d}" for m in range(5, 9) for d in (1, 15)])
DAILY = pd.date_range("2018-06-01", "2018-07-30")
FINE_LAT = np.arange(-39.5, -40.51, -0.25)  # 5 x 5 cells of 0.25° near Valdivia
FINE_LON = np.arange(-74.0, -72.99, 0.25)
COARSE_LAT = np.array([-39.0, -41.0])  # 2° cells: -40..-38 and -42..-40
COARSE_LON = np.array([-75.0, -73.0])
PROVENANCE = {
    "recipe": {"name": "era5", "title": "ERA5 single levels"},
    "variables": {
        "le": {
            "source_variables": ["slhf"],
            "conversion": ["le: sign -1 (source flux positive downward)"],
            "time_aggregation": "one value per time step (valid at 12:00 UTC), not a daily mean",
            "regridding": "none (already on the target grid)",
        }
    },
    "sources": [{"path": "/server/secret/place/era5_file.nc", "sha256": "ab" * 32}],
}


def _cube(times, lat, lon, seed) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    le = rng.uniform(0, 150, size=(len(times), lat.size, lon.size)).astype("float32")
    attrs = {"units": "W m-2", "long_name": "latent heat flux (positive upward)"}
    return xr.Dataset(
        {"le": (("time", "lat", "lon"), le, attrs)},
        coords={"time": times, "lat": lat, "lon": lon},
    )


@pytest.fixture
def products(data_dir, monkeypatch):
    monkeypatch.setattr(data, "PRODUCTS_TTL_S", 0.0)
    store.write_product(
        _cube(SAMPLES, FINE_LAT, FINE_LON, 1), "samples", provenance=PROVENANCE, synthetic=True
    )
    daily = _cube(DAILY, COARSE_LAT, COARSE_LON, 2)
    daily["le"][:, :, 0] = np.nan  # the western column is sea
    store.write_product(daily, "daily", provenance={}, synthetic=True)
    data.view_data().forget_products()
    return {"samples": _cube(SAMPLES, FINE_LAT, FINE_LON, 1), "daily": daily}


# -- pure helpers --------------------------------------------------------------------------------
def test_steps_in_and_common_days():
    assert list(compute.steps_in(SAMPLES, "day", "2018-06-15")) == [pd.Timestamp("2018-06-15")]
    assert compute.steps_in(SAMPLES, "day", "2018-06-16").empty  # no "nearest" step
    assert list(compute.steps_in(SAMPLES, "month", "2018-06-20")) == list(
        pd.to_datetime(["2018-06-01", "2018-06-15"])
    )
    period = (dt.date(2018, 5, 20), dt.date(2018, 6, 10))
    assert list(compute.common_steps(SAMPLES, DAILY, "period", None, period)) == [pd.Timestamp("2018-06-01")]
    assert compute.common_steps(SAMPLES, DAILY, "day", "2018-05-15").empty
    assert compute.nearest_common_days(SAMPLES, DAILY, "2018-05-15") == (None, pd.Timestamp("2018-06-01"))
    assert compute.nearest_common_days(SAMPLES, DAILY, "2018-08-15") == (pd.Timestamp("2018-07-15"), None)


def test_sampling_in_words():
    assert compute.sampling(DAILY) == "daily, 60 time steps"
    assert compute.sampling(SAMPLES) == "irregular: 8 time steps, 14–17 days apart (median 14 d)"
    assert compute.sampling(pd.date_range("2018-01-01", periods=12, freq="MS")) == "monthly, 12 time steps"
    assert compute.sampling(SAMPLES[:1]) == "one time step (2018-05-01)"
    assert compute.is_regular_daily(DAILY) and not compute.is_regular_daily(SAMPLES)


def test_on_days_takes_the_step_or_the_mean_of_the_days():
    cube = _cube(SAMPLES, FINE_LAT, FINE_LON, 3)["le"]
    one = compute.on_days(cube, pd.to_datetime(["2018-06-15"]))
    np.testing.assert_array_equal(one.values, cube.sel(time="2018-06-15").values)
    two = compute.on_days(cube, pd.to_datetime(["2018-06-01", "2018-07-15"]))
    expect = (cube.sel(time="2018-06-01").values + cube.sel(time="2018-07-15").values) / 2
    np.testing.assert_allclose(two.values, expect, rtol=1e-6)
    with pytest.raises(Exception, match="no time step"):
        compute.on_days(cube, pd.to_datetime(["2018-06-02"]))


def test_rasterize_zoomed_into_large_cells_gives_each_pixel_its_cell():
    """A view a few cells wide that cuts cells: every screen pixel shows the cell holding its centre
    (datashader's raster stretched the cells whose centres are inside the view over it)."""
    values = np.arange(25, dtype="float32").reshape(5, 5)
    da = xr.DataArray(values, coords={"lat": FINE_LAT, "lon": FINE_LON}, dims=("lat", "lon"))
    x, y = (-73.9013, -73.2), (-40.3517, -39.6)
    img = compute.rasterize_to_screen(da, x, y, 70, 75)
    col = np.floor((img["lon"].values + 74.125) / 0.25).astype(int)
    row = np.floor((-39.375 - img["lat"].values) / 0.25).astype(int)
    np.testing.assert_array_equal(img.values, values[np.ix_(row, col)])
    coarse = xr.DataArray(
        np.array([[np.nan, 1.0], [np.nan, 2.0]], "float32"),
        coords={"lat": COARSE_LAT, "lon": COARSE_LON},
        dims=("lat", "lon"),
    )
    img = compute.rasterize_to_screen(coarse, (-74.775, -72.225), (-40.6375, -39.3625), 300, 100)
    west = img["lon"].values < -74.0
    north = img["lat"].values > -40.0
    assert np.isnan(img.values[:, west]).all()  # the sea cell stays empty
    assert (img.values[np.ix_(north, ~west)] == 1.0).all() and (
        img.values[np.ix_(~north, ~west)] == 2.0
    ).all()


def test_regrid_summary_counts_partly_covered_cells():
    fine = xr.DataArray(
        np.ones((5, 5), "float32"), coords={"lat": FINE_LAT, "lon": FINE_LON}, dims=("lat", "lon")
    )
    coarse = xr.DataArray(
        np.ones((2, 2), "float32"), coords={"lat": COARSE_LAT, "lon": COARSE_LON}, dims=("lat", "lon")
    )
    fields = {"fine": fine, "coarse": coarse}
    common = compute.to_common_grid(fields)
    summary = compute.regrid_summary(fields, common)
    assert summary["target"] == "coarse" and summary["res"] == (2.0, 2.0) and summary["cells"] == 4
    # the 0.25° box puts centres into the two eastern 2° cells only (lon -74.0 is the -74 edge: east)
    assert summary["sources"]["fine"] == {"res": (0.25, 0.25), "per_cell": 64, "partial": 2}
    counts = compute.block_counts(fine, COARSE_LAT, COARSE_LON, 2.0, 2.0)
    np.testing.assert_array_equal(counts, [[0, 15], [0, 10]])


# -- views on the catalog ------------------------------------------------------------------------
def test_date_controls_go_through_the_products_own_steps(products):
    from app.controls import Controls, nearest_day

    state = AppState(product="samples", date=dt.date(2018, 6, 20))
    controls = Controls(state)
    assert state.date == dt.date(2018, 6, 15)  # the nearest sample
    assert list(controls.date_slider.values) == [d.date() for d in SAMPLES]
    assert controls.date_picker.enabled_dates == [d.date() for d in SAMPLES]
    assert "irregular: 8 time steps" in controls.sampling.object
    controls.step(+1)
    assert state.date == dt.date(2018, 7, 1) == controls.date_slider.value
    state.date = dt.date(2018, 7, 9)  # from elsewhere (a link, the calendar): snapped
    assert state.date == dt.date(2018, 7, 15)
    state.product = "daily"
    assert state.date == dt.date(2018, 7, 15) and controls.date_picker.enabled_dates is None
    assert len(controls.date_slider.values) == 60
    assert nearest_day([dt.date(2018, 1, 1), dt.date(2018, 1, 3)], dt.date(2018, 1, 2)) == dt.date(2018, 1, 1)


def test_product_info_names_units_sign_time_steps_and_method(products):
    info = data.info("samples")
    sections = dict(product_info.describe(info, data.time_axis("samples")))
    text = product_info.as_text(list(sections.items()))
    assert "le: latent heat flux (positive upward) [W m-2]; sign: positive upward" in text
    assert "irregular: 8 time steps" in text
    assert "each value: one value per time step (valid at 12:00 UTC), not a daily mean" in text
    assert "recipe era5" in text and "regridding: none" in text
    assert "era5_file.nc (sha256 abababababab…)" in text and "/server/secret" not in text
    assert product_info.is_not_daily_mean(info, "le") and not product_info.is_not_daily_mean(
        data.info("daily"), "le"
    )
    html = product_info.as_html([("Method", ["<script>x</script>"])])
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_compare_uses_only_the_days_both_products_have(products):
    from app.compare_panel import CompareTab

    state = AppState(product="samples", variable="le", tab="Compare", compare=["samples", "daily"])
    state.x_range, state.y_range = (-74.2, -72.8), (-40.7, -39.3)
    state.date, state.aggregation = dt.date(2018, 6, 20), "month"
    tab = CompareTab(state)
    stats = tab.stats.object
    assert state.message == ""
    assert "mean of 2 common days in 2018-06-01 … 2018-06-30" in stats
    assert "samples (0.25°) is regridded to the coarser grid of daily (2°) by block mean" in stats
    assert "2 of the 4 compared cells are only partly covered by samples" in stats
    assert "daily has 30 time step(s) in the window, only these 2 are used" in stats
    assert "not a daily mean" in stats
    # independent: mean of the two June samples, block mean into the eastern 2° cells (a centre on
    # an edge goes to the cell above it), minus the daily product's mean of the same two days
    s = products["samples"]["le"].sel(time=["2018-06-01", "2018-06-15"]).mean("time").values
    north, south = s[FINE_LAT >= -40.0].mean(), s[FINE_LAT < -40.0].mean()  # -40.0 is the cells' edge: north
    d = products["daily"]["le"].sel(time=["2018-06-01", "2018-06-15"]).mean("time").values[:, 1]
    w = np.cos(np.deg2rad(COARSE_LAT))
    mean_a = float((w * [north, south]).sum() / w.sum())
    mean_b = float((w * d).sum() / w.sum())
    assert f"| mean A (samples) | {mean_a:.4g} W m-2 |" in stats
    assert f"| mean B (daily) | {mean_b:.4g} W m-2 |" in stats
    assert f"| mean A − B (cos-lat weighted) | {mean_a - mean_b:.4g} W m-2 |" in stats

    state.aggregation = "day"
    state.date = dt.date(2018, 5, 15)  # a sample day before the daily product starts
    assert "No common time step" in tab.stats.object and tab.goto.visible
    assert tab.goto.name == "Go to 2018-06-01"
    tab.goto.clicks += 1
    assert state.date == dt.date(2018, 6, 1)
    assert "1 day both products have on 2018-06-01: 2018-06-01." in tab.stats.object


def test_profile_leaves_out_products_without_a_step_and_names_the_steps_used(products):
    hv.extension("bokeh", logo=False)
    from app.profile_panel import ProfileTab

    state = AppState(product="samples", variable="le", tab="Profile", date=dt.date(2018, 5, 15))
    tab = ProfileTab(state)
    assert tab.products.value == ["samples", "daily"]
    table = tab.table.value
    assert list(table["product"]) == ["samples"] and list(table["time steps used"]) == ["2018-05-15"]
    expect = products["samples"]["le"].sel(time="2018-05-15").values
    w = np.broadcast_to(np.cos(np.deg2rad(FINE_LAT))[:, None], expect.shape)
    assert table["mean, all valid pixels"].iloc[0] == pytest.approx(
        float((w * expect).sum() / w.sum()), abs=1e-4
    )
    assert "daily: no time step in 2018-05-15" in tab.note.object
    state.date = dt.date(2018, 6, 15)
    assert sorted(tab.table.value["product"]) == ["daily", "samples"]


def test_series_table_says_how_each_product_is_sampled(products):
    hv.extension("bokeh", logo=False)
    from app.series_panel import SeriesPanel

    state = AppState(product="samples", variable="le", pixel=(-73.1, -40.4))
    panel = SeriesPanel(state)
    rows = panel.pixel_table.value.set_index("product")
    assert rows.loc["samples", "time steps"].startswith("irregular: 8 time steps")
    assert rows.loc["samples", "each value"].endswith("not a daily mean")
    assert rows.loc["daily", "valid time steps"] == 60
    csv = panel._pixel_table
    got = csv[csv["product"] == "samples"]["value"].to_numpy()
    np.testing.assert_array_equal(
        got, products["samples"]["le"].sel(lat=-40.5, lon=-73.0).values.astype("float64")
    )


def test_validation_notes_values_that_are_not_daily_means(products):
    from app.validation_site_panel import sampling_caveats

    notes = sampling_caveats(["samples", "daily"], "le")
    assert len(notes) == 1 and "samples le: one value per time step" in notes[0] and "daily means" in notes[0]
