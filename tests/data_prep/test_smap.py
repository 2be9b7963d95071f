"""SMAP L3 writer → reader (checked independently with h5py) and the real L2 swaths."""

from __future__ import annotations

import dask.array
import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from catalog.errors import InputError
from data_prep import ease2
from data_prep.smap import read_smap_l2, read_smap_l3, smap_l3_file_name, write_smap_l3

AM = "Soil_Moisture_Retrieval_Data_AM"
PM = "Soil_Moisture_Retrieval_Data_PM"


def _field(res=0.25, scale=1.0, keep=None):
    lat = 90 - (np.arange(round(180 / res)) + 0.5) * res
    lon = -180 + (np.arange(round(360 / res)) + 0.5) * res
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    values = (0.25 + 0.1 * np.sin(np.radians(lo * 3)) * np.cos(np.radians(la))) * scale
    field = xr.DataArray(values.astype(np.float32), dims=("lat", "lon"), coords={"lat": lat, "lon": lon})
    return field.where(keep(la, lo)) if keep else field


@pytest.fixture(scope="module")
def l3_day(tmp_path_factory):
    """One 36 km day: AM over lon % 40 < 25, PM (x1.2) over lon % 40 > 10, some AM not recommended."""
    folder = tmp_path_factory.mktemp("smap")
    am = _field(keep=lambda la, lo: (lo % 40) < 25)
    pm = _field(scale=1.2, keep=lambda la, lo: (lo % 40) > 10)
    qual_am = xr.where(am.notnull(), xr.where((am["lon"] > 121) & (am["lon"] < 129), 1, 8), np.nan)
    path = write_smap_l3(folder / smap_l3_file_name("2018-07-01"), am, pm, qual_am=qual_am)
    return path


def test_written_file_has_the_real_layout(l3_day):
    with h5py.File(l3_day, "r") as f:
        assert set(f) == {"Metadata", AM, PM}
        assert f["Metadata/DatasetIdentification"].attrs["shortName"] == b"SPL3SMP"
        for group, s in ((AM, ""), (PM, "_pm")):
            for name in ("soil_moisture", "retrieval_qual_flag", "surface_flag", "latitude", "longitude"):
                assert f[f"{group}/{name}{s}"].shape == (406, 964)
            sm = f[f"{group}/soil_moisture{s}"]
            assert sm.dtype == np.float32 and sm.attrs["_FillValue"] == -9999.0
            assert sm.attrs["units"] == b"cm**3/cm**3"
            assert f[f"{group}/retrieval_qual_flag{s}"].dtype == np.uint16
            assert f[f"{group}/retrieval_qual_flag{s}"].attrs["_FillValue"] == 65534
            lat = f[f"{group}/latitude{s}"][:]
            rows = f[f"{group}/EASE_row_index{s}"][:]
            values = sm[:]
            # latitude holds the EASE2 row centre where the day has data, -9999 elsewhere
            assert (lat[values == -9999.0] == -9999.0).all()
            have = values != -9999.0
            expected = ease2.row_latitudes(ease2.M36)[rows[have]]
            np.testing.assert_allclose(lat[have], expected, atol=1e-4)


