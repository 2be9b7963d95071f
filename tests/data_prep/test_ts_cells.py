"""Time-series cell files of the Hawaii validation set, checked against direct netCDF4 reads."""

from __future__ import annotations

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from catalog.errors import InputError
from catalog.geo import haversine_km
from data_prep.ts_cells import nearest_series, read_ts_cells

CELLS = "qa4sm_hawaii/ts_cells"
CCI = f"{CELLS}/ESA_CCI_SM_combined/ESA_CCI_SM_C_V08_1"
C3S = f"{CELLS}/C3S_combined/C3S_V202505/TCDR/063_images_to_ts/combined-daily"
SMAP_V9 = f"{CELLS}/SMAP_L3/SMAP_V9_AM_PM/netcdf"
SMAP_V8_AM = f"{CELLS}/SMAP_L3/SMAP_V8_AM/netcdf"


def _raw(path, name):
    """Unmasked stored values and decoded times, read directly."""
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_mask(False)
        values = nc[name][:]
        t = nc["time"]
        times = netCDF4.num2date(
            t[:], t.units, only_use_cftime_datetimes=False, only_use_python_datetimes=True
        )
        return values, pd.to_datetime(list(times)), nc["location_id"][:], nc["lat"][:], nc["lon"][:]


@pytest.mark.parametrize("folder", [CCI, C3S])
def test_orthogonal_cci_and_c3s_cells(shared_data, folder):
    cell = shared_data / folder / "0165.nc"
    sm, times, ids, lat, _ = _raw(cell, "sm")
    flag, *_ = _raw(cell, "flag")
    ds = read_ts_cells(cell)
    assert ds.attrs["layout"] == "orthogonal"
    assert ds.sizes == {"location": ids.size, "time": times.size}
    assert ds["ssm"].attrs["units"] == "m3 m-3" and ds["ssm"].dtype == np.float32
    i, j = np.argwhere(np.isfinite(sm) & (sm > 0))[1000]
    got = ds.sel(location=ids[i], time=times[j])
    assert float(got["ssm"]) == pytest.approx(float(sm[i, j]), rel=1e-6)
    assert float(got["flag"]) == flag[i, j]
    assert float(got["lat"]) == pytest.approx(float(lat[i]), abs=1e-4)
    assert int(ds["ssm"].notnull().sum()) == int(np.isfinite(sm).sum())
    if folder == CCI:  # v08.1 marks missing flags with -9999 and declares no _FillValue
        k, m = np.argwhere(flag == -9999)[0]
        assert np.isnan(float(ds["flag"].sel(location=ids[k], time=times[m])))
        assert int(ds["flag"].isnull().sum()) == int((flag == -9999).sum())


