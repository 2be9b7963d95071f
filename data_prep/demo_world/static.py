"""Static fields on the 0.5° reference grid: elevation (mountain ridges), climate normals (annual
temperature, seasonal amplitude, precipitation, aridity), IGBP land cover, soil water limits and
windiness; sampled at any cell or point."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.ndimage as ndi

from data_prep.demo_world.grid import grid_centres
from data_prep.demo_world.land import land_mask
from data_prep.demo_world.noise import grid_noise

REFERENCE_RES = 0.5

# Mountain ridges: polyline (lon, lat) vertices, crest height (m), e-folding half-width (deg).
_RIDGES = [
    ([(-150, 62), (-135, 60), (-123, 53), (-115, 47), (-108, 40), (-106, 33), (-104, 26)], 2600, 5.5),
    ([(-122, 48), (-120, 40), (-117, 34)], 1500, 1.5),
    ([(-105, 25), (-99, 19), (-94, 17)], 2000, 2.0),
    ([(-78, 8), (-75, -5), (-70, -17), (-69, -30), (-71, -42), (-73, -52)], 4000, 2.5),
    ([(-84, 34), (-78, 39), (-72, 44)], 700, 2.5),
    ([(-48, -20), (-42, -12)], 800, 4.0),
    ([(-8, 32), (2, 35)], 1500, 2.0),
    ([(6, 46), (14, 47)], 2000, 1.0),
    ([(6, 60), (16, 67)], 1000, 2.0),
    ([(59, 50), (60, 68)], 700, 1.5),
    ([(40, 40), (50, 38), (60, 33)], 1800, 3.0),
    ([(38, 10), (36, -4), (34, -12)], 2000, 3.0),
    ([(18, -28), (30, -22)], 1300, 5.0),
    ([(70, 36), (80, 33), (90, 32), (100, 33)], 4800, 4.0),
    ([(75, 41), (90, 43), (100, 45), (115, 46)], 1600, 4.0),
    ([(145, -38), (150, -30), (146, -18)], 800, 2.0),
    ([(-42, 64), (-40, 72), (-38, 80)], 2800, 6.0),
]
_ANTARCTIC_PLATEAU_M = 2800.0

# Zonal climate tables (|latitude| in degrees).
_ZONAL_LAT = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]
_ZONAL_T = [27.0, 27.0, 26.0, 22.5, 16.5, 9.5, 2.0, -6.5, -15.0, -22.0]  # degC at sea level
_AMP_LAT = [0, 10, 20, 30, 40, 50, 60, 70, 90]
_AMP_T = [1.0, 2.0, 5.0, 8.5, 12.0, 15.0, 18.0, 19.5, 20.0]  # K, half the seasonal range
_PRECIP_LAT = [0, 8, 15, 22, 30, 40, 50, 60, 70, 90]
_PRECIP = [6.5, 5.5, 2.2, 0.4, 1.4, 3.0, 2.6, 1.6, 0.8, 0.3]  # mm d-1 at the coast
_INLAND_KM_LAT = [0, 10, 18, 30, 45, 90]
_INLAND_KM = [6000, 4000, 1300, 1300, 2600, 2600]
# Regional precipitation factors (lon, lat, radius deg, factor): monsoons and dry interiors.
_MOISTURE_ANOMALIES = [
    (112, 28, 10, 3.0),
    (80, 22, 9, 2.2),
    (-84, 33, 8, 1.8),
    (-2, 52, 7, 1.6),
    (65, 45, 12, 0.35),
    (45, 30, 10, 0.4),
    (-115, 38, 7, 0.6),
]


def _polyline_distance(lat2d, lon2d, vertices) -> np.ndarray:
    """Distance (deg, longitude scaled by cos lat) from points to a polyline."""
    coslat = np.cos(np.deg2rad(lat2d))
    best = np.full(lat2d.shape, np.inf)
    for (x0, y0), (x1, y1) in zip(vertices[:-1], vertices[1:], strict=True):
        ax, ay = (lon2d - x0) * coslat, lat2d - y0
        bx, by = (x1 - x0) * coslat, np.full(lat2d.shape, y1 - y0, dtype=float)
        t = np.clip((ax * bx + ay * by) / np.maximum(bx**2 + by**2, 1e-9), 0, 1)
        best = np.minimum(best, np.hypot(ax - t * bx, ay - t * by))
    return best


_HIGHEST_M = 8849.0  # Mount Everest, m (the catalog's elevation range ends at 9000 m)


def _rain_shadow(elevation: np.ndarray, res: float) -> np.ndarray:
    """Upwind (west) elevation barrier, decaying 8° downwind, on a (lat, lon) grid in m."""
    barrier = np.zeros_like(elevation)
    for k in range(1, round(24 / res) + 1):
        barrier = np.maximum(barrier, np.roll(elevation, k, axis=1) * np.exp(-k * res / 8.0))
    return barrier


def _classify_igbp(t_ann, aridity, lat, lon, noise, ice) -> np.ndarray:
    """IGBP class (1–16) from annual temperature (degC), aridity index, ice sheets and a noise field."""
    ai = aridity * np.exp(0.25 * noise)
    igbp = np.full(t_ann.shape, 10, dtype=np.int16)
    tropical, temperate = t_ann > 20, (t_ann > 2) & (t_ann <= 20)
    boreal, polar = (t_ann > -11) & (t_ann <= 2), t_ann <= -11
    igbp[tropical & (ai > 1.25)] = 2
    igbp[tropical & (ai > 0.85) & (ai <= 1.25)] = 8
    igbp[tropical & (ai > 0.5) & (ai <= 0.85)] = 9
    igbp[temperate & (ai > 1.1)] = np.where(noise[temperate & (ai > 1.1)] > 0, 4, 5)
    crops = temperate & (ai > 0.6) & (ai <= 1.1)
    igbp[crops] = np.where(noise[crops] > 0.8, 14, 12)
    igbp[temperate & (ai > 0.3) & (ai <= 0.45) & (noise > 0.6)] = 6
    forest = boreal & (ai > 0.5)
    igbp[forest] = np.where((lon[forest] > 100) & (lat[forest] > 50), 3, 1)
    igbp[(t_ann > -15) & (t_ann <= -11) & (ai > 0.4)] = 8
    igbp[polar] = 7
    igbp[ai <= 0.3] = 7
    igbp[ai <= 0.1] = 16
    igbp[t_ann < -17] = 16
    igbp[(noise > 2.2) & (t_ann > 5) & (ai > 0.6)] = 11
    igbp[(noise < -2.4) & (t_ann > 5) & (ai > 0.5)] = 13
    igbp[ice] = 15
    return igbp


@dataclass
class StaticFields:
    """Static fields on a (lat, lon) grid; ``land`` marks the cells the world simulates."""

    lat: np.ndarray
    lon: np.ndarray
    land: np.ndarray
    fields: dict[str, np.ndarray] = field(default_factory=dict)

    def sample(self, name: str, lat, lon, *, nearest: bool = False) -> np.ndarray:
        """Field ``name`` at points: bilinear (or nearest for classes), longitude periodic."""
        res = abs(self.lat[0] - self.lat[1])
        rows = np.clip((self.lat[0] - np.asarray(lat, float)) / res, 0, self.lat.size - 1)
        cols = (np.asarray(lon, float) - self.lon[0]) / res
        order = 0 if nearest else 1
        if nearest:
            rows, cols = np.round(rows), np.round(cols) % self.lon.size
        return ndi.map_coordinates(self.fields[name], [rows, cols], order=order, mode="grid-wrap")


def reference_static() -> StaticFields:
    """All static fields on the 0.5° reference grid (ocean included, so sampling near coasts is smooth)."""
    res = REFERENCE_RES
    lat, lon = grid_centres(res)
    lon2d, lat2d = np.meshgrid(lon, lat)
    land = land_mask(lat, lon)
    coast_km = ndi.distance_transform_edt(land, sampling=(111.2 * res, 111.2 * res * 0.7))
    abslat = np.abs(lat2d)

    elevation = 120 + 350 * (1 - np.exp(-coast_km / 700))
    for vertices, height, width in _RIDGES:
        elevation += height * np.exp(-_polyline_distance(lat2d, lon2d, vertices) / width)
    antarctic = np.clip((-lat2d - 62) / 8, 0, 1)
    elevation += _ANTARCTIC_PLATEAU_M * antarctic * (1 - np.exp(-coast_km / 400))
    elevation *= np.exp(0.25 * grid_noise("elevation", lat, lon, (10.0, 3.0, 1.0), (1, 0.7, 0.5)))
    elevation = np.clip(elevation, 1.0, _HIGHEST_M)  # no synthetic peak above Everest

    t_ann = np.interp(abslat, _ZONAL_LAT, _ZONAL_T) - 6.5e-3 * elevation
    t_ann += 1.5 * grid_noise("t_ann", lat, lon)
    continentality = 0.55 + 0.75 * (1 - np.exp(-coast_km / 900))
    t_amp = np.interp(abslat, _AMP_LAT, _AMP_T) * continentality

    inland = np.exp(-coast_km / np.interp(abslat, _INLAND_KM_LAT, _INLAND_KM))
    westerlies = np.clip((abslat - 22) / 10, 0, 1) * np.clip((65 - abslat) / 10, 0, 1)
    shadow = np.exp(-westerlies * _rain_shadow(elevation, res) / 1800)
    precip = np.interp(abslat, _PRECIP_LAT, _PRECIP) * (0.1 + 0.9 * inland) * shadow
    for lon0, lat0, radius, factor in _MOISTURE_ANOMALIES:
        d2 = ((lon2d - lon0) * np.cos(np.deg2rad(lat0))) ** 2 + (lat2d - lat0) ** 2
        precip *= factor ** np.exp(-d2 / radius**2)
    precip *= np.exp(0.45 * grid_noise("precip", lat, lon))
    pet = 0.7 + 0.13 * np.clip(t_ann + 5, 0, None)
    aridity = precip / pet

    cover_noise = grid_noise("landcover", lat, lon, (6.0, 2.0, 1.0), (0.6, 0.8, 0.6))
    greenland = (lat2d > 60) & (lon2d > -70) & (lon2d < -15) & (coast_km > 80)
    igbp = _classify_igbp(t_ann, aridity, lat2d, lon2d, cover_noise, (lat2d < -62) | greenland)
    texture = grid_noise("texture", lat, lon, (8.0, 2.0), (1.0, 0.7))
    theta_sat = 0.44 + 0.05 * np.tanh(texture)
    windiness = 2.4 + 1.8 * np.exp(-coast_km / 250) + 1.0 * westerlies + 0.3 * (igbp == 10)
    fields = {
        "elevation": elevation,
        "coast_km": coast_km,
        "t_ann": t_ann,
        "t_amp": t_amp,
        "precip_ann": precip,
        "aridity": aridity,
        "igbp": igbp.astype(np.float64),
        "theta_sat": theta_sat,
        "windiness": windiness,
    }
    return StaticFields(lat, lon, land, fields)