def test_reader_values_against_h5py(l3_day):
    ds = read_smap_l3(l3_day)
    assert isinstance(ds["ssm"].data, dask.array.Array)
    assert ds.sizes == {"time": 1, "lat": 720, "lon": 1440}
    assert ds["time"].values[0] == np.datetime64("2018-07-01")
    assert "centre" in ds.attrs["regridding"] and "mean" in ds.attrs["pass_combination"]
    day = ds.isel(time=0).compute()
    with h5py.File(l3_day, "r") as f:
        sm_am, sm_pm = f[f"{AM}/soil_moisture"][:], f[f"{PM}/soil_moisture_pm"][:]
        q_am = f[f"{AM}/retrieval_qual_flag"][:]
        lat_am, lon_am = f[f"{AM}/latitude"][:], f[f"{AM}/longitude"][:]
        lat_pm, lon_pm = f[f"{PM}/latitude_pm"][:], f[f"{PM}/longitude_pm"][:]
    am_ok = (sm_am != -9999) & ((q_am & 1) == 0)
    pm_ok = sm_pm != -9999
    cases = {
        "am only": np.argwhere(am_ok & ~pm_ok),
        "pm only": np.argwhere(~am_ok & pm_ok),
        "both": np.argwhere(am_ok & pm_ok),
        "am not recommended": np.argwhere((sm_am != -9999) & ((q_am & 1) == 1) & ~pm_ok),
    }
    for case, cells in cases.items():
        assert len(cells) > 10, case
        for r, c in cells[[0, len(cells) // 2, -1]]:
            lat = lat_am[r, c] if lat_am[r, c] != -9999 else lat_pm[r, c]
            lon = lon_am[r, c] if lon_am[r, c] != -9999 else lon_pm[r, c]
            got = day.sel(lat=lat, lon=lon, method="nearest")
            if case == "am only":
                assert float(got["ssm"]) == pytest.approx(sm_am[r, c]) and float(got["flag"]) == 8
            elif case == "pm only":
                assert float(got["ssm"]) == pytest.approx(sm_pm[r, c]) and float(got["flag"]) == 0
            elif case == "both":
                assert float(got["ssm"]) == pytest.approx((sm_am[r, c] + sm_pm[r, c]) / 2, rel=1e-6)
            else:
                assert np.isnan(float(got["ssm"])) and np.isnan(float(got["flag"]))
    assert np.isnan(day["ssm"].sel(lat=slice(89, 86))).all()  # beyond the EASE2 extent


def test_reader_options(l3_day):
    am_only = read_smap_l3(l3_day, passes=("AM",), recommended_only=False).isel(time=0).compute()
    with h5py.File(l3_day, "r") as f:
        sm_am = f[f"{AM}/soil_moisture"][:]
        q_am = f[f"{AM}/retrieval_qual_flag"][:]
        lat, lon = f[f"{AM}/latitude"][:], f[f"{AM}/longitude"][:]
    r, c = np.argwhere((sm_am != -9999) & ((q_am & 1) == 1))[5]
    got = am_only.sel(lat=lat[r, c], lon=lon[r, c], method="nearest")
    assert float(got["ssm"]) == pytest.approx(sm_am[r, c]) and float(got["flag"]) == 1
    fine = read_smap_l3(l3_day, resolution=0.5)
    assert fine.sizes == {"time": 1, "lat": 360, "lon": 720}
    with pytest.raises(InputError, match="passes"):
        read_smap_l3(l3_day, passes=("noon",))


def test_several_days(tmp_path):
    paths = [
        write_smap_l3(tmp_path / smap_l3_file_name(d), _field(scale=s))
        for d, s in (("2018-07-02", 1.0), ("2018-07-01", 0.5))
    ]
    ds = read_smap_l3(paths)
    assert list(ds["time"].dt.day.values) == [1, 2]
    point = ds["ssm"].sel(lat=40.1, lon=-100.1, method="nearest").values
    assert point[0] == pytest.approx(point[1] * 0.5, rel=1e-5)


@pytest.mark.slow
def test_the_9km_grid(tmp_path):
    e_path = write_smap_l3(tmp_path / smap_l3_file_name("2018-07-03", grid="M09"), _field(res=0.1))
    with h5py.File(e_path, "r") as f:
        assert f[f"{AM}/soil_moisture"].shape == (1624, 3856)
        assert f["Metadata/DatasetIdentification"].attrs["shortName"] == b"SPL3SMP_E"
        sm = f[f"{AM}/soil_moisture"][:]
        lat, lon = f[f"{AM}/latitude"][:], f[f"{AM}/longitude"][:]
    e_ds = read_smap_l3(e_path, passes=("AM",))
    assert e_ds.attrs["regridding"].startswith("each 0.0833333 degree")
    assert e_ds.sizes["lat"] == 2160
    r, c = 700, 1234
    got = e_ds["ssm"].isel(time=0).sel(lat=lat[r, c], lon=lon[r, c], method="nearest")
    assert float(got) == pytest.approx(sm[r, c])
    m36 = write_smap_l3(tmp_path / smap_l3_file_name("2018-07-04"), _field())
    with pytest.raises(InputError, match="cannot be mixed"):
        read_smap_l3([m36, e_path])


def test_bad_input_names_the_file(tmp_path, l3_day):
    with pytest.raises(InputError, match=r"smap\.h5.*file name"):
        read_smap_l3(tmp_path / "smap.h5")
    truncated = tmp_path / smap_l3_file_name("2018-07-05")
    truncated.write_bytes(l3_day.read_bytes()[:20_000])
    with pytest.raises(InputError, match="20180705"):
        read_smap_l3(truncated).load()
    no_pm = tmp_path / smap_l3_file_name("2018-07-06")
    with h5py.File(no_pm, "w") as f:
        f.create_dataset(f"{AM}/soil_moisture", data=np.zeros((406, 964), np.float32))
    with pytest.raises(InputError, match=r"20180706.*retrieval_qual_flag"):
        read_smap_l3(no_pm)
    wrong_grid = tmp_path / smap_l3_file_name("2018-07-07", grid="M09")
    with h5py.File(wrong_grid, "w") as f:
        for name in ("soil_moisture", "retrieval_qual_flag", "latitude"):
            f.create_dataset(f"{AM}/{name}", data=np.zeros((406, 964), np.float32))
    with pytest.raises(InputError, match=r"20180707.*expected \(1624, 3856\)"):
        read_smap_l3(wrong_grid, passes=("AM",))
    with pytest.raises(InputError, match="file name"):
        write_smap_l3(tmp_path / "whatever.h5", _field())


def test_real_l2_swath(shared_data):
    path = shared_data / "qa4sm_hawaii/preprocessing/SMAP_L2/2015.08.11"
    path = sorted(path.glob("*02802_A*.h5"))[0]
    ds = read_smap_l2(path)
    with h5py.File(path, "r") as f:
        g = f["Soil_Moisture_Retrieval_Data"]
        sm, qual, lat = g["soil_moisture"][:], g["retrieval_qual_flag"][:], g["latitude"][:]
        utc = g["tb_time_utc"][:]
    i = int(np.flatnonzero(sm != -9999)[7])
    assert float(ds["ssm"][i]) == sm[i] and float(ds["retrieval_qual_flag"][i]) == qual[i]
    assert float(ds["lat"][i]) == pytest.approx(lat[i])
    assert ds["time"].values[i] == pd.Timestamp(utc[i].decode().rstrip("Z")).to_datetime64()
    assert int(ds["ssm"].isnull().sum()) == int((sm == -9999).sum())
    assert ds.attrs["product"] == "SPL2SMP"


def _largest_chunk(path, name):
    """(chunk offset, file byte offset, size) of the largest stored chunk of dataset ``name``."""
    with h5py.File(path, "r") as f:
        d = f[name]
        assert d.compression == "gzip"
        info = max((d.id.get_chunk_info(i) for i in range(d.id.get_num_chunks())), key=lambda c: c.size)
    return info.chunk_offset, info.byte_offset, info.size


def _invert(src, dst, start, n):
    data = bytearray(src.read_bytes())
    data[start : start + n] = bytes(b ^ 0xFF for b in data[start : start + n])
    dst.write_bytes(bytes(data))
    return dst


def test_corrupt_compressed_chunk_is_refused(tmp_path, l3_day):
    name = f"{AM}/soil_moisture"
    chunk, offset, size = _largest_chunk(l3_day, name)
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    n = min(4096, size // 2)
    bad = _invert(l3_day, bad_dir / l3_day.name, offset + size // 4, n)
    ds = read_smap_l3(bad)  # lazy: the damage shows when the day is read
    with pytest.raises(InputError) as err:
        ds.load()
    msg = str(err.value)
    assert msg.startswith(f"{bad}: cannot read '{name}'")
    assert f"chunk at {chunk} (bytes {offset}..{offset + size - 1}) is corrupt" in msg
    assert "the file is corrupt or truncated" in msg


def test_truncated_near_the_end_is_refused(tmp_path, l3_day):
    cut_dir = tmp_path / "cut"
    cut_dir.mkdir()
    cut = cut_dir / l3_day.name
    cut.write_bytes(l3_day.read_bytes()[: int(l3_day.stat().st_size * 0.95)])
    with pytest.raises(InputError, match=r"20180701.*truncated file"):
        read_smap_l3(cut).load()


def test_real_l2_swath_with_a_corrupt_chunk(shared_data, tmp_path):
    path = sorted((shared_data / "qa4sm_hawaii/preprocessing/SMAP_L2/2015.08.11").glob("*02802_A*.h5"))[0]
    name = "Soil_Moisture_Retrieval_Data/soil_moisture"
    chunk, offset, size = _largest_chunk(path, name)
    bad = _invert(path, tmp_path / path.name, offset + size // 4, min(1024, size // 2))
    with pytest.raises(InputError) as err:
        read_smap_l2(bad)
    msg = str(err.value)
    assert msg.startswith(f"{bad}: cannot read '{name}'") and f"chunk at {chunk}" in msg