def test_ragged_smap_cells_keep_quality_flags(shared_data):
    cell = shared_data / SMAP_V9 / "0166.nc"
    sm, _, ids, _, _ = _raw(cell, "soil_moisture")
    qual, *_ = _raw(cell, "retrieval_qual_flag")
    surface, *_ = _raw(cell, "surface_flag")
    with netCDF4.Dataset(cell) as nc:
        where = nc["locationIndex"][:]
        t = nc["time"]
        obs_times = pd.to_datetime(list(netCDF4.num2date(t[:], t.units, only_use_cftime_datetimes=False)))
    ds = read_ts_cells(cell)
    assert ds.attrs["layout"] == "indexed ragged"
    assert {"ssm", "retrieval_qual_flag", "surface_flag", "Overpass"} <= set(ds.data_vars)
    valid = np.flatnonzero((sm != -9999) & (sm >= 0.02) & (sm <= 0.5))
    for k in (valid[0], valid[len(valid) // 2], valid[-1]):
        got = ds.sel(location=ids[where[k]], time=obs_times[k])
        assert float(got["ssm"]) == pytest.approx(float(sm[k]))
        assert float(got["retrieval_qual_flag"]) == qual[k]
        assert float(got["surface_flag"]) == surface[k]
    assert int(ds["ssm"].notnull().sum()) == valid.size
    missing = np.flatnonzero(sm == -9999)[0]
    assert np.isnan(float(ds["ssm"].sel(location=ids[where[missing]], time=obs_times[missing])))
    # quality filtering as validation does it: recommended retrievals only
    recommended = ds["ssm"].where(ds["retrieval_qual_flag"] % 2 == 0)
    assert int(recommended.notnull().sum()) == int(((qual[valid] & 1) == 0).sum())


def test_orthogonal_smap_v8_and_directory_with_grid(shared_data):
    folder = shared_data / SMAP_V8_AM
    ds = read_ts_cells(folder, variables=["soil_moisture", "retrieval_qual_flag"])
    assert set(ds.data_vars) == {"ssm", "retrieval_qual_flag"}
    sm, times, ids, _, _ = _raw(folder / "0166.nc", "soil_moisture")
    i, j = np.argwhere(sm > 0.1)[20]
    assert float(ds["ssm"].sel(location=ids[i], time=times[j])) == pytest.approx(float(sm[i, j]))
    with netCDF4.Dataset(folder / "grid.nc") as g:
        gpi, glat = g["gpi"][:], g["lat"][:]
    assert float(ds["lat"].sel(location=ids[i])) == glat[np.searchsorted(gpi, ids[i])]
    n_165 = netCDF4.Dataset(folder / "0165.nc").dimensions["locations"].size
    assert ds.sizes["location"] == n_165 + ids.size


def test_nearest_series_and_distance(shared_data):
    ds = read_ts_cells(shared_data / CCI)
    target = ds.isel(location=5)
    lon, lat = float(target["lon"]) + 0.05, float(target["lat"]) - 0.03
    series = nearest_series(ds, lon, lat)
    assert series.attrs["location_id"] == int(target["location"])
    expected = haversine_km(lon, lat, float(target["lon"]), float(target["lat"]))
    assert series.attrs["distance_km"] == pytest.approx(float(expected))
    assert 5 < series.attrs["distance_km"] < 7  # 0.05° lon at 19.6°N and 0.03° lat
    xr.testing.assert_equal(series["ssm"], target["ssm"])
    with pytest.raises(InputError, match="within 10 km"):
        nearest_series(ds, 0.0, 0.0, max_distance_km=10)


def test_location_filter_and_bad_input(shared_data, tmp_path):
    cell = shared_data / CCI / "0165.nc"
    ids = read_ts_cells(cell, variables=["sm"])["location"].values
    sub = read_ts_cells(cell, location_ids=ids[:2], variables=["sm"])
    assert list(sub["location"].values) == list(ids[:2])
    with pytest.raises(InputError, match=r"0165\.nc.*no variable\(s\) precip"):
        read_ts_cells(cell, variables=["precip"])
    truncated = tmp_path / "0001.nc"
    truncated.write_bytes(cell.read_bytes()[:4000])
    with pytest.raises(InputError, match=r"0001\.nc"):
        read_ts_cells(truncated)
    text = tmp_path / "0002.nc"
    text.write_text("no")
    with pytest.raises(InputError, match=r"0002\.nc"):
        read_ts_cells(text)
    image = shared_data / "c3s_esacci_global_images/c3s_monthly_2018"
    image = sorted(image.glob("*.nc"))[0]
    with pytest.raises(InputError, match="not a time-series cell file"):
        read_ts_cells(image)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no time-series cell files"):
        read_ts_cells(empty)


def _cell_set_with_2d_grid(folder, *, lon_2d: bool):
    """A cell file of 3 locations and a grid.nc whose ``gpi`` is (lat, lon) on a 0.25° grid, with the
    ocean points masked (older C3S / ESA CCI cell sets); returns the locations' ids, lons, lats."""
    lats = np.array([19.875, 19.625, 19.375])
    lons = np.array([-155.875, -155.625, -155.375, -155.125])
    gpi = np.arange(lats.size * lons.size).reshape(lats.size, lons.size) + 1000
    land = np.array([[0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0]], bool)
    with netCDF4.Dataset(folder / "grid.nc", "w") as g:
        g.createDimension("lat", lats.size)
        g.createDimension("lon", lons.size)
        if lon_2d:
            g.createVariable("lat", "f8", ("lat", "lon"))[:] = np.repeat(lats[:, None], lons.size, 1)
            g.createVariable("lon", "f8", ("lat", "lon"))[:] = np.repeat(lons[None, :], lats.size, 0)
        else:
            g.createVariable("lat", "f8", ("lat",))[:] = lats
            g.createVariable("lon", "f8", ("lon",))[:] = lons
        g.createVariable("gpi", "i4", ("lat", "lon"), fill_value=-1)[:] = np.ma.masked_where(~land, gpi)
    ii, jj = np.nonzero(land)
    ids, cell_lon, cell_lat = gpi[ii, jj], lons[jj], lats[ii]
    with netCDF4.Dataset(folder / "0165.nc", "w") as nc:
        nc.createDimension("locations", ids.size)
        nc.createDimension("time", 4)
        nc.createVariable("location_id", "i8", ("locations",))[:] = ids
        nc.createVariable("lon", "f4", ("locations",))[:] = cell_lon
        nc.createVariable("lat", "f4", ("locations",))[:] = cell_lat
        t = nc.createVariable("time", "f8", ("time",))
        t.units = "days since 2018-01-01 00:00:00"
        t[:] = np.arange(4)
        sm = nc.createVariable("sm", "f4", ("locations", "time"), fill_value=-9999.0)
        sm.units = "m3 m-3"
        sm[:] = 0.1 + 0.01 * np.arange(ids.size * 4).reshape(ids.size, 4)
    return ids, cell_lon, cell_lat


@pytest.mark.parametrize("lon_2d", [False, True])
def test_grid_file_with_2d_gpi(tmp_path, lon_2d):
    """A grid.nc whose gpi is (lat, lon) gave numpy's 'object too deep' even for one cell file."""
    ids, lons, lats = _cell_set_with_2d_grid(tmp_path, lon_2d=lon_2d)
    for path in (tmp_path / "0165.nc", tmp_path):
        ds = read_ts_cells(path)
        assert list(ds["location"].values) == list(ids)
        np.testing.assert_array_equal(ds["lon"].values, lons)  # the grid's float64 positions
        np.testing.assert_array_equal(ds["lat"].values, lats)
        assert ds["ssm"].dtype == np.float32 and float(ds["ssm"][1, 2]) == pytest.approx(0.16)


def test_grid_file_with_2d_gpi_missing_location_and_bad_axes(tmp_path):
    _cell_set_with_2d_grid(tmp_path, lon_2d=False)
    with netCDF4.Dataset(tmp_path / "0165.nc", "a") as nc:
        nc["location_id"][0] = 1000  # an ocean point, masked in the grid
    with pytest.raises(InputError, match=r"grid\.nc: does not list every location"):
        read_ts_cells(tmp_path / "0165.nc")
    odd = tmp_path / "odd"
    odd.mkdir()
    _cell_set_with_2d_grid(odd, lon_2d=False)
    with netCDF4.Dataset(odd / "grid.nc", "a") as g:
        g.createDimension("x", 2)
        g.renameVariable("lon", "lon_axis")
        g.createVariable("lon", "f8", ("x",))[:] = [0.0, 1.0]
    with pytest.raises(InputError, match=r"grid\.nc: 'gpi' on \('lat', 'lon'\), 'lon' on \('x',\)"):
        read_ts_cells(odd)
