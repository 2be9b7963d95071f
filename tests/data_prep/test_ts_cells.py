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
