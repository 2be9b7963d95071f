"""Geometry on the sphere and on regular lat-lon grids, written once for every package."""

from __future__ import annotations

import numpy as np
import xarray as xr

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
