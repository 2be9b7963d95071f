"""Sidebar controls: the product picker follows the catalog."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from app import data
from app.controls import Controls
from app.state import AppState
from catalog import store


def _cube(value: float) -> xr.Dataset:
    lat = np.array([1.5, 0.5])
    lon = np.array([0.5, 1.5, 2.5])
    ssm = np.full((2, 2, 3), value, dtype="float32")
    ds = xr.Dataset(
        {"ssm": (("time", "lat", "lon"), ssm, {"units": "m3 m-3", "long_name": "surface soil moisture"})},
        coords={"time": pd.date_range("2018-07-01", periods=2), "lat": lat, "lon": lon},
    )
    return ds


def test_new_product_appears_in_the_picker(data_dir, monkeypatch):
    monkeypatch.setattr(data, "PRODUCTS_TTL_S", 0.0)
    store.write_product(_cube(0.2), "first", provenance={}, synthetic=True)
    data._products_cache = (0.0, [])
    controls = Controls(AppState())
    assert list(controls.product.options.values()) == ["first"]

    store.write_product(_cube(0.3), "second", provenance={}, synthetic=True)
    controls.refresh_products()
    assert sorted(controls.product.options.values()) == ["first", "second"]
    assert controls.product.value == "first"  # the selection is kept
