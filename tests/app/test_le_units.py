"""LE shown as evaporation (mm d-1) in the views and exports: E = LE·86400/λ(T) with T the air
temperature of the covering forcing product, cell by cell and step by step."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import xarray as xr

from app import data, le_units

DAY = dt.date(2018, 7, 1)


@pytest.fixture
def demo(demo_world, monkeypatch):
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(demo_world))
    data.view_data().forget_products()
    return demo_world


def _hand(le, ta):
    return le * 86400.0 / ((2.501 - 0.002361 * ta) * 1e6)


def test_map_field_uses_the_forcing_temperature(demo):
    assert le_units.ta_product("fluxes_demo") == "forcing_demo"
    le = data.field("fluxes_demo", "le", 0, "day", DAY)
    ta = data.field("forcing_demo", "ta", 0, "day", DAY)
    out, conv = le_units.convert_field(le, "fluxes_demo", "le", "mm d-1", agg="day", date=DAY)
    ok = np.isfinite(le.values)
    np.testing.assert_allclose(out.values[ok], _hand(le.values[ok], ta.values[ok]), rtol=1e-5)
    assert conv.units == "mm d-1" and "ta of forcing_demo" in conv.note
    same, plain = le_units.convert_field(le, "fluxes_demo", "le", "W m-2", agg="day", date=DAY)
    assert same is le and plain.units == "W m-2" and plain.note == ""
    h = data.field("fluxes_demo", "h", 0, "day", DAY)
    assert le_units.convert_field(h, "fluxes_demo", "h", "mm d-1", agg="day", date=DAY)[0] is h


def test_field_outside_the_temperature_grid_uses_20_degrees(demo):
    le = data.field("fluxes_demo", "le", 0, "day", DAY).isel(lat=slice(40, 42), lon=slice(90, 92))
    far = le.assign_coords(lon=le["lon"] + 400.0)  # no forcing cell within half a cell
    out, _ = le_units.convert_field(far, "fluxes_demo", "le", "mm d-1", agg="day", date=DAY)
    np.testing.assert_allclose(out.values, _hand(far.values, 20.0), rtol=1e-6)


def test_pixel_series_and_export(demo):
    lon, lat = 10.0, 45.0
    le = data.point_series("fluxes_demo", lon, lat, variables=["le"])["le"]
    ta = data.point_series("forcing_demo", lon, lat, variables=["ta"])["ta"]
    out, conv, temps = le_units.convert_series(le, "fluxes_demo", "le", "mm d-1", point=(lon, lat))
    np.testing.assert_allclose(temps, ta.values, rtol=1e-6)
    np.testing.assert_allclose(out.values, _hand(le.values, ta.values), rtol=1e-5)

    ds = data.open_level("fluxes_demo", 0)[["le"]].sel(lat=slice(50, 40), lon=slice(0, 20))
    ds = ds.sel(time=slice("2018-07-01", "2018-07-03"))
    sub, note = le_units.convert_dataset(ds, "fluxes_demo", 0, "mm d-1")
    forcing = data.open_level("forcing_demo", 0)["ta"].sel(lat=ds.lat, lon=ds.lon, time=ds.time)
    np.testing.assert_allclose(sub["le"].values, _hand(ds["le"].values, forcing.values), rtol=1e-5)
    assert sub["le"].attrs["units"] == "mm d-1" and "forcing_demo" in note
    assert isinstance(sub, xr.Dataset) and le_units.convert_dataset(ds, "fluxes_demo", 0, "W m-2")[0] is ds
