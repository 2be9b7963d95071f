"""ESA CCI SM / C3S images: real C3S daily and monthly files, writer round trip, bad input."""

from __future__ import annotations

import dask.array
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from catalog.errors import InputError
from data_prep.esacci import read_esacci, write_esacci

DAILY = (
    "c3s_esacci_global_images/c3s_daily_monthly/C3S-SOILMOISTURE-L3S-SSMV-COMBINED-DAILY-{}000000-{}.0.0.nc"
)
MONTHLY_2018 = "c3s_esacci_global_images/c3s_monthly_2018"


def _daily(shared_data, day="20170701", version="ICDR-v201706"):
    return shared_data / DAILY.format(day, version)


def test_real_c3s_daily_values_and_flags(shared_data):
    paths = [_daily(shared_data, "20140102", "TCDR-v201801"), _daily(shared_data)]
    ds = read_esacci(paths)
    assert ds.sizes == {"time": 2, "lat": 720, "lon": 1440}
    assert isinstance(ds["ssm"].data, dask.array.Array)
    assert list(ds["time"].values) == list(pd.to_datetime(["2014-01-02", "2017-07-01"]).values)
    assert ds["lat"][0] > ds["lat"][-1] and ds["ssm"].dtype == np.float32

    with netCDF4.Dataset(paths[1]) as nc:
        nc.set_auto_mask(False)
        sm = nc["sm"][0]
        flag = nc["flag"][0]
        unc = nc["sm_uncertainty"][0]
        lat, lon = nc["lat"][:], nc["lon"][:]
    good = np.argwhere((sm != -9999) & (flag == 0))
    row, col = good[len(good) // 2]
    got = ds.sel(time="2017-07-01").isel(lat=row, lon=col)
    assert float(got["lat"]) == pytest.approx(float(lat[row]))
    assert float(got["lon"]) == pytest.approx(float(lon[col]))
    assert float(got["ssm"]) == pytest.approx(float(sm[row, col]))
    assert float(got["ssm_uncertainty"]) == pytest.approx(float(unc[row, col]))
    assert float(got["flag"]) == 0

    day = ds.sel(time="2017-07-01").compute()
    assert int(day["ssm"].notnull().sum()) == int(((sm != -9999) & (flag == 0)).sum())
    assert np.isnan(day["ssm"].values[flag != 0]).all()
    fill_rows, fill_cols = np.nonzero(flag == 127)
    assert np.isnan(day["flag"].values[fill_rows[0], fill_cols[0]])
    # the flag variable keeps its bit values for other filters
    assert np.array_equal(day["flag"].values[flag == 32], np.full((flag == 32).sum(), 32.0, np.float32))


def test_keep_flags_none_and_custom(tmp_path):
    lat = np.array([10.125, 9.875])
    lon = np.array([20.125, 20.375, 20.625])
    sm = np.array([[[0.1, 0.2, 0.3], [0.4, 0.5, np.nan]]], np.float32)
    flag = np.array([[[0, 1, 2], [4, 0, 127]]], np.float32)
    flag[0, 1, 2] = np.nan
    src = xr.Dataset(
        {"ssm": (("time", "lat", "lon"), sm), "flag": (("time", "lat", "lon"), flag)},
        coords={"time": [np.datetime64("2018-07-01")], "lat": lat, "lon": lon},
    )
    path = write_esacci(tmp_path / "img.nc", src)
    default = read_esacci(path)["ssm"].values[0]
    assert np.array_equal(np.isnan(default), [[False, True, True], [True, False, True]])
    everything = read_esacci(path, keep_flags=None)["ssm"].values[0]
    np.testing.assert_allclose(everything[:, :2], sm[0, :, :2])
    custom = read_esacci(path, keep_flags={0, 2})["ssm"].values[0]
    assert custom[0, 2] == pytest.approx(0.3) and np.isnan(custom[0, 1])


def test_real_c3s_monthly(shared_data):
    folder = shared_data / MONTHLY_2018
    paths = sorted(folder.glob("*.nc"))[::-1]
    ds = read_esacci(paths)
    assert ds.attrs["time_step"] == "month"
    assert list(ds["time"].dt.day.values) == [1] * 8
    assert list(ds["time"].dt.month.values) == list(range(1, 9))
    assert set(ds.data_vars) == {"ssm"}
    with netCDF4.Dataset(
        folder / "C3S-SOILMOISTURE-L3S-SSMV-COMBINED-MONTHLY-20180501000000-ICDR-v201706.0.0.nc"
    ) as nc:
        nc.set_auto_mask(False)
        sm = nc["sm"][0]
    rows, cols = np.nonzero(sm != -9999)
    for k in (0, len(rows) // 3, len(rows) - 1):
        assert float(ds["ssm"].sel(time="2018-05-01")[rows[k], cols[k]]) == pytest.approx(
            float(sm[rows[k], cols[k]])
        )
    may = ds["ssm"].sel(time="2018-05-01").values
    assert np.isnan(may[sm == -9999]).all()
    assert int(np.isfinite(may).sum()) == int((sm != -9999).sum())


def test_daily_and_monthly_cannot_mix(shared_data):
    monthly = (
        shared_data
        / MONTHLY_2018
        / "C3S-SOILMOISTURE-L3S-SSMV-COMBINED-MONTHLY-20180101000000-ICDR-v201706.0.0.nc"
    )
    with pytest.raises(InputError, match="daily and monthly"):
        read_esacci([_daily(shared_data), monthly])


def _synthetic(n_time=3, monthly=False):
    rng = np.random.default_rng(1)
    lat = 50 - (np.arange(8) + 0.5) * 0.25
    lon = -105 + (np.arange(12) + 0.5) * 0.25
    time = pd.date_range("2018-01-01", periods=n_time, freq="MS" if monthly else "D")
    sm = rng.uniform(0.05, 0.5, (n_time, 8, 12)).astype(np.float32)
    sm[:, 0, 0] = np.nan
    ds = xr.Dataset({"ssm": (("time", "lat", "lon"), sm)}, coords={"time": time, "lat": lat, "lon": lon})
    if monthly:
        ds.attrs["time_step"] = "month"
    else:
        ds["ssm_uncertainty"] = ds["ssm"] * 0.1
        flag = np.zeros(sm.shape, np.float32)
        flag[:, 3, 4] = 2
        flag[:, 0, 0] = np.nan
        ds["flag"] = (("time", "lat", "lon"), flag)
    return ds


def test_writer_round_trip_and_real_layout(tmp_path, shared_data):
    src = _synthetic()
    path = write_esacci(tmp_path / "ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-20180101000000-fv08.1.nc", src)
    ds = read_esacci(path)
    expected = src["ssm"].where(src["flag"] == 0)
    np.testing.assert_allclose(ds["ssm"].values, expected.values, rtol=1e-6)
    np.testing.assert_allclose(ds["flag"].values, src["flag"].values)
    assert (ds["time"].values == src["time"].values).all()

    real = netCDF4.Dataset(_daily(shared_data))
    with netCDF4.Dataset(path) as nc:
        assert nc.data_model == real.data_model == "NETCDF4_CLASSIC"
        for name in ("lat", "lon", "time", "sm", "sm_uncertainty", "flag"):
            assert nc[name].dimensions == real[name].dimensions
            assert nc[name].dtype == real[name].dtype
        for name in ("sm", "sm_uncertainty", "flag"):
            assert nc[name].getncattr("_FillValue") == real[name].getncattr("_FillValue")
        assert set(real["flag"].flag_values) <= set(nc["flag"].flag_values)
        assert nc["time"].units == real["time"].units
        assert nc["sm"].units == real["sm"].units == "m3 m-3"
        assert nc.time_coverage_duration == "P1D"
        assert nc["sm"][0, 0, 0] is np.ma.masked
        assert nc["flag"][0, 3, 4] == 2
    real.close()


def test_monthly_writer_round_trip(tmp_path):
    src = _synthetic(n_time=1, monthly=True)
    path = write_esacci(tmp_path / "monthly.nc", src)
    ds = read_esacci(path)
    assert ds.attrs["time_step"] == "month" and set(ds.data_vars) == {"ssm"}
    np.testing.assert_allclose(ds["ssm"].values, src["ssm"].values, rtol=1e-6)


def test_bad_files_name_the_file(tmp_path):
    good = write_esacci(tmp_path / "good.nc", _synthetic())
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(InputError, match=r"truncated\.nc"):
        read_esacci(truncated)
    text = tmp_path / "notes.nc"
    text.write_text("soil moisture, but not netCDF")
    with pytest.raises(InputError, match=r"notes\.nc"):
        read_esacci(text)
    no_sm = tmp_path / "no_sm.nc"
    xr.Dataset({"precip": (("time", "lat", "lon"), np.zeros((1, 2, 2)))}).to_netcdf(no_sm)
    with pytest.raises(InputError, match=r"no_sm\.nc.*'sm'"):
        read_esacci(no_sm)
    shifted = _synthetic().assign_coords(lon=lambda d: d["lon"] + 1.0)
    other = write_esacci(
        tmp_path / "other.nc", shifted.assign_coords(time=shifted["time"] + np.timedelta64(9, "D"))
    )
    with pytest.raises(InputError, match=r"other\.nc.*grid"):
        read_esacci([good, other])


def test_real_image_with_a_corrupt_chunk_is_refused(shared_data, tmp_path):
    """4 KB inverted inside the compressed 'sm' chunk of a real C3S image: netCDF4 alone raises a bare
    ``RuntimeError: NetCDF: HDF error`` when the data are computed; the reader names file, variable
    and chunk."""
    import h5py

    src = _daily(shared_data)
    with h5py.File(src, "r") as f:
        info = f["sm"].id.get_chunk_info(0)
    data = bytearray(src.read_bytes())
    start = info.byte_offset + info.size // 2
    data[start : start + 4096] = bytes(b ^ 0xFF for b in data[start : start + 4096])
    bad = tmp_path / src.name
    bad.write_bytes(bytes(data))
    ds = read_esacci(bad)
    assert isinstance(ds["ssm"].data, dask.array.Array)
    np.testing.assert_array_equal(ds["flag"].values, read_esacci(src)["flag"].values)  # intact variable
    with pytest.raises(InputError) as err:
        ds["ssm"].load()
    msg = str(err.value)
    assert msg.startswith(f"{bad}: variable 'sm' cannot be read (NetCDF: HDF error)")
    span = f"bytes {info.byte_offset}..{info.byte_offset + info.size - 1}"
    assert f"chunk at (0, 0, 0) ({span}) is corrupt" in msg


def test_real_image_truncated_is_refused(shared_data, tmp_path):
    src = _daily(shared_data)
    cut = tmp_path / src.name
    cut.write_bytes(src.read_bytes()[: int(src.stat().st_size * 0.9)])
    with pytest.raises(InputError, match=rf"{cut.name}: not a readable netCDF file"):
        read_esacci(cut).load()
