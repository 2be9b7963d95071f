"""Sphere and grid geometry of catalog.geo against values worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from catalog import geo


def test_one_degree_of_latitude_is_111_19_km():
    assert geo.haversine_km(10.0, 0.0, 10.0, 1.0) == pytest.approx(111.195, abs=1e-3)
    assert geo.haversine_km(10.0, 0.0, 10.0, 1.0) == pytest.approx(2 * math.pi * geo.EARTH_RADIUS_KM / 360)
    # a degree of longitude shrinks with cos(latitude); at 60 degrees it is about half
    assert geo.haversine_km(0.0, 60.0, 1.0, 60.0) == pytest.approx(55.6, abs=0.05)


def test_great_circle_reference_values():
    assert geo.haversine_km(0, 0, 1, 0) == pytest.approx(111.195, rel=1e-4)
    assert geo.haversine_km(-155.5, 19.5, -155.5, 19.5) == 0
    assert geo.haversine_km(179.9, 0, -179.9, 0) == pytest.approx(22.24, rel=1e-3)


def test_antipodes_and_quarter_circle():
    # half the circumference; the clip of a to [0, 1] keeps rounding from giving NaN
    assert geo.haversine_km(0.0, 0.0, 180.0, 0.0) == pytest.approx(math.pi * geo.EARTH_RADIUS_KM)
    assert geo.haversine_km(30.0, 45.0, -150.0, -45.0) == pytest.approx(math.pi * geo.EARTH_RADIUS_KM)
    assert geo.haversine_km(0.0, 0.0, 0.0, 90.0) == pytest.approx(math.pi / 2 * geo.EARTH_RADIUS_KM)


def test_haversine_broadcasts_and_is_symmetric():
    lons, lats = np.array([0.0, 1.0, 2.0]), np.zeros(3)
    d = geo.haversine_km(lons, lats, 1.0, 0.0)
    assert d.shape == (3,)
    assert d[1] == 0 and d[0] == pytest.approx(d[2])
    assert geo.haversine_km(5.0, 50.0, 6.0, 51.0) == pytest.approx(geo.haversine_km(6.0, 51.0, 5.0, 50.0))


def test_cos_lat_weights():
    np.testing.assert_allclose(
        geo.cos_lat_weights([0.0, 60.0, -60.0, 90.0]), [1.0, 0.5, 0.5, 0.0], atol=1e-15
    )


def _field(values) -> xr.DataArray:
    """Rows at 60 N (w = 0.5) and at the equator (w = 1), two columns."""
    coords = {"lat": [60.0, 0.0], "lon": [10.0, 11.0]}
    return xr.DataArray(np.asarray(values, dtype="float64"), dims=("lat", "lon"), coords=coords)


def test_cos_lat_mean_weights_rows_and_skips_missing_cells():
    # rows at 60 N (w = 0.5) and the equator (w = 1): (0.5 * 2 * 3 + 1 * 2 * 6) / (0.5 * 2 + 1 * 2) = 5
    assert float(geo.cos_lat_mean(_field([[3.0, 3.0], [6.0, 6.0]]))) == pytest.approx(5.0)
    # a missing cell leaves both the sum and the weights: (0.5 * 3 + 1 * 2 * 6) / (0.5 + 2) = 5.4
    assert float(geo.cos_lat_mean(_field([[3.0, np.nan], [6.0, 6.0]]))) == pytest.approx(5.4)
    assert np.isnan(float(geo.cos_lat_mean(_field(np.full((2, 2), np.nan)))))


def test_cos_lat_mean_keeps_other_dimensions():
    cube = xr.concat([_field([[3.0, 3.0], [6.0, 6.0]]), _field([[1.0, 1.0], [1.0, 1.0]])], dim="time")
    out = geo.cos_lat_mean(cube)
    assert out.dims == ("time",)
    np.testing.assert_allclose(out.values, [5.0, 1.0])
