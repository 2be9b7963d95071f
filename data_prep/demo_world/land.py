"""The land mask: Natural Earth 1:110m country polygons shipped with ``pyogrio`` (lakes from the
Natural Earth file shipped with ``cartopy`` when present) rasterised at cell centres, or an analytic
set of continents when the shapefile is not installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def natural_earth_paths() -> tuple[Path | None, Path | None]:
    land = lakes = None
    try:
        import pyogrio

        p = Path(pyogrio.__file__).parent / "tests/fixtures/naturalearth_lowres/naturalearth_lowres.shp"
        land = p if p.exists() else None
    except ImportError:
        pass
    try:
        import cartopy

        p = Path(cartopy.__file__).parent / "tests/lakes_shapefile/ne_110m_lakes.shp"
        lakes = p if p.exists() else None
    except ImportError:
        pass
    return land, lakes


def _read_polygons(path: Path) -> list:
    import pyogrio.raw
    import shapely

    _, _, geometry, _ = pyogrio.raw.read(path)
    return [g for g in shapely.from_wkb(geometry) if g is not None and not g.is_empty]


def _analytic_land(lat2d: np.ndarray, lon2d: np.ndarray) -> np.ndarray:
    """Fallback continents: union of ellipses (lon0, lat0, half-width, half-height, tilt deg)."""
    blobs = [
        (-100, 48, 28, 17, -10),
        (-60, -15, 14, 22, 20),
        (-68, -40, 5, 14, 0),
        (18, 8, 20, 22, 0),
        (45, 2, 8, 12, 0),
        (20, 50, 25, 12, 0),
        (90, 55, 55, 15, 0),
        (95, 28, 25, 12, 0),
        (78, 20, 8, 10, 0),
        (45, 25, 10, 8, -20),
        (134, -25, 17, 10, 0),
        (-42, 73, 12, 9, 0),
        (0, -82, 180, 12, 0),
    ]
    land = np.zeros(lat2d.shape, dtype=bool)
    for lon0, lat0, a, b, tilt in blobs:
        t = np.deg2rad(tilt)
        dx, dy = lon2d - lon0, lat2d - lat0
        u, v = dx * np.cos(t) + dy * np.sin(t), -dx * np.sin(t) + dy * np.cos(t)
        land |= (u / a) ** 2 + (v / b) ** 2 <= 1
    return land


def land_mask(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Boolean land mask (lat, lon) of a regular grid, sampled at cell centres."""
    import rasterio.features
    from rasterio.transform import Affine

    res_lat, res_lon = abs(lat[0] - lat[1]), lon[1] - lon[0]
    land_path, lakes_path = natural_earth_paths()
    if land_path is None:
        lon2d, lat2d = np.meshgrid(lon, lat)
        return _analytic_land(lat2d, lon2d)
    transform = Affine(res_lon, 0.0, lon[0] - res_lon / 2, 0.0, -res_lat, lat[0] + res_lat / 2)
    shape = (lat.size, lon.size)
    land = rasterio.features.rasterize(
        [(g, 1) for g in _read_polygons(land_path)], out_shape=shape, transform=transform, dtype="uint8"
    ).astype(bool)
    if lakes_path is not None:
        lakes = rasterio.features.rasterize(
            [(g, 1) for g in _read_polygons(lakes_path)], out_shape=shape, transform=transform, dtype="uint8"
        ).astype(bool)
        land &= ~lakes
    return land
