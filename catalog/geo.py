"""Geometry on the sphere and on regular lat-lon grids, written once for every package."""

from __future__ import annotations

import numpy as np

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
