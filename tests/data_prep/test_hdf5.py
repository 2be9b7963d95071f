"""HDF5 helpers on the real SMAP L2 half-orbit swaths and on small files written here."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from catalog.errors import InputError
from data_prep.hdf5 import decode_attrs, open_file, read_raw, read_variable, write_variable

SWATHS = "qa4sm_hawaii/preprocessing/SMAP_L2/2015.08.11"
GROUP = "Soil_Moisture_Retrieval_Data"


@pytest.fixture(scope="module")
def swaths(shared_data):
    paths = sorted((shared_data / SWATHS).glob("SMAP_L2_SM_P_*.h5"))
    assert len(paths) == 2
    return paths


def test_swath_soil_moisture_flags_and_geolocation(swaths):
    for path in swaths:
        with h5py.File(path, "r") as raw:
            sm = raw[f"{GROUP}/soil_moisture"][:]
            fill = raw[f"{GROUP}/soil_moisture"].attrs["_FillValue"]
            qual = raw[f"{GROUP}/retrieval_qual_flag"][:]
            lat = raw[f"{GROUP}/latitude"][:]
            lon = raw[f"{GROUP}/longitude"][:]
        valid = np.flatnonzero(sm != fill)
        filled = np.flatnonzero(sm == fill)
        assert valid.size > 100 and filled.size > 100

        with open_file(path) as f:
            got = read_variable(f, f"{GROUP}/soil_moisture")
            got_qual = read_variable(f, f"{GROUP}/retrieval_qual_flag")
            got_lat = read_variable(f, f"{GROUP}/latitude")
            got_lon = read_variable(f, f"{GROUP}/longitude")
            attrs = decode_attrs(f[f"{GROUP}/soil_moisture"])
            raw_flags = read_raw(f, f"{GROUP}/retrieval_qual_flag")
        assert got.dtype == np.float32
        for i in (valid[0], valid[len(valid) // 2], valid[-1]):
            assert got[i] == sm[i]
            assert got_qual[i] == qual[i]
            assert got_lat[i] == lat[i] and got_lon[i] == lon[i]
        assert np.isnan(got[filled]).all()
        assert np.isfinite(got[valid]).all()
        assert np.array_equal(raw_flags, qual)
        assert attrs["units"] == "cm**3/cm**3"
        assert attrs["_FillValue"] == -9999.0


def test_flag_fill_becomes_nan_and_valid_range(tmp_path):
    path = tmp_path / "small.h5"
    with h5py.File(path, "w") as f:
        write_variable(
            f, "flags", np.array([0, 7, 65534, 1], np.uint16), fill_value=65534, attrs={"units": "1"}
        )
        ds = write_variable(f, "scaled", np.array([100, -1, 250, 9000], np.int16), fill_value=-1)
        ds.attrs["scale_factor"] = 0.001
        ds.attrs["add_offset"] = 0.01
        ds.attrs["valid_max"] = np.int16(1000)  # CF: bounds in stored (packed) units
    with open_file(path) as f:
        flags = read_variable(f, "flags")
        assert flags.tolist()[:2] == [0.0, 7.0] and np.isnan(flags[2]) and flags[3] == 1.0
        scaled = read_variable(f, "scaled")
        np.testing.assert_allclose(scaled[[0, 2, 3]], [0.11, 0.26, 9.01], rtol=1e-6)
        assert np.isnan(scaled[1])
        in_range = read_variable(f, "scaled", valid_range=True)
        assert np.isnan(in_range[[1, 3]]).all() and in_range[2] == pytest.approx(0.26)
        assert decode_attrs(f["flags"]) == {"_FillValue": 65534, "units": "1"}
        assert read_variable(f, "flags", index=slice(1, 3))[0] == 7.0


def test_bad_files_and_missing_datasets_name_the_file(tmp_path, swaths):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(InputError, match=r"notes\.h5"):
        open_file(text)
    truncated = tmp_path / "cut.h5"
    truncated.write_bytes(swaths[0].read_bytes()[:50_000])
    with pytest.raises(InputError, match=r"cut\.h5"):
        with open_file(truncated) as f:
            read_variable(f, f"{GROUP}/soil_moisture")
    with open_file(swaths[0]) as f:
        with pytest.raises(InputError, match=r"SMAP_L2_SM_P_.*no dataset 'nope'"):
            read_variable(f, "nope")
        with pytest.raises(InputError, match="not numbers"):
            read_variable(f, f"{GROUP}/tb_time_utc")
