"""Sphere and grid geometry of catalog.geo against values worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

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
