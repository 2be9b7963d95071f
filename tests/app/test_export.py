"""Exports produce files that independent readers (PIL, h5py, csv, xarray on the stores) parse back to
the same content; region exports honour the box and level, refuse bad or oversized requests, and
carry source names and checksums, never server paths."""

from __future__ import annotations

import csv
import io

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image

from app import dashboard, data, export, map_panel
from app.state import AppState
from catalog import api, store
from catalog.errors import InputError
from tests.stores import level_path


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


# -- region + period as netCDF ------------------------------------------------------------------

SECRET = "/srv/secret-raw/gssm"


def _wide(times) -> xr.Dataset:
    """2048 × 16 px at 0.01° (two pyramid levels), values depending on lon, lat and day."""
    lon = np.round(np.arange(-10.235, 10.24, 0.01), 3)[:2048]
    lat = np.round(np.arange(40.075, 39.9, -0.01), 3)[:16]
    day = np.arange(len(times))[:, None, None]
    ssm = (0.1 + 0.01 * day + 0.001 * np.arange(16)[None, :, None] + 0 * lon).astype("float32")
    ssm[:, 0, 0] = np.nan
    ds = xr.Dataset(
        {"ssm": (("time", "lat", "lon"), ssm, {"units": "m3 m-3", "long_name": "surface soil moisture"})},
        coords={"time": times, "lat": lat, "lon": lon},
        attrs={"source_files": f"{SECRET}/a.tif", "source": "GSSM1km GeoTIFF"},
    )
    return ds


@pytest.fixture
def wide(data_dir):
    store.write_product(
        _wide(pd.date_range("2018-07-01", periods=4)),
        "wide",
        provenance={
            "description": f"test cube read from {SECRET}",
            "sources": [
                {"path": f"{SECRET}/a.tif", "size": 10, "sha256": "a" * 64},
                {"path": f"{SECRET}/b.tif", "size": 10, "sha256": "b" * 64},
            ],
            "reader": "test",
        },
        synthetic=True,
    )
    store.write_product(
        _wide(pd.date_range("2018-07-05", periods=2)),
        "wide",
        provenance={"sources": [{"path": f"{SECRET}/c.tif", "size": 10, "sha256": "c" * 64}]},
        synthetic=True,
        mode="append",
    )
    data.view_data().forget_products()
    return api.product_info("wide")


def _plan(info, bbox, level=0, start="2018-07-02", end="2018-07-04", region="selected box"):
    ds = data.open_level(info.name, level)
    return export.plan_region_export(info, ds, ["ssm"], bbox, start, end, level, region=region)


@pytest.mark.parametrize(
    ("bbox", "reason"),
    [
        ((5, 40, -5, 39.95), "reversed"),
        ((-5, 40, 5, 39.95), "reversed"),
        ((1, 39.95, 1, 40), "empty"),
        ((float("nan"), 39.9, 1, 40), "non-finite"),
        (None, "no box"),
        (("a", 1, 2, 3), "not four numbers"),
    ],
)
def test_bad_boxes_are_refused(bbox, reason):
    with pytest.raises(InputError, match=reason):
        export.check_box(bbox)


def test_export_of_a_box_is_native_and_matches_the_store(wide, tmp_path, data_dir):
    assert [lev["level"] for lev in wide.levels] == [0, 1]
    body, plan = export.region_netcdf(
        wide,
        data.open_level("wide", 0),
        ["ssm"],
        (-1.0, 39.95, 1.5, 40.2),
        "2018-07-02",
        "2018-07-04",
        0,
        region="selected box",
    )
    assert (plan.n_time, plan.n_lat, plan.n_lon, plan.resolution) == (3, 13, 250, 0.01)
    path = tmp_path / "box.nc"
    path.write_bytes(body)
    out = xr.open_dataset(path)
    ref = xr.open_zarr(level_path(data_dir, "wide", 0), consolidated=False)["ssm"]
    ref = ref.sel(lon=slice(-1.0, 1.5), lat=slice(40.2, 39.95), time=slice("2018-07-02", "2018-07-04"))
    assert out["ssm"].shape == ref.shape == (3, 13, 250)
    np.testing.assert_array_equal(out["ssm"].values, ref.values)
    assert out.lon.min() > -1.0 and out.lon.max() < 1.5 and out.lat.min() > 39.95
    assert out.attrs["pyramid_level"] == 0 and out.attrs["native_resolution"] == 1
    assert list(out.attrs["bbox_wsen"]) == [-1.0, 39.95, 1.5, 40.2]
    assert out.attrs["bbox_source"] == "selected box" and out.attrs["period"] == "2018-07-02/2018-07-04"
    # provenance: file names and checksums (the append's too), never a server path
    assert out.attrs["source_files"] == "a.tif,b.tif,c.tif"
    assert out.attrs["source_sha256"] == ",".join(c * 64 for c in "abc")
    everything = repr(dict(out.attrs)) + repr({v: dict(out[v].attrs) for v in out.variables})
    assert "/srv" not in everything and str(data_dir) not in everything and "secret-raw" not in everything
    assert "test cube read from gssm" in out.attrs["provenance"]


