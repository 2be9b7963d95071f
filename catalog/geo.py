"""Geometry on the sphere and on regular lat-lon grids, written once for every package."""

from __future__ import annotations

import numpy as np
import xarray as xr

from catalog.errors import InputError

EARTH_RADIUS_KM = 6371.0088  # IUGG mean Earth radius (see haversine_km)


def haversine_km(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Great-circle distance in km between points given in degrees (arrays broadcast).

    Haversine formula (Sinnott 1984, Sky and Telescope 68(2):159):
    a = sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2), d = 2 R asin(√a), with ``a`` clipped to [0, 1]
    against rounding. R = :data:`EARTH_RADIUS_KM` = 6371.0088 km, the IUGG mean Earth radius
    R1 = (2a + b) / 3 of the GRS80 ellipsoid (Moritz 1980, Bulletin Géodésique 54:395).
    """
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(v, dtype="float64")) for v in (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def cos_lat_weights(lat) -> np.ndarray:
    """Area weights of the cells of a regular lat-lon grid: w = cos(latitude of the cell centre).

    A cell of Δφ × Δλ has area R² Δλ (sin φ_n − sin φ_s) = R² Δλ 2 cos φ sin(Δφ/2), proportional to
    cos φ for equal Δφ (e.g. Snyder 1987, Map Projections — A Working Manual, USGS PP 1395).
    """
    return np.cos(np.deg2rad(np.asarray(lat, dtype="float64")))


def cos_lat_mean(obj, dims=("lat", "lon")):
    """Area-weighted mean of the valid cells of an xarray object over ``dims``:
    Σ w·x / Σ w over the cells where x is valid, w = :func:`cos_lat_weights` (NaN where none is valid).
    Lazy for dask-backed input; other dimensions (e.g. ``time``) are kept."""
    lat = obj["lat"].values
    w = xr.DataArray(cos_lat_weights(lat), dims="lat", coords={"lat": lat})
    return obj.weighted(w).mean(dims, skipna=True)


def nearest_index(centres, values, half_cell: float | None = None) -> np.ndarray:
    """Position in ``centres`` (the cell centres along one coordinate, any order) of the centre
    nearest to each of ``values``: argmin_i |values - centres[i]|, a value midway between two centres
    taking the first in ``centres``' order (as :func:`numpy.argmin`). -1 for a value that is not
    finite and, with ``half_cell``, beyond half a cell of every centre (|Δ| > half_cell, edges included
    with a relative slack of 1e-6 for rounding). O((n + m) log n) by :func:`numpy.searchsorted`.
    """
    c = np.asarray(centres, dtype="float64").ravel()
    x = np.asarray(values, dtype="float64")
    if c.size == 0:
        return np.full(x.shape, -1, dtype=np.intp)
    order = np.argsort(c, kind="stable")
    k = np.searchsorted(c[order], x)
    below, above = order[np.clip(k - 1, 0, c.size - 1)], order[np.clip(k, 0, c.size - 1)]
    d_below, d_above = np.abs(x - c[below]), np.abs(x - c[above])
    pick_above = (d_above < d_below) | ((d_above == d_below) & (above < below))
    index = np.where(pick_above, above, below)
    missing = ~np.isfinite(x)
    if half_cell is not None:
        missing |= np.minimum(d_below, d_above) > half_cell * (1 + 1e-6)
    return np.where(missing, -1, index).astype(np.intp)


def nearest_point(lons, lats, lon: float, lat: float) -> tuple[int, float]:
    """Index of the point of a point set (``lons``, ``lats``, degrees) nearest to (lon, lat) by
    :func:`haversine_km`, and that distance in km; points with missing coordinates are skipped.
    InputError when no point has coordinates."""
    d = np.atleast_1d(haversine_km(lons, lats, lon, lat))
    if not np.isfinite(d).any():
        raise InputError("the product has no locations with coordinates")
    i = int(np.nanargmin(d))
    return i, float(d[i])
