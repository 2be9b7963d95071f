"""Sidebar controls: the product picker follows the catalog; the period stays inside the product's
time range."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import xarray as xr

from app import data
from app.controls import Controls, clip_period
from app.state import AppState
from catalog import store


def _cube(value: float, start: str = "2018-07-01", periods: int = 2) -> xr.Dataset:
    lat = np.array([1.5, 0.5])
    lon = np.array([0.5, 1.5, 2.5])
    ssm = np.full((periods, 2, 3), value, dtype="float32")
    ds = xr.Dataset(
        {"ssm": (("time", "lat", "lon"), ssm, {"units": "m3 m-3", "long_name": "surface soil moisture"})},
        coords={"time": pd.date_range(start, periods=periods), "lat": lat, "lon": lon},
    )
    return ds


def test_new_product_appears_in_the_picker(data_dir, monkeypatch):
    monkeypatch.setattr(data, "PRODUCTS_TTL_S", 0.0)
    store.write_product(_cube(0.2), "first", provenance={}, synthetic=True)
    data.view_data().forget_products()
    controls = Controls(AppState())
    assert list(controls.product.options.values()) == ["first"]

    store.write_product(_cube(0.3), "second", provenance={}, synthetic=True)
    controls.refresh_products()
    assert sorted(controls.product.options.values()) == ["first", "second"]
    assert controls.product.value == "first"  # the selection is kept


def test_switching_product_keeps_the_period_inside_its_range(data_dir, monkeypatch):
    """The period picker refuses bounds that exclude its value: switching to a product whose
    time range misses the period clips the period (or falls back to the first days) instead of
    failing with the picker's error."""
    store.write_product(_cube(0.2), "july", provenance={}, synthetic=True)
    store.write_product(_cube(0.3, "2018-06-01", 20), "june", provenance={}, synthetic=True)
    data.view_data().forget_products()
    state = AppState(product="june", aggregation="period", period=(dt.date(2018, 6, 5), dt.date(2018, 6, 9)))
    controls = Controls(state)
    assert controls.period.value == (dt.date(2018, 6, 5), dt.date(2018, 6, 9))

    state.product = "july"  # 2018-07-01 … 07-02: the June period lies outside
    assert state.message == ""
    assert state.period == controls.period.value == (dt.date(2018, 7, 1), dt.date(2018, 7, 2))
    assert (controls.period.start, controls.period.end) == (dt.date(2018, 7, 1), dt.date(2018, 7, 2))

    state.product = "june"  # back: the July period lies outside June's 20 days
    assert state.message == "" and state.period == (dt.date(2018, 6, 1), dt.date(2018, 6, 10))


def test_clip_period():
    start, end = dt.date(2018, 7, 1), dt.date(2018, 7, 30)
    assert clip_period((dt.date(2018, 6, 20), dt.date(2018, 7, 5)), start, end) == (
        start,
        dt.date(2018, 7, 5),
    )
    assert clip_period((dt.date(2017, 1, 1), dt.date(2017, 1, 5)), start, end) == (
        start,
        dt.date(2018, 7, 10),
    )
    assert clip_period(None, start, dt.date(2018, 7, 3)) == (start, dt.date(2018, 7, 3))
