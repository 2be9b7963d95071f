"""app.data on the small demo world, checked against the pyramid stores read directly with xarray."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from app import data
from catalog.errors import InputError
from tests.stores import level_path


@pytest.fixture
def demo(demo_world, monkeypatch):
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(demo_world))
    data.view_data().forget_products()
    return demo_world


def _level0(demo_world, name):
    return xr.open_zarr(level_path(demo_world, name), consolidated=False)


def test_field_reads_only_the_visible_window(demo):
    x_range, y_range = (-97.5, -97.0), (37.0, 37.3)
    f = data.field("gssm1km_demo", "ssm", 0, "day", "2018-07-05", None, x_range, y_range)
    # window = cells intersecting the view plus one cell of padding (0.01° grid)
    assert f.sizes["lon"] <= 50 + 3 and f.sizes["lat"] <= 30 + 3
    ref = _level0(demo, "gssm1km_demo")["ssm"].sel(time="2018-07-05").sel(lon=f.lon, lat=f.lat)
    # stored as uint16 x 0.001, which xarray decodes to float64; FluxLens serves float32
    np.testing.assert_array_equal(f.values, ref.values.astype(np.float32))


def test_month_mean_matches_direct_mean(demo):
    f = data.field("ssm_global_demo", "ssm", 0, "month", "2018-06-15", None)
    raw = _level0(demo, "ssm_global_demo")["ssm"]
    times = pd.DatetimeIndex(raw.time.values)
    sel = raw.values[(times.month == 6)].astype("float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN ocean cells
        expect = np.nanmean(sel, axis=0)
    assert np.isfinite(expect).sum() > 100
    np.testing.assert_allclose(f.values, expect, rtol=1e-5, equal_nan=True)


def test_map_image_uses_the_catalog_level_and_screen_size(demo):
    img, level = data.map_image(
        "ssm_global_demo", "ssm", "day", "2018-07-01", None, (-180, 180), (-90, 90), 360, 180
    )
    assert img.shape == (180, 360) and level == 0
    # the demo grid is 2°: a 1° screen pixel repeats the value of its 2° cell
    raw = _level0(demo, "ssm_global_demo")["ssm"].sel(time="2018-07-01")
    for lon, lat in [(-97.5, 38.5), (20.5, 10.5), (120.5, -25.5)]:
        cell = float(raw.sel(lat=lat, lon=lon, method="nearest"))  # the 2° cell holding the point
        got = float(img.sel(lat=lat, lon=lon, method="nearest"))
        assert (np.isnan(cell) and np.isnan(got)) or got == pytest.approx(cell, rel=1e-6), (lon, lat)


def test_export_region_bounds(demo):
    ds = data.export_region("ssm_global_demo", ["ssm"], (-100, 30, -90, 40), "2018-07-01", "2018-07-03", 0)
    assert ds.sizes["time"] == 3 and float(ds.lon.min()) > -100 and float(ds.lat.max()) < 40
    with pytest.raises(InputError, match="no data"):
        data.export_region("gssm1km_demo", ["ssm"], (10, 10, 20, 20), "2018-07-01", "2018-07-03", 0)
    with pytest.raises(InputError, match="exceed the limit"):
        monkey = data.EXPORT_MAX_VALUES
        try:
            data.EXPORT_MAX_VALUES = 10
            data.export_region("ssm_global_demo", ["ssm"], (-100, 30, -90, 40), "2018-07-01", "2018-07-03", 0)
        finally:
            data.EXPORT_MAX_VALUES = monkey


def test_unknown_variable_is_an_input_error(demo):
    with pytest.raises(InputError, match="no variable 'le'"):
        data.variable_array("ssm_global_demo", "le", 0)
