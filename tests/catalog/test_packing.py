"""CF-packed storage: integers on disk, the same floats through the catalog."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from catalog import api, packing, store
from catalog.errors import InputError
from tests.stores import product_dir

PROV = {"reader": "test"}
MILLI = {"ssm": packing.SSM_MILLI}


def milli_cube(n_time=3, n_lat=260, n_lon=1100, start="2018-07-01", seed=0) -> xr.Dataset:
    """SSM on GSSM1km's 0.001 steps (float32 k / 1000, the reader's values), some NaN, one 0."""
    rng = np.random.default_rng(seed)
    k = rng.integers(1, 1000, (n_time, n_lat, n_lon))
    values = k.astype(np.float32) / np.float32(1000)
    values[rng.random(values.shape) < 0.1] = np.nan
    values[0, 0, 0] = 0.0
    return xr.Dataset(
        {"ssm": (("time", "lat", "lon"), values, {"units": "m3 m-3"})},
        coords={
            "time": pd.date_range(start, periods=n_time, freq="D"),
            "lat": 40.0 - (np.arange(n_lat) + 0.5) * 0.01,
            "lon": -100.0 + (np.arange(n_lon) + 0.5) * 0.01,
        },
    )


def stored_array(data_dir, name: str, part: str) -> zarr.Array:
    return zarr.open_array(product_dir(data_dir, name) / part / "ssm", mode="r")


def test_every_uint16_decodes_to_the_readers_float32(tmp_path):
    k = np.arange(65535, dtype=np.uint16)
    ds = xr.Dataset({"ssm": (("x",), k.astype(np.float32) / np.float32(1000))})
    ds.to_zarr(tmp_path / "k.zarr", zarr_format=3, consolidated=False,
               encoding={"ssm": packing.SSM_MILLI.encoding()})  # fmt: skip
    assert np.array_equal(zarr.open_array(tmp_path / "k.zarr" / "ssm")[:], k)
    back = packing.as_float32(xr.open_zarr(tmp_path / "k.zarr", consolidated=False)).ssm
    assert back.dtype == np.float32
    assert np.array_equal(back.values, k.astype(np.float32) / np.float32(1000))


def test_packed_product_stores_uint16_and_reads_the_same_floats(data_dir):
    src = milli_cube()
    info = store.write_product(src, "packed", provenance=PROV, synthetic=True, packed=MILLI)
    assert info.has_series and len(info.levels) == 2
    for part in ("levels/0.zarr", "levels/1.zarr", "series.zarr"):
        arr = stored_array(data_dir, "packed", part)
        assert arr.dtype == np.uint16, part
        assert arr.attrs["scale_factor"] == 0.001 and arr.attrs["_FillValue"] == 65535
        assert "valid_min" not in arr.attrs and "valid_max" not in arr.attrs
    raw = stored_array(data_dir, "packed", "levels/0.zarr")[:]
    expected = np.where(np.isnan(src.ssm.values), 65535, np.rint(src.ssm.values * 1000)).astype(np.uint16)
    assert np.array_equal(raw, expected)
    assert raw[0, 0, 0] == 0  # a zero is a value, not the fill

    level0 = api.open_product("packed", 0)
    assert level0.ssm.dtype == np.float32
    assert np.array_equal(level0.ssm.values, src.ssm.values, equal_nan=True)
    series = api.point_series("packed", float(src.lon[7]), float(src.lat[11]))
    assert series.ssm.dtype == np.float32
    assert np.array_equal(series.ssm.values, src.ssm.values[:, 11, 7], equal_nan=True)

    # level 1: 2 x 2 means rounded to the 0.001 step
    mean = src.ssm.coarsen(lat=2, lon=2).mean().values
    level1 = api.open_product("packed", 1).ssm.values
    assert np.array_equal(np.isnan(level1), np.isnan(mean))
    assert np.nanmax(np.abs(level1 - mean)) <= 0.0005 + 1e-6
    meta = json.loads((product_dir(data_dir, "packed") / "product.json").read_text())
    assert meta["packing"] == {"ssm": {"dtype": "uint16", "scale_factor": 0.001, "_FillValue": 65535}}


def test_append_keeps_the_packing(data_dir):
    first, later = milli_cube(2, 40, 30), milli_cube(2, 40, 30, start="2018-07-03", seed=1)
    store.write_product(first, "p", provenance=PROV, synthetic=True, packed=MILLI)
    store.write_product(later, "p", provenance={"reader": "later"}, synthetic=True, mode="append")
    arr = stored_array(data_dir, "p", "levels/0.zarr")
    assert arr.dtype == np.uint16 and arr.shape == (4, 40, 30) and "valid_max" not in arr.attrs
    both = xr.concat([first, later], dim="time").ssm.values
    assert np.array_equal(api.open_product("p").ssm.values, both, equal_nan=True)


def test_unpacked_products_stay_float32(data_dir):
    store.write_product(milli_cube(2, 20, 20), "f", provenance=PROV, synthetic=True)
    arr = stored_array(data_dir, "f", "levels/0.zarr")
    assert arr.dtype == np.float32 and arr.attrs["valid_max"] == 1


def test_packings_that_cannot_hold_the_variable_are_refused(data_dir):
    src = milli_cube(2, 20, 20)
    with pytest.raises(InputError, match="no such variables"):
        store.write_product(src, "x", provenance=PROV, synthetic=True, packed={"le": packing.SSM_MILLI})
    le = src.rename(ssm="le").assign(le=lambda d: d.le.assign_attrs(units="W m-2"))
    with pytest.raises(InputError, match="does not fit uint16"):
        store.write_product(le, "x", provenance=PROV, synthetic=True, packed={"le": packing.SSM_MILLI})
    assert not (data_dir / "products" / "x").exists()
