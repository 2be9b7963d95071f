"""A product written while a ``dask.distributed`` client is current (a job on a cluster registering its
result) is written in this process and equals the same product written without one. Dask builds the
rechunks of such a write as peer-to-peer shuffles under a client, which fail on the threads the
catalog writes with; the catalog builds them as plain tasks."""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr

distributed = pytest.importorskip("distributed")


def _product() -> xr.Dataset:
    rng = np.random.default_rng(7)
    times = pd.date_range("2018-01-01", periods=20, freq="D")
    lat, lon = 60 - 0.05 * (np.arange(260) + 0.5), -10 + 0.05 * (np.arange(260) + 0.5)  # a series copy too
    values = rng.uniform(0.05, 0.45, (times.size, lat.size, lon.size)).astype("float32")
    ds = xr.Dataset(
        {"ssm": (("time", "lat", "lon"), values, {"units": "m3 m-3", "long_name": "soil moisture"})},
        coords={"time": times.values, "lat": lat, "lon": lon},
        attrs={"time_step": "day"},
    )
    return ds.chunk({"time": 1, "lat": 130, "lon": 130})  # as a block-wise prediction leaves it: rechunked


def test_write_under_a_distributed_client_equals_the_plain_write(data_dir):
    from catalog import api, store

    ds = _product()
    store.write_product(ds, "plain", provenance={"test": "no client"}, synthetic=True)
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None)
    # a threshold this low makes Dask choose peer-to-peer rechunks for any size, as it does for
    # the large graphs of a real region (a 500 × 500 px × 90 day re-prediction failed this way)
    with cluster, distributed.Client(cluster), dask.config.set({"array.rechunk.threshold": 1e-9}):
        store.write_product(ds, "under_client", provenance={"test": "client"}, synthetic=True)
    a, b = api.open_product("plain").load(), api.open_product("under_client").load()
    xr.testing.assert_identical(a["ssm"], b["ssm"])
    info = api.product_info("under_client")
    assert info.levels == api.product_info("plain").levels and info.has_series
