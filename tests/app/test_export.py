"""Exports produce files that independent readers (PIL, h5py, csv) parse back to the same content."""

from __future__ import annotations

import csv
import io

import h5py
import numpy as np
import pandas as pd
import xarray as xr
from PIL import Image

from app import export


def _image():
    lat = np.linspace(49.75, 30.25, 40)
    lon = np.linspace(-104.75, -85.25, 40)
    values = np.add.outer(lat, lon / 10).astype("float32")
    values[:5, :5] = np.nan
    return xr.DataArray(values, coords={"lat": lat, "lon": lon}, dims=("lat", "lon"))


def test_map_png_is_a_png_image():
    png = export.map_png(_image(), clim=(0, 50), cmap="viridis", title="t", label="ssm (m3 m-3)")
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.size[0] > 400 and img.size[1] > 200
    assert len(img.convert("RGB").getcolors(maxcolors=1_000_000)) > 50


def test_netcdf_round_trip(tmp_path):
    times = pd.date_range("2018-07-01", periods=2)
    ds = xr.Dataset(
        {"ssm": (("time", "lat", "lon"), np.stack([_image().values] * 2), {"units": "m3 m-3"})},
        coords={"time": times, "lat": _image().lat.values, "lon": _image().lon.values},
    )
    path = tmp_path / "x.nc"
    path.write_bytes(export.netcdf_bytes(ds))
    with h5py.File(path) as f:
        assert f["ssm"].attrs["units"] in (b"m3 m-3", "m3 m-3")
        np.testing.assert_array_equal(f["ssm"][1, 10, 12], ds["ssm"].values[1, 10, 12])
        assert np.isnan(f["ssm"][0, 0, 0])


def test_csv_columns_and_values():
    table = pd.DataFrame(
        {
            "time": pd.date_range("2018-07-01", periods=2),
            "product": "p",
            "variable": "ssm",
            "value": [0.1, np.nan],
            "units": "m3 m-3",
            "lon": -97.5,
            "lat": 38.5,
        }
    )
    rows = list(csv.DictReader(io.StringIO(export.csv_bytes(table).decode())))
    assert rows[0] == {
        "time": "2018-07-01",
        "product": "p",
        "variable": "ssm",
        "value": "0.1",
        "units": "m3 m-3",
        "lon": "-97.5",
        "lat": "38.5",
    }
    assert rows[1]["value"] == ""
