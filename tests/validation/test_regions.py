"""Polygon and named-region means against an independent area-weighted computation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr

from catalog.errors import InputError
from validation import regions

STAR = {
    "type": "Feature",
    "properties": {"name": "upload"},
    "geometry": {
        "type": "Polygon",
        "coordinates": [
            [
                [-100.3, 35.2],
                [-93.1, 37.9],
                [-85.4, 34.6],
                [-90.2, 41.7],
                [-87.9, 47.3],
                [-94.6, 44.1],
                [-101.8, 46.6],
                [-97.7, 40.8],
                [-100.3, 35.2],
            ]
        ],
    },
}


def _product(lat, lon, rng):
    times = pd.date_range("2018-07-01", periods=3, freq="D")
    lat2, lon2 = np.meshgrid(lat, lon, indexing="ij")
    values = np.stack([np.sin(np.deg2rad(lat2) * 4) * 20 + lon2 / 10 + k for k in range(3)])
    values[:, rng.random(lat2.shape) < 0.1] = np.nan  # missing cells, the same every day
    values[1, rng.random(lat2.shape) < 0.1] = np.nan  # and some on one day only
    return xr.DataArray(values, dims=("time", "lat", "lon"), coords={"time": times, "lat": lat, "lon": lon})


def _supersampled_mean(da: xr.DataArray, polygon, k: int = 40) -> np.ndarray:
    """Each cell split into k x k sub-cells; a sub-cell counts, with its own spherical area
    Δλ (sin φ_n − sin φ_s), when its centre lies inside the polygon (shapely point tests)."""
    lat, lon = da["lat"].values, da["lon"].values
    dlat, dlon = abs(lat[1] - lat[0]), abs(lon[1] - lon[0])
    sub = (np.arange(k) + 0.5) / k - 0.5
    weights = np.zeros((lat.size, lon.size))
    for i, phi in enumerate(lat):
        sub_lat = phi + sub * dlat
        area = np.sin(np.deg2rad(sub_lat + dlat / (2 * k))) - np.sin(np.deg2rad(sub_lat - dlat / (2 * k)))
        for j, lam in enumerate(lon):
            x, y = np.meshgrid(lam + sub * dlon, sub_lat)
            inside = shapely.contains_xy(polygon, x, y)
            weights[i, j] = (inside * area[:, None]).sum()
    values = da.values
    valid = np.isfinite(values)
    return np.nansum(values * weights, axis=(1, 2)) / (valid * weights).sum(axis=(1, 2))


def test_polygon_mean_equals_an_independent_area_weighted_mean():
    rng = np.random.default_rng(8)
    lat, lon = np.arange(49.75, 32.0, -0.5), np.arange(-104.75, -82.0, 0.5)
    da = _product(lat, lon, rng)
    polygon = regions.read_geojson(json.dumps(STAR))
    got = regions.polygon_mean(da, polygon)
    want = _supersampled_mean(da, polygon)
    np.testing.assert_allclose(got.values, want, rtol=2e-4)
    # not the bounding box's mean, nor the mean of the cells whose centre lies inside
    box = da.sel(lat=(da.lat > 34.6) & (da.lat < 47.3), lon=(da.lon > -101.8) & (da.lon < -85.4))
    assert abs(float(got[0]) - float(box[0].mean())) > 100 * abs(float(got[0]) - want[0])


def test_cell_fractions_by_hand():
    lat, lon = np.array([1.5, 0.5]), np.array([10.5, 11.5, 12.5])
    square = shapely.box(11.0, 0.0, 11.5, 2.0)  # half of the middle column's cells in longitude
    f = regions.cell_fractions(square, lat, lon)
    np.testing.assert_allclose(f.values, [[0, 0.5, 0], [0, 0.5, 0]], atol=1e-12)
    low = shapely.box(10.0, 0.0, 13.0, 1.25)  # the lower row and a quarter of the upper row by latitude
    f = regions.cell_fractions(low, lat, lon)
    upper = (np.sin(np.deg2rad(1.25)) - np.sin(np.deg2rad(1.0))) / (
        np.sin(np.deg2rad(2)) - np.sin(np.deg2rad(1))
    )
    np.testing.assert_allclose(f.values[1], 1.0, atol=1e-12)
    np.testing.assert_allclose(f.values[0], upper, rtol=1e-9)
    w = regions.cell_weights(low, lat, lon)
    np.testing.assert_allclose(w.values[1], np.deg2rad(1.0) * np.sin(np.deg2rad(1.0)), rtol=1e-9)


def test_named_regions():
    names = regions.region_names()
    assert {"Africa", "Europe", "South America", "Oceania"} <= set(names["continent"])
    assert "Australia" in names["country"] and len(names["country"]) > 170
    assert regions.region("aus").equals(regions.region("Australia"))
    lat, lon = np.arange(-9.75, -45.0, -0.5), np.arange(112.25, 155.0, 0.5)
    rng = np.random.default_rng(9)
    da = _product(lat, lon, rng)
    got = regions.region_mean(da, "Australia")
    want = _supersampled_mean(da, regions.region("Australia"), k=12)
    np.testing.assert_allclose(got.values, want, rtol=1e-3)
    const = xr.full_like(da, 0.3)
    np.testing.assert_allclose(regions.region_mean(const, "Oceania").values, 0.3)
    with pytest.raises(InputError, match="no country or continent named 'Atlantis'"):
        regions.region("Atlantis")
    with pytest.raises(InputError, match="covers no cell"):
        regions.region_mean(da, "France")


def test_bad_uploads():
    with pytest.raises(InputError, match="not GeoJSON"):
        regions.read_geojson("{not json")
    with pytest.raises(InputError, match="'Point' is not a Polygon"):
        regions.read_geojson({"type": "Point", "coordinates": [0, 0]})
    with pytest.raises(InputError, match="no polygon"):
        regions.read_geojson({"type": "FeatureCollection", "features": []})
    with pytest.raises(InputError, match="outside lon"):
        regions.read_geojson({"type": "Polygon", "coordinates": [[[170, 0], [190, 0], [190, 5], [170, 0]]]})
    with pytest.raises(InputError, match="enclose no area"):
        regions.read_geojson({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [2, 2], [0, 0]]]})
    with pytest.raises(InputError, match="cannot be read"):
        regions.read_geojson({"type": "Polygon", "coordinates": [[[0, 0], [1]]]})
