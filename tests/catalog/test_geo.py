"""Sphere and grid geometry of catalog.geo against values worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from catalog import geo
from catalog.errors import InputError


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


def test_nearest_index_within_half_a_source_cell():
    src = np.array([0.0, 0.25, 0.5])
    got = geo.nearest_index(src, [0.1, 0.13, 0.62, 0.75, -0.125, 0.5], 0.125)
    assert got.tolist() == [0, 1, 2, -1, 0, 2]  # 0.75 is outside; -0.125 lies on the edge: inside
    lat = np.array([60.0, 59.75, 59.5])  # descending, as products store lat
    assert geo.nearest_index(lat, [59.8, 59.3, 59.4], 0.125).tolist() == [1, -1, 2]


def test_nearest_index_ties_take_the_first_centre_as_argmin():
    lon = np.array([0.0, 1.0, 2.0])  # ascending: a midway value takes the western centre
    assert geo.nearest_index(lon, [0.5, 1.5]).tolist() == [0, 1]
    lat = lon[::-1]  # descending: the northern one, still the first in the coordinate's order
    assert geo.nearest_index(lat, [0.5, 1.5]).tolist() == [1, 0]
    for c in (lon, lat, np.linspace(-179.75, 179.75, 720)):
        x = np.r_[(c[1:] + c[:-1]) / 2, c, np.linspace(c.min() - 1, c.max() + 1, 997)]
        np.testing.assert_array_equal(geo.nearest_index(c, x), np.abs(c[None, :] - x[:, None]).argmin(axis=1))


def test_nearest_index_missing_values_and_scalars():
    assert geo.nearest_index([0.0, 1.0], [np.nan, 0.9]).tolist() == [-1, 1]
    assert int(geo.nearest_index([0.0, 1.0], 5.0)) == 1  # no half_cell: any distance
    assert int(geo.nearest_index([0.0, 1.0], 5.0, 0.5)) == -1
    assert geo.nearest_index([], [1.0]).tolist() == [-1]


def test_nearest_point():
    i, d = geo.nearest_point([0.0, 1.0, 2.0], [0.0, 0.0, 0.0], 1.1, 0.0)
    assert i == 1
    assert d == pytest.approx(geo.haversine_km(1.0, 0.0, 1.1, 0.0))


def test_nearest_point_skips_locations_without_coordinates():
    i, d = geo.nearest_point([np.nan, 5.0, 1.0], [np.nan, 0.0, 0.0], 1.1, 0.0)
    assert i == 2 and d == pytest.approx(geo.haversine_km(1.0, 0.0, 1.1, 0.0))
    with pytest.raises(InputError, match="no locations"):
        geo.nearest_point([], [], 0.0, 0.0)
