"""Small gridded datasets for the catalog tests."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr


def grid_dataset(
    n_time=3,
    n_lat=6,
    n_lon=10,
    *,
    start="2018-07-01",
    res=0.5,
    west=-105.0,
    north=50.0,
    seed=0,
    nan_fraction=0.2,
    chunks=None,
    lat_ascending=False,
) -> xr.Dataset:
    """``ssm`` on a regular grid (cell centres), random values with some NaN, dask-backed."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.05, 0.5, (n_time, n_lat, n_lon)).astype(np.float32)
    values[rng.random(values.shape) < nan_fraction] = np.nan
    lat = north - (np.arange(n_lat) + 0.5) * res
    lon = west + (np.arange(n_lon) + 0.5) * res
    data = da.from_array(values, chunks=chunks or (1, n_lat, n_lon))
    ds = xr.Dataset(
        {"ssm": (("time", "lat", "lon"), data, {"units": "m3 m-3"})},
        coords={"time": pd.date_range(start, periods=n_time, freq="D"), "lat": lat, "lon": lon},
    )
    if lat_ascending:
        ds = ds.isel(lat=slice(None, None, -1))
    return ds


def failing_dataset(ds: xr.Dataset, fail_at_time: int) -> xr.Dataset:
    """``ds`` whose dask graph raises when the block at time index ``fail_at_time`` is computed."""

    def check(block, block_info=None):
        t0 = block_info[0]["array-location"][0][0]
        if t0 == fail_at_time:
            raise RuntimeError("simulated read failure")
        return block

    out = ds.copy()
    for v in ds.data_vars:
        data = ds[v].data.rechunk((1, -1, -1))
        out[v] = (ds[v].dims, da.map_blocks(check, data, dtype=data.dtype), ds[v].attrs)
    return out


@pytest.fixture
def make_grid():
    return grid_dataset
