"""app.compute against independent numpy computations on small grids built here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from app import compute
from catalog.errors import InputError


def grid(res: float, west=-180.0, east=180.0, south=-90.0, north=90.0, seed=0, nan_frac=0.1, ntime=0):
    lat = np.arange(north - res / 2, south, -res)
    lon = np.arange(west + res / 2, east, res)
    rng = np.random.default_rng(seed)
    shape = (ntime, lat.size, lon.size) if ntime else (lat.size, lon.size)
    values = rng.uniform(0, 0.5, size=shape).astype("float32")
    values[rng.uniform(size=shape) < nan_frac] = np.nan
    coords = {"lat": lat, "lon": lon}
    dims = ("lat", "lon")
    if ntime:
        coords["time"] = pd.date_range("2018-01-01", periods=ntime, freq="D")
        dims = ("time", "lat", "lon")
    return xr.DataArray(values, coords=coords, dims=dims, name="ssm", attrs={"units": "m3 m-3"})


def test_visible_window_selects_intersecting_cells_only():
    da = grid(1.0)
    win = compute.visible_window(da, (10.2, 20.7), (-5.5, 3.1), pad=0)
    # cells whose [c-0.5, c+0.5] intersects the range
    assert win["lon"].values[0] == 10.5 and win["lon"].values[-1] == 20.5
    assert win["lat"].values[0] == 3.5 and win["lat"].values[-1] == -5.5
    padded = compute.visible_window(da, (10.2, 20.7), (-5.5, 3.1), pad=2)
    assert padded.sizes["lon"] == win.sizes["lon"] + 4
    outside = compute.visible_window(grid(1.0, west=0, east=10), (50, 60), (0, 1))
    assert outside.size == 0


def test_time_aggregate_month_year_period_match_numpy():
    da = grid(10.0, ntime=400)
    times = pd.DatetimeIndex(da["time"].values)
    month = compute.time_aggregate(da, "month", "2018-02-14")
    sel = (times.year == 2018) & (times.month == 2)
    with np.errstate(invalid="ignore"):
        expect = np.nanmean(da.values[sel], axis=0)
    np.testing.assert_allclose(month.values, expect, rtol=1e-6)
    year = compute.time_aggregate(da, "year", "2019-01-20")
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(year.values, np.nanmean(da.values[times.year == 2019], axis=0), rtol=1e-6)
    per = compute.time_aggregate(da, "period", None, period=("2018-03-10", "2018-03-01"))
    sel = (times >= "2018-03-01") & (times <= "2018-03-10")
    assert sel.sum() == 10
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(per.values, np.nanmean(da.values[sel], axis=0), rtol=1e-6)
    day = compute.time_aggregate(da, "day", "2018-01-05")
    np.testing.assert_array_equal(day.values, da.values[4])
    with pytest.raises(InputError, match="no time steps"):
        compute.time_aggregate(da, "month", "2030-01-01")
    with pytest.raises(InputError, match="unknown time aggregation"):
        compute.time_aggregate(da, "week", "2018-01-01")


def test_rasterize_to_screen_block_means_when_downsampling():
    da = grid(0.5, nan_frac=0.0)
    out = compute.rasterize_to_screen(da, (-180, 180), (-90, 90), 360, 180)
    assert out.shape == (180, 360)
    assert out["lat"].values[0] > out["lat"].values[-1]
    expect = da.values.reshape(180, 2, 360, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(out.values, expect, rtol=1e-5)


def test_regrid_block_mean_matches_reshape_mean_with_nans():
    fine = grid(0.25, west=-10, east=10, south=30, north=50, seed=3, nan_frac=0.3)
    coarse_lat = np.arange(49.5, 30, -1.0)
    coarse_lon = np.arange(-9.5, 10, 1.0)
    out = compute.regrid_block_mean(fine, coarse_lat, coarse_lon)
    blocks = fine.values.reshape(20, 4, 20, 4).transpose(0, 2, 1, 3).reshape(20, 20, 16)
    with np.errstate(invalid="ignore"):
        expect = np.nanmean(blocks, axis=2)
    np.testing.assert_allclose(out.values, expect, rtol=1e-5)
    # a block with no valid value stays NaN
    fine2 = fine.copy()
    fine2.values[0:4, 0:4] = np.nan
    assert np.isnan(compute.regrid_block_mean(fine2, coarse_lat, coarse_lon).values[0, 0])


def test_common_grid_and_mask():
    fine = grid(0.25, west=-10, east=10, south=30, north=50, seed=1, nan_frac=0.2)
    coarse = grid(1.0, west=-20, east=20, south=20, north=60, seed=2, nan_frac=0.2)
    common = compute.to_common_grid({"fine": fine, "coarse": coarse})
    assert common["fine"].shape == common["coarse"].shape == (20, 20)
    np.testing.assert_array_equal(common["coarse"]["lon"].values, np.arange(-9.5, 10, 1.0))
    mask = compute.common_mask(common.values())
    expect = np.isfinite(common["fine"].values) & np.isfinite(common["coarse"].values)
    np.testing.assert_array_equal(mask.values, expect)
    with pytest.raises(InputError, match="do not overlap"):
        compute.to_common_grid({"a": fine, "b": grid(1.0, west=100, east=120)})


def test_weighted_mean_is_cos_lat_weighted():
    da = grid(2.0, seed=5)
    w = np.cos(np.deg2rad(da["lat"].values))[:, None] * np.ones(da.shape)
    ok = np.isfinite(da.values)
    expect = (w[ok] * da.values[ok]).sum() / w[ok].sum()
    assert compute.weighted_mean(da) == pytest.approx(expect, rel=1e-9)
    # differs from the plain mean on a field that varies with latitude
    lat_field = da.copy(data=np.broadcast_to(np.abs(da["lat"].values)[:, None], da.shape).astype("float32"))
    assert compute.weighted_mean(lat_field) < float(np.nanmean(lat_field.values)) - 5


def test_zonal_mean_per_band():
    da = grid(0.5, seed=7, nan_frac=0.3)
    prof = compute.zonal_mean(da, band_deg=5.0)
    assert prof.index.is_monotonic_increasing and prof.size == 36
    # band 40–45 N: rows with centres in [40, 45)
    lat = da["lat"].values
    rows = (lat >= 40) & (lat < 45)
    vals = da.values[rows]
    w = np.cos(np.deg2rad(lat[rows]))[:, None] * np.isfinite(vals)
    expect = np.nansum(vals * w) / w.sum()
    assert prof.loc[42.5] == pytest.approx(expect, rel=1e-9)


def test_histogram_ignores_nans():
    da = grid(5.0, seed=9, nan_frac=0.5)
    counts, edges = compute.histogram(da, bins=10, value_range=(0, 0.5))
    assert counts.sum() == np.isfinite(da.values).sum()
    assert edges[0] == 0 and edges[-1] == 0.5


def test_series_table_columns():
    t = pd.date_range("2018-01-01", periods=3)
    s = xr.DataArray([0.1, np.nan, 0.3], coords={"time": t}, dims="time", name="ssm")
    s.attrs.update(pixel_lon=10.125, pixel_lat=45.875)
    table = compute.series_table({"p1": s}, {"p1": "m3 m-3"}, 10.1, 45.9)
    assert list(table.columns) == ["time", "product", "variable", "value", "units", "lon", "lat"]
    assert table["lon"].iloc[0] == 10.125 and table["units"].iloc[2] == "m3 m-3"
    assert np.isnan(table["value"].iloc[1])


def test_common_grid_for_a_view_smaller_than_one_coarse_cell():
    fine = grid(0.01, west=-98, east=-97.5, south=37.6, north=37.9, nan_frac=0.0)
    coarse = grid(2.0, west=-100, east=-96, south=36, north=40)
    common = compute.to_common_grid({"fine": fine, "coarse": coarse})
    assert common["fine"].shape == (1, 1)
    assert float(common["coarse"]["lon"][0]) == -97.0 and float(common["coarse"]["lat"][0]) == 37.0
    assert float(common["fine"][0, 0]) == pytest.approx(float(fine.values.astype("float64").mean()), rel=1e-6)


def test_rasterize_single_cell_field_fills_its_extent():
    one = xr.DataArray(
        np.array([[0.3]], dtype="float32"),
        coords={"lat": [37.0], "lon": [-97.0]},
        dims=("lat", "lon"),
        attrs={"res_lat": 2.0, "res_lon": 2.0},
    )
    out = compute.rasterize_to_screen(one, (-99.0, -95.0), (36.5, 37.5), 40, 10)
    inside = (out["lon"].values > -98) & (out["lon"].values < -96)
    assert np.allclose(out.values[:, inside], 0.3)
    assert np.isnan(out.values[:, ~inside]).all()


def test_mercator_forward_and_inverse_match_pyproj():
    from pyproj import Transformer

    rng = np.random.default_rng(3)
    lon = rng.uniform(-180, 180, 500)
    lat = rng.uniform(-85.05, 85.05, 500)
    to_merc = Transformer.from_crs(4326, 3857, always_xy=True)
    ex, ey = to_merc.transform(lon, lat)
    x, y = compute.lonlat_to_mercator(lon, lat)
    np.testing.assert_allclose(x, ex, atol=1e-6)
    np.testing.assert_allclose(y, ey, atol=1e-6)
    back_lon, back_lat = compute.mercator_to_lonlat(x, y)
    elon, elat = Transformer.from_crs(3857, 4326, always_xy=True).transform(ex, ey)
    np.testing.assert_allclose(back_lon, elon, atol=1e-9)
    np.testing.assert_allclose(back_lat, elat, atol=1e-9)
    np.testing.assert_allclose(back_lat, lat, atol=1e-9)
    # beyond ±85.0511° latitudes clip to the edge of the square tile world
    _, y_pole = compute.lonlat_to_mercator([0, 0], [89.9, -90])
    _, y_edge = to_merc.transform([0, 0], [compute.MERCATOR_MAX_LAT, -compute.MERCATOR_MAX_LAT])
    np.testing.assert_allclose(y_pole, y_edge, atol=1e-6)
    np.testing.assert_allclose(y_edge, [compute.MERCATOR_MAX_Y, -compute.MERCATOR_MAX_Y], atol=1e-3)


def test_mercator_rows_pick_the_lat_row_containing_each_row_centre():
    from pyproj import Transformer

    da = grid(0.5, west=-20, east=20, south=-60, north=70, nan_frac=0.0)
    (y0, y1) = compute.lonlat_to_mercator([0, 0], [-50.0, 65.0])[1]
    height = 300
    out = compute.mercator_rows(da, (y1, y0), height)
    assert out.dims == ("y", "lon") and out.shape == (height, da.sizes["lon"])
    np.testing.assert_array_equal(out["lon"].values, da["lon"].values)
    # independent reference: row centres in mercator → latitude by pyproj → the 0.5° cell holding it
    yc = y1 - (np.arange(height) + 0.5) * (y1 - y0) / height
    assert np.all(np.diff(out["y"].values) < 0)
    np.testing.assert_allclose(out["y"].values, yc)
    _, lat_c = Transformer.from_crs(3857, 4326, always_xy=True).transform(np.zeros(height), yc)
    np.testing.assert_allclose(out["lat"].values, lat_c, atol=1e-9)
    for i in (0, 17, 150, 299):
        row = int(np.argmin(np.abs(da["lat"].values - lat_c[i])))
        assert abs(da["lat"].values[row] - lat_c[i]) <= 0.25
        np.testing.assert_array_equal(out.values[i], da.values[row])
    # rows north of the image are NaN
    above = compute.mercator_rows(da, compute.lonlat_to_mercator([0, 0], [60.0, 80.0])[1], 50)
    assert np.isnan(above.values[0]).all() and np.isfinite(above.values[-1]).all()


def test_mercator_source_rows_give_every_screen_row_its_own_lat_row():
    _, y = compute.lonlat_to_mercator([0, 0], [-80.0, 80.0])
    rows = compute.mercator_source_rows(y, 200, max_factor=100)
    lat_lo, lat_hi = -80.0, 80.0
    step = (lat_hi - lat_lo) / rows
    # the mercator row nearest the pole spans at least one source row
    _, edges = compute.mercator_to_lonlat(np.zeros(201), np.linspace(y[0], y[1], 201))
    assert np.diff(edges).min() >= step * (1 - 1e-9)
    assert rows > 200
    assert compute.mercator_source_rows(y, 200, max_factor=2) == 400
    # near the equator mercator rows are almost lat-regular: as many rows as the screen
    _, small = compute.lonlat_to_mercator([0, 0], [-1.0, 1.0])
    assert compute.mercator_source_rows(small, 200) in (200, 201)
