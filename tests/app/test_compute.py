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