def test_coarser_level_on_request(wide, tmp_path):
    body, plan = export.region_netcdf(
        wide,
        data.open_level("wide", 1),
        ["ssm"],
        (-1.0, 39.95, 1.5, 40.2),
        "2018-07-02",
        "2018-07-04",
        1,
        region="selected box",
    )
    path = tmp_path / "coarse.nc"
    path.write_bytes(body)
    out = xr.open_dataset(path)
    assert plan.resolution == pytest.approx(0.02) and out.attrs["pyramid_level"] == 1
    assert out.attrs["native_resolution"] == 0
    assert float(out.lon[1] - out.lon[0]) == pytest.approx(0.02)


def test_too_large_exports_are_refused_with_their_size(wide, monkeypatch):
    _, plan = _plan(wide, (-10.24, 39.9, 10.24, 40.1))
    assert plan.n_bytes == 3 * 16 * 2048 * 4
    monkeypatch.setattr(export, "EXPORT_MAX_BYTES", plan.n_bytes - 1)
    with pytest.raises(InputError) as err:
        _plan(wide, (-10.24, 39.9, 10.24, 40.1))
    msg = str(err.value)
    assert "export too large" in msg and "2,048 × 16 px × 3 time step(s)" in msg and "384.0 KiB" in msg
    assert "pick level 1 (0.02°, about 96.0 KiB)" in msg
    _, coarse = _plan(wide, (-10.24, 39.9, 10.24, 40.1), level=1)  # the advice holds
    assert coarse.n_bytes <= export.EXPORT_MAX_BYTES


def test_box_or_period_outside_the_product(wide):
    with pytest.raises(InputError, match="does not overlap wide"):
        _plan(wide, (20, 10, 30, 20))
    with pytest.raises(InputError, match="no time step between 2019-01-01 and 2019-01-02"):
        _plan(wide, (-1, 39.9, 1, 40.1), start="2019-01-01", end="2019-01-02")


def test_map_tab_exports_the_drawn_box_else_the_view(wide, tmp_path):
    dashboard._load_extensions()
    state = AppState(product="wide", variable="ssm", x_range=(-2.0, 2.0), y_range=(39.0, 41.0))
    tab = map_panel.MapTab(state)
    assert tab.nc_level.value == 0 and list(tab.nc_level.options.values()) == [0, 1]
    assert "visible region" in tab.nc_info.object and not tab.netcdf.disabled

    def exported():
        path = tmp_path / f"tab{len(list(tmp_path.glob('*.nc')))}.nc"
        path.write_bytes(tab._netcdf().getvalue())
        return xr.open_dataset(path)

    view = exported()
    assert view.attrs["bbox_source"] == "visible region" and view.sizes["lon"] == 400
    state.box = (0.5, 39.95, 1.0, 40.05)
    assert "selected box" in tab.nc_info.object
    box = exported()
    assert box.attrs["bbox_source"] == "selected box" and box.sizes["lon"] == 50
    assert list(box.attrs["bbox_wsen"]) == [0.5, 39.95, 1.0, 40.05]
    assert tab.netcdf.filename == "wide_ssm_20180701_20180701_L0.nc"
    tab.nc_level.value = 1
    assert exported().sizes["lon"] == 25

    state.box = (1.0, 40.05, 0.5, 39.95)  # reversed: refused, the button is off
    assert "reversed" in tab.nc_info.object and tab.netcdf.disabled
    assert tab._netcdf().getvalue() == b"" and "reversed" in state.message
