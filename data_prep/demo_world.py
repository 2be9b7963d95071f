"""The FluxLens demo world: a synthetic, physically consistent land surface (pure numpy/xarray).

Everything here is deterministic (fixed seeds) and synthetic; nothing is an observation.

Model, per land cell and day (the same equations at every resolution; fields are defined on a
0.5° reference grid and sampled at the cells or points asked for, so the small, the full and the
fine regional world are the same world):

* **Land** — Natural Earth 1:110m country polygons shipped with ``pyogrio`` (lakes from the
  Natural Earth file shipped with ``cartopy`` when present), rasterised at cell centres; an
  analytic set of continents when the shapefile is not installed.
* **Static fields** — elevation from mountain ridges (distance to polylines) plus smooth noise;
  annual mean temperature from a zonal table with a −6.5 K km⁻¹ lapse rate; seasonal amplitude
  growing with latitude and continentality (distance to the coast); annual precipitation from a
  zonal table, decaying inland, reduced in the rain shadow east of ridges in the westerlies, with
  regional monsoon / dry-interior factors and smooth noise; aridity index P / PET; IGBP land
  cover from temperature and aridity; soil water limits from a texture noise field.
* **Weather** — smooth space-time noise (cubic B-splines on coarse grids, AR(1) in time):
  cloud fraction around a climatology tied to precipitation; ``sw_in`` = top-of-atmosphere daily
  insolation (solar geometry, FAO-56 eq. 21) × (0.76 − 0.52 cloud); ``ta`` = seasonal temperature
  + anomaly; ``precip`` where a storm noise field (correlated with clouds) exceeds a quantile set by
  the wet-day frequency, amounts scaled to the seasonal climatology; ``vpd`` from saturation vapour
  pressure (Magnus) and a relative humidity of cloud and wetness; ``lw_in`` such that the net
  longwave at surface = air temperature is FAO-56's (eq. 39, cloud-corrected); ``ws`` lognormal
  around a windiness climatology.
* **Land surface** (daily loop, state spun up over September–December first) — degree-day
  snowpack; a 0–5 cm bucket (50 mm) for ``ssm`` filled by rain and melt (little infiltration into
  frozen soil), emptied by evaporation, drainage above field capacity and exchange with a slower
  root-zone store; LAI relaxing towards a target set by temperature and root-zone moisture; NDVI
  from LAI (Beer's-law form), lowered under snow.
  Energy: albedo from land cover and snow; surface temperature above air temperature for dry,
  sunny surfaces; ``rn = (1 − α) sw_in + 0.97 (lw_in − σ Ts⁴)``; ``g = (0.04 + 0.10 e^(−LAI/2)) rn``;
  available energy ``A = rn − g``; evaporative fraction ``EF`` from soil-moisture stress (surface
  for bare soil, root zone for vegetation), vegetation cover and temperature; ``le = EF·A``,
  ``h = A − le``. Fluxes are quantised to 1/4 W m⁻² so that ``rn − g == le + h`` holds exactly
  in float32.
* **1 km region** — the coarse ``ssm`` interpolated bilinearly, with a static texture /
  topographic-wetness pattern and rain-cell imprints that dry out in a few days.

Quantising every field to a power-of-two step keeps the values exact and the stores compact.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.ndimage as ndi
import scipy.sparse as sp
import xarray as xr
from scipy.special import expit, ndtr, ndtri

SEED = 2018_07_01
REFERENCE_RES = 0.5
SIGMA = 5.670374419e-8  # Stefan–Boltzmann, W m-2 K-4
SOLAR_CONSTANT = 1361.0  # W m-2
LE_TO_MM = 86400.0 / 2.45e6  # W m-2 of LE → mm d-1 of evaporation
SURFACE_LAYER_MM = 50.0  # 0–5 cm
SPIN_UP_FROM = 243  # day index (1 September) from which the spin-up run starts
GLOBE = (-180.0, -90.0, 180.0, 90.0)  # W, S, E, N
CHUNK_POINTS = 40_000  # land cells simulated at once when only a period is kept (≈ 1.4 GB peak)

# Per IGBP class: maximum LAI, evergreen share of it, snow-free albedo, tree cover.
_LAI_MAX = np.array([0, 4.5, 5.5, 3.5, 5.0, 5.0, 2.0, 1.0, 2.5, 2.0, 2.2, 3.0, 3.6, 1.0, 3.0, 0.0, 0.1])
_EVERGREEN = np.array([0, 0.75, 0.9, 0.15, 0.15, 0.45, 0.5, 0.35, 0.4, 0.25, 0.15, 0.3, 0.05, 0.2, 0.1, 0, 0])
_ALBEDO = np.array(
    [0.2, 0.12, 0.13, 0.14, 0.16, 0.15, 0.17, 0.22, 0.16, 0.19, 0.2, 0.14, 0.19, 0.18, 0.18, 0.75, 0.3]
)
_TREE = np.array([0, 0.9, 0.95, 0.85, 0.85, 0.85, 0.2, 0.05, 0.45, 0.2, 0.02, 0.1, 0.0, 0.05, 0.2, 0, 0])

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
_MONSOON_LAT = [0, 5, 12, 20, 30, 40, 90]
_MONSOON = [0.0, 0.3, 0.8, 0.9, 0.4, 0.25, 0.1]


# ---------------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class DemoSpec:
    """Sizes of one demo world. ``FULL``, ``SMALL`` and ``FINE`` share names, seeds and equations."""

    label: str
    global_res: float  # deg, the cubes (global unless ``bbox`` says otherwise)
    period: tuple[str, str]  # inclusive dates of the cubes
    region: tuple[float, float, float, float]  # GSSM W, S, E, N
    gssm_res: float
    gssm_period: tuple[str, str]
    comparison_period: tuple[str, str]  # ESA CCI-like product
    smap_period: tuple[str, str]  # SMAP-like product (one granule per day; overlaps the GSSM month)
    cci_res: float
    n_towers: int
    n_towers_region: int
    n_stations: int
    n_stations_region: int
    year: int = 2018
    bbox: tuple[float, float, float, float] = GLOBE  # W, S, E, N of the cubes and the simulated cells
    satellite_products: bool = True  # the GSSM1km-, ESA CCI- and SMAP-like products (else cubes, stations)

    def dates(self, period: tuple[str, str]) -> pd.DatetimeIndex:
        return pd.date_range(period[0], period[1], freq="D").as_unit("ns")


FULL = DemoSpec(
    label="full",
    global_res=0.5,
    period=("2018-01-01", "2018-12-31"),
    region=(-105.0, 30.0, -85.0, 50.0),
    gssm_res=0.01,
    gssm_period=("2018-07-01", "2018-07-31"),
    comparison_period=("2018-06-01", "2018-08-31"),
    smap_period=("2018-07-01", "2018-07-31"),
    cci_res=0.5,
    n_towers=56,
    n_towers_region=8,
    n_stations=24,
    n_stations_region=8,
)
SMALL = DemoSpec(
    label="small",
    global_res=2.0,
    period=("2018-06-01", "2018-07-30"),
    region=(-99.0, 36.0, -95.0, 40.0),
    gssm_res=0.01,
    gssm_period=("2018-07-01", "2018-07-30"),
    comparison_period=("2018-07-01", "2018-07-30"),
    smap_period=("2018-07-01", "2018-07-30"),
    cci_res=2.0,
    n_towers=12,
    n_towers_region=3,
    n_stations=6,
    n_stations_region=3,
)


# Feature cubes of at least 500 × 500 px × 30 days for re-prediction benchmarks: 0.1° over 50° × 50°
# of Central and East Asia (97 % land), July only (the cells are still run over the whole year, spin-up
# included, and cut to the period). No 1 km or satellite products; towers and probes inside the box.
FINE = DemoSpec(
    label="fine",
    global_res=0.1,
    period=("2018-07-01", "2018-07-31"),
    region=(86.0, 50.0, 90.0, 54.0),
    gssm_res=0.01,
    gssm_period=("2018-07-01", "2018-07-31"),
    comparison_period=("2018-07-01", "2018-07-31"),
    smap_period=("2018-07-01", "2018-07-31"),
    cci_res=0.5,
    n_towers=40,
    n_towers_region=4,
    n_stations=8,
    n_stations_region=2,
    bbox=(60.0, 20.0, 110.0, 70.0),
    satellite_products=False,
)


def quantize(x, exponent: int) -> np.ndarray:
    """Round to a multiple of 2**-exponent, as float32 (exact; NaN kept)."""
    scale = np.float32(2.0**exponent)
    out = np.array(x, dtype=np.float32)
    out *= scale
    np.round(out, out=out)
    out /= scale
    return out


def rng_for(name: str) -> np.random.Generator:
    """A generator seeded by the world seed and a stream name (independent, reproducible)."""
    return np.random.default_rng([SEED, zlib.crc32(name.encode())])


def grid_centres(res: float, bbox=(-180.0, -90.0, 180.0, 90.0)) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centre ``lat`` (descending) and ``lon`` (ascending) of a regular grid over ``bbox``."""
    west, south, east, north = bbox
    n_lat, n_lon = round((north - south) / res), round((east - west) / res)
    lat = north - (np.arange(n_lat) + 0.5) * res
    lon = west + (np.arange(n_lon) + 0.5) * res
    return lat, lon


# ---------------------------------------------------------------------------------------------------
# land mask


def _natural_earth_paths() -> tuple[Path | None, Path | None]:
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
    land_path, lakes_path = _natural_earth_paths()
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


# ---------------------------------------------------------------------------------------------------
# smooth noise: cubic B-splines on coarse knot grids, unit variance everywhere


def _bspline_weights(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knot index of the first of 4 supports and the 4 cubic B-spline weights at positions ``u``."""
    i = np.floor(u)
    t = u - i
    w = np.stack(
        [(1 - t) ** 3 / 6, (3 * t**3 - 6 * t**2 + 4) / 6, (-3 * t**3 + 3 * t**2 + 3 * t + 1) / 6, t**3 / 6],
        axis=-1,
    )
    return i.astype(np.int64) - 1, w


@dataclass(frozen=True)
class KnotGrid:
    """Coarse global knot grid of ``spacing`` degrees (periodic in longitude)."""

    spacing: float

    @property
    def n_lat(self) -> int:
        return round(180 / self.spacing) + 5

    @property
    def n_lon(self) -> int:
        return round(360 / self.spacing)

    def lat_matrix(self, lat: np.ndarray) -> np.ndarray:
        """Dense (lat × knot rows) weights; with :meth:`lon_matrix` the separable form of :meth:`matrix`."""
        iy, wy = _bspline_weights((np.asarray(lat, float) + 90) / self.spacing + 2)
        m = np.zeros((iy.size, self.n_lat))
        for k in range(4):
            np.add.at(m, (np.arange(iy.size), np.clip(iy + k, 0, self.n_lat - 1)), wy[:, k])
        return m / np.sqrt((wy**2).sum(axis=1, keepdims=True))

    def lon_matrix(self, lon: np.ndarray) -> np.ndarray:
        ix, wx = _bspline_weights(((np.asarray(lon, float) + 180) / self.spacing) % self.n_lon)
        m = np.zeros((ix.size, self.n_lon))
        for k in range(4):
            np.add.at(m, (np.arange(ix.size), (ix + k) % self.n_lon), wx[:, k])
        return m / np.sqrt((wx**2).sum(axis=1, keepdims=True))

    def matrix(self, lat: np.ndarray, lon: np.ndarray) -> sp.csr_matrix:
        """Sparse (points × knots) interpolation matrix, rows scaled to unit variance for iid knots."""
        lat, lon = np.asarray(lat, float).ravel(), np.asarray(lon, float).ravel()
        iy, wy = _bspline_weights((lat + 90) / self.spacing + 2)
        ix, wx = _bspline_weights(((lon + 180) / self.spacing) % self.n_lon)
        rows = np.repeat(np.arange(lat.size), 16)
        ky = np.clip(iy[:, None, None] + np.arange(4)[None, :, None], 0, self.n_lat - 1)
        kx = (ix[:, None, None] + np.arange(4)[None, None, :]) % self.n_lon
        cols = (ky * self.n_lon + kx).reshape(-1)
        weights = (wy[:, :, None] * wx[:, None, :]).reshape(lat.size, 16)
        weights /= np.sqrt((weights**2).sum(axis=1, keepdims=True))
        return sp.csr_matrix((weights.reshape(-1), (rows, cols)), shape=(lat.size, self.n_lat * self.n_lon))


def knot_values(name: str, grid: KnotGrid, n_time: int = 1, rho: float = 0.0) -> np.ndarray:
    """iid N(0, 1) knot values (n_time, n_knots), AR(1) with lag-1 correlation ``rho`` in time."""
    rng = rng_for(name)
    shocks = rng.standard_normal((n_time, grid.n_lat * grid.n_lon))
    if rho:
        scale = np.sqrt(1 - rho**2)
        for t in range(1, n_time):
            shocks[t] = rho * shocks[t - 1] + scale * shocks[t]
    return shocks


def grid_noise(name: str, lat, lon, spacings=(20.0, 7.0, 2.5), weights=(1.0, 0.6, 0.35)) -> np.ndarray:
    """Multi-scale smooth N(0, 1) field on a regular (lat, lon) grid, the same at any resolution."""
    total = np.zeros((np.size(lat), np.size(lon)))
    for spacing, wgt in zip(spacings, weights, strict=True):
        grid = KnotGrid(spacing)
        knots = knot_values(f"{name}/{spacing}", grid)[0].reshape(grid.n_lat, grid.n_lon)
        total += wgt * (grid.lat_matrix(lat) @ knots @ grid.lon_matrix(lon).T)
    return total / np.sqrt(np.sum(np.square(weights)))


def grid_daily_noise(name: str, lat, lon, n_days: int, spacing: float, rho: float) -> np.ndarray:
    """:func:`daily_noise` on a regular (lat, lon) grid: (n_days, lat, lon) float32, separable form."""
    grid = KnotGrid(spacing)
    knots = knot_values(name, grid, n_days, rho).reshape(n_days, grid.n_lat, grid.n_lon).astype(np.float32)
    wy, wx = grid.lat_matrix(lat).astype(np.float32), grid.lon_matrix(lon).astype(np.float32)
    return np.einsum("yi,tij,xj->tyx", wy, knots, wx, optimize=True)


def daily_noise(name: str, lat, lon, n_days: int, spacing: float, rho: float) -> np.ndarray:
    """Smooth space-time N(0, 1) field (n_days, n_points), AR(1) in time."""
    grid = KnotGrid(spacing)
    knots = knot_values(name, grid, n_days, rho)
    return np.asarray((grid.matrix(lat, lon) @ knots.T).T, dtype=np.float32)


# ---------------------------------------------------------------------------------------------------
# static fields on the reference grid


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


# ---------------------------------------------------------------------------------------------------
# weather and land surface at a set of points


def toa_shortwave(lat, doy, dtype=np.float64) -> np.ndarray:
    """Daily mean top-of-atmosphere insolation (W m-2), FAO-56 eqs. 21–25; shape (doy, lat).

    Computed per distinct latitude and cast to ``dtype`` before being spread to the points.
    """
    unique, inverse = np.unique(np.asarray(lat, float), return_inverse=True)
    return _toa_shortwave(unique, doy).astype(dtype, copy=False)[:, inverse]


def _toa_shortwave(lat, doy) -> np.ndarray:
    phi = np.deg2rad(np.asarray(lat, float))[None, :]
    j = np.asarray(doy, float)[:, None]
    decl = 0.409 * np.sin(2 * np.pi * j / 365 - 1.39)
    dr = 1 + 0.033 * np.cos(2 * np.pi * j / 365)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(decl), -1, 1))
    return (
        SOLAR_CONSTANT
        / np.pi
        * dr
        * (ws * np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.sin(ws))
    )


def saturation_vapour_pressure(ta) -> np.ndarray:
    """Magnus formula, hPa over water, ``ta`` in degC."""
    return 6.112 * np.exp(17.62 * ta / (243.12 + ta))


@dataclass
class PointWorld:
    """Daily series (time, point) of every simulated variable at a set of land points."""

    time: pd.DatetimeIndex
    lat: np.ndarray
    lon: np.ndarray
    static: dict[str, np.ndarray]
    series: dict[str, np.ndarray]

    def period(self, start, end) -> PointWorld:
        """The days from ``start`` to ``end`` (inclusive); series are views, not copies."""
        keep = slice(
            self.time.searchsorted(pd.Timestamp(start)), self.time.searchsorted(pd.Timestamp(end), "right")
        )
        return PointWorld(
            self.time[keep], self.lat, self.lon, self.static, {k: v[keep] for k, v in self.series.items()}
        )


FORCING_VARS = ("sw_in", "lw_in", "ta", "vpd", "precip", "ws", "lai", "ndvi")
FLUX_VARS = ("le", "h", "rn", "g")
_QUANT = {"sw_in": 2, "lw_in": 2, "ta": 5, "vpd": 5, "precip": 5, "ws": 5, "lai": 7, "ndvi": 9, "ssm": 10}


def weather(static: StaticFields, lat, lon, year: int) -> tuple[pd.DatetimeIndex, dict, dict]:
    """Daily forcing for ``year`` at points; returns time, static values at points, series."""
    time = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D").as_unit("ns")
    n = time.size
    doy = time.day_of_year.to_numpy()
    at = {k: static.sample(k, lat, lon).astype(np.float32) for k in static.fields if k != "igbp"}
    at["igbp"] = static.sample("igbp", lat, lon, nearest=True).astype(np.int16)
    hemi = np.where(np.asarray(lat) >= 0, 1.0, -1.0).astype(np.float32)
    season = np.cos(2 * np.pi * (doy[:, None] - 200) / 365.25).astype(np.float32) * hemi[None, :]

    t_seas = at["t_ann"][None, :] + at["t_amp"][None, :] * season
    sd_t = 1.0 + 2.5 * np.clip(np.abs(lat) / 50, 0, 1.2).astype(np.float32)
    ta = t_seas + sd_t[None, :] * daily_noise("ta", lat, lon, n, 10.0, 0.75)
    del t_seas  # (time, point) temporaries are freed as soon as they are used: they set the peak memory

    monsoon = np.interp(np.abs(lat), _MONSOON_LAT, _MONSOON).astype(np.float32)
    p_seas = at["precip_ann"][None, :] * np.clip(1 + monsoon[None, :] * season, 0.05, None)
    cloud_clim = 0.12 + 0.62 * (1 - np.exp(-p_seas / 3.0))
    z_cloud = daily_noise("cloud", lat, lon, n, 6.0, 0.55)
    cloud = expit(np.log(cloud_clim / (1 - cloud_clim)) + 1.3 * z_cloud).astype(np.float32, copy=False)
    del cloud_clim
    z_storm = 0.65 * z_cloud + 0.76 * daily_noise("storm", lat, lon, n, 2.5, 0.25)
    del z_cloud
    wet_freq = np.clip(0.06 + 0.55 * (1 - np.exp(-p_seas / 2.5)), 0.03, 0.8)
    q = ndtri(1 - wet_freq)
    excess_mean = np.exp(-0.5 * q**2) / np.sqrt(2 * np.pi) / (1 - ndtr(q)) - q
    precip = np.where(z_storm > q, p_seas / wet_freq * (z_storm - q) / excess_mean, 0.0)
    precip = np.minimum(precip, 150.0).astype(np.float32, copy=False)
    del z_storm, wet_freq, q, excess_mean

    sw_in = toa_shortwave(lat, doy, np.float32) * (0.76 - 0.52 * cloud)
    sw_in *= 1 + at["elevation"][None, :] / 25000
    rh = np.clip(0.15 + 0.45 * cloud + 0.3 * (1 - np.exp(-p_seas / 2.0)), 0.08, 0.98)
    del p_seas
    es = saturation_vapour_pressure(ta)
    vpd = (es * (1 - rh)).astype(np.float32, copy=False)
    tk = ta + 273.15
    # FAO-56 eq. 39 net longwave at surface temperature = air temperature, with Rs/Rso from clouds
    emission = SIGMA * tk**4
    cloud_factor = np.clip(1.0 - 0.92 * cloud, 0.05, 1.0)
    lw_in = (emission * (1 - (0.34 - 0.14 * np.sqrt(es * rh / 10)) * cloud_factor)).astype(
        np.float32, copy=False
    )
    del tk, emission, cloud_factor, es, rh
    ws = at["windiness"][None, :] * np.exp(0.35 * daily_noise("wind", lat, lon, n, 8.0, 0.5) - 0.06)
    series = {
        "sw_in": sw_in,
        "lw_in": lw_in,
        "ta": ta.astype(np.float32, copy=False),
        "vpd": vpd,
        "precip": precip,
        "ws": ws.astype(np.float32, copy=False),
        "cloud": cloud,
    }
    return time, at, series


def land_surface(at: dict, series: dict) -> dict:
    """Run the snow, bucket, vegetation and energy-balance model over the year (float32).

    The state starts from climatology on ``SPIN_UP_FROM`` (day of year) and runs to the end of the
    year once; the kept run starts on 1 January from that end state.
    """
    f4 = np.float32
    igbp = at["igbp"]
    lai_max = _LAI_MAX[igbp].astype(f4)
    lai_min = lai_max * _EVERGREEN[igbp].astype(f4)
    albedo_veg, tree = _ALBEDO[igbp].astype(f4), _TREE[igbp].astype(f4)
    sat = at["theta_sat"].astype(f4)
    fc, wp = 0.72 * sat, 0.2 * sat
    ice = igbp == 15
    ta, sw, lw, precip, cloud = (series[k] for k in ("ta", "sw_in", "lw_in", "precip", "cloud"))
    n_days, n = ta.shape

    wet0 = np.clip(at["aridity"], 0, 1).astype(f4)
    theta = wp + (fc - wp) * wet0
    theta_rz, beta_root = theta.copy(), wet0.copy()
    swe = np.where(at["t_ann"] < 0, -10.0 * at["t_ann"], 0.0).astype(f4)
    ta_mem = ta[SPIN_UP_FROM].copy()
    lai = lai_min + (lai_max - lai_min) * 0.5
    kept = ("ssm", "ef", "rn", "g", "lai", "ndvi")
    out = {k: np.empty((n_days, n), f4) for k in kept}
    out["frozen"] = np.empty((n_days, n), bool)
    out["snow"] = np.empty((n_days, n), bool)

    for days, keep in ((range(SPIN_UP_FROM, n_days), False), (range(n_days), True)):
        for t in days:
            ta_t = ta[t]
            snowfall = np.where(ta_t < 0.5, precip[t], f4(0))
            melt = np.minimum(swe + snowfall, 3.0 * np.maximum(ta_t, 0))
            swe = swe + snowfall - melt
            snow_frac = np.minimum(1.0, swe / 10.0)
            ta_mem += (ta_t - ta_mem) / 5.0
            frozen = ta_mem < -0.5

            greenness = expit((ta_mem - 6.0) / 3.0) * np.minimum(1.0, 1.25 * beta_root)
            lai += (lai_min + (lai_max - lai_min) * greenness - lai) / 15.0
            cover = 1 - np.exp(-0.5 * lai)

            snow_vis = snow_frac * (1 - 0.6 * tree)
            albedo = albedo_veg * (1 - snow_vis) + 0.72 * snow_vis
            beta_s = np.clip((theta - wp) / (fc - wp), 0, 1)
            beta_soil = np.clip((theta - 0.03) / (fc - 0.03), 0, 1) ** 2
            beta = cover * np.minimum(1.0, 1.2 * beta_root) + (1 - cover) * beta_soil
            ef = 0.04 + 0.82 * beta * (0.45 + 0.55 * cover) * expit((ta_t - 3.0) / 3.0)
            ef = np.where(frozen | ice, 0.04 + 0.08 * snow_frac, ef)
            ts_k = ta_t + 273.15 + 0.03 * (1 - albedo) * sw[t] * (1 - ef)
            rn = (1 - albedo) * sw[t] + 0.97 * (lw[t] - SIGMA * ts_k**4)
            g = (0.04 + 0.10 * np.exp(-0.5 * lai)) * rn

            evap = np.maximum(ef * (rn - g), 0) * LE_TO_MM * ((1 - cover) + 0.25 * cover)
            infiltration = np.where(frozen, 0.15, 1.0) * (precip[t] - snowfall + melt)
            theta = np.minimum(theta + (infiltration - evap) / SURFACE_LAYER_MM, sat)
            theta -= 0.4 * np.maximum(theta - fc, 0)
            theta += (theta_rz - theta) / 12.0
            theta = np.clip(theta, 0.02, sat)
            theta_rz += (theta - theta_rz) / 30.0
            beta_root += (beta_s - beta_root) / 20.0

            if keep:
                out["rn"][t], out["g"][t], out["ef"][t] = rn, g, ef
                out["ssm"][t] = np.where(ice, np.nan, theta)
                out["lai"][t] = lai
                out["ndvi"][t] = (0.08 + 0.8 * (1 - np.exp(-0.55 * lai))) * (1 - 0.85 * snow_frac) + 0.02
                out["frozen"][t], out["snow"][t] = frozen, swe > 1.0
    # Fluxes on a 1/4 W m-2 lattice: every sum below is exact in float32, so rn - g == le + h.
    out["rn"], out["g"] = quantize(out["rn"], 2), quantize(out["g"], 2)
    out["le"] = quantize(out.pop("ef") * (out["rn"] - out["g"]), 2)
    out["h"] = out["rn"] - out["g"] - out["le"]
    return out


def simulate_points(static: StaticFields, lat, lon, year: int) -> PointWorld:
    """The whole model at land points (lat, lon) for ``year``."""
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    time, at, series = weather(static, lat, lon, year)
    series.update(land_surface(at, series))
    del series["cloud"]  # an input of the model only: no product or sensor uses it
    for name, exponent in _QUANT.items():
        series[name] = quantize(series[name], exponent)
    at["elevation"] = np.round(at["elevation"]).astype(np.float32)
    return PointWorld(time, lat, lon, at, series)


# ---------------------------------------------------------------------------------------------------
# gridded world


@dataclass
class GridWorld:
    """The world on a regular global grid: land-cell series scattered lazily onto (time, lat, lon)."""

    lat: np.ndarray
    lon: np.ndarray
    land: np.ndarray
    points: PointWorld

    @property
    def cell_index(self) -> tuple[np.ndarray, np.ndarray]:
        return np.nonzero(self.land)

    def grid(self, values: np.ndarray, fill=np.nan) -> np.ndarray:
        """(time?, point) values → (time?, lat, lon) array with ``fill`` over the ocean."""
        iy, ix = self.cell_index
        out = np.full(values.shape[:-1] + self.land.shape, fill, dtype=values.dtype)
        out[..., iy, ix] = values
        return out

    def nearest_cell(self, lat, lon) -> np.ndarray:
        """Index into the points of the land cell containing each (lat, lon); -1 over the ocean."""
        res = abs(self.lat[0] - self.lat[1])
        rows = np.clip(((self.lat[0] + res / 2 - np.asarray(lat)) / res).astype(int), 0, self.lat.size - 1)
        cols = np.clip(((np.asarray(lon) - self.lon[0] + res / 2) / res).astype(int), 0, self.lon.size - 1)
        lookup = np.full(self.land.shape, -1, dtype=np.int64)
        iy, ix = self.cell_index
        lookup[iy, ix] = np.arange(iy.size)
        return lookup[rows, cols]


def simulate_grid(
    static: StaticFields, res: float, year: int, bbox=GLOBE, period: tuple[str, str] | None = None
) -> GridWorld:
    """The model at every land cell of a grid of ``res`` degrees over ``bbox`` (global by default).

    With ``period`` only those days are kept: the cells are run (whole year, spin-up included) in
    chunks of :data:`CHUNK_POINTS` and each chunk is cut to the period, so memory follows the period,
    not the year. Cells are independent, so the values are those of one run over all cells.
    """
    lat, lon = grid_centres(res, bbox)
    land = land_mask(lat, lon)
    iy, ix = np.nonzero(land)
    if period is None:
        return GridWorld(lat, lon, land, simulate_points(static, lat[iy], lon[ix], year))
    parts = []
    for i in range(0, iy.size, CHUNK_POINTS):
        part = simulate_points(static, lat[iy[i : i + CHUNK_POINTS]], lon[ix[i : i + CHUNK_POINTS]], year)
        part = part.period(*period)
        part.series = {k: v.copy() for k, v in part.series.items()}  # drop the rest of the year
        parts.append(part)
    points = PointWorld(
        parts[0].time,
        lat[iy],
        lon[ix],
        {k: np.concatenate([p.static[k] for p in parts]) for k in parts[0].static},
        {k: np.concatenate([p.series[k] for p in parts], axis=1) for k in parts[0].series},
    )
    return GridWorld(lat, lon, land, points)


def interpolation_matrix(source: np.ndarray, target: np.ndarray, periodic: float | None = None) -> np.ndarray:
    """Dense (target × source) linear interpolation weights between regular 1-D centre coordinates."""
    step = source[1] - source[0]
    pos = (target - source[0]) / step
    if periodic is None:
        pos = np.clip(pos, 0, source.size - 1)
    i0 = np.floor(pos).astype(int)
    frac = pos - i0
    i1 = i0 + 1
    if periodic is None:
        i1 = np.minimum(i1, source.size - 1)
    else:
        i0, i1 = i0 % source.size, i1 % source.size
    weights = np.zeros((target.size, source.size))
    weights[np.arange(target.size), i0] += 1 - frac
    weights[np.arange(target.size), i1] += frac
    return weights


def fill_ocean(values: np.ndarray, land: np.ndarray) -> np.ndarray:
    """(…, lat, lon) values with ocean cells set to their nearest land cell (for interpolation)."""
    _, (iy, ix) = ndi.distance_transform_edt(~land, return_indices=True)
    return values[..., iy, ix]


# ---------------------------------------------------------------------------------------------------
# the 1 km region


def _region_noise(name: str, lat: np.ndarray, lon: np.ndarray, spacing: float) -> np.ndarray:
    """Smooth N(0, 1) field (lat, lon) on a regional grid from a regional knot grid (separable)."""
    rows_u = (lat.max() + 2 * spacing - lat) / spacing
    cols_u = (lon - lon.min() + 2 * spacing) / spacing
    n_r, n_c = int(rows_u.max()) + 4, int(cols_u.max()) + 4
    knots = rng_for(f"region/{name}/{spacing}").standard_normal((n_r, n_c))

    def dense(u, n):
        i, w = _bspline_weights(u)
        m = np.zeros((u.size, n))
        for k in range(4):
            np.add.at(m, (np.arange(u.size), np.clip(i + k, 0, n - 1)), w[:, k])
        return m / np.sqrt((w**2).sum(axis=1, keepdims=True))

    return (dense(rows_u, n_r) @ knots @ dense(cols_u, n_c).T).astype(np.float32)


def gssm_region(world: GridWorld, spec: DemoSpec, land: np.ndarray | None = None) -> xr.DataArray:
    """A GSSM1km-like 0.01° ``ssm`` (time, lat, lon) over ``spec.region`` for ``spec.gssm_period``.

    The coarse truth ``ssm`` is interpolated bilinearly to 1 km and given fine structure: a static
    texture/topographic-wetness pattern (≈ 5–30 km) scaled with wetness, and rain-cell imprints that
    appear on rainy days and dry out with a 4-day e-folding time.
    """
    lat, lon = grid_centres(spec.gssm_res, spec.region)
    if land is None:
        land = land_mask(lat, lon)
    times = spec.dates(spec.gssm_period)
    t_index = world.points.time.get_indexer(times)
    rows = (world.lat >= lat.min() - 2 * REFERENCE_RES - world_res(world)) & (
        world.lat <= lat.max() + 2 * REFERENCE_RES + world_res(world)
    )
    wy = interpolation_matrix(world.lat[rows][::-1], lat)[:, ::-1].astype(np.float32)
    wx = interpolation_matrix(world.lon, lon, periodic=360.0).astype(np.float32)
    cols = np.nonzero(wx.any(axis=0))[0]
    wx = wx[:, cols]

    ssm = fill_ocean(world.grid(world.points.series["ssm"][t_index]), world.land)[:, rows][:, :, cols]
    rain = fill_ocean(world.grid(world.points.series["precip"][t_index]), world.land)[:, rows][:, :, cols]
    ssm = np.nan_to_num(ssm, nan=0.2)

    texture = 0.7 * _region_noise("texture", lat, lon, 0.25) + 0.5 * _region_noise("texture", lat, lon, 0.06)
    wetness = _region_noise("wetness", lat, lon, 0.03)
    cells = [_region_noise(f"cells{k}", lat, lon, 0.15) for k in range(4)]
    weights = rng_for("region/cell_weights").standard_normal((times.size, len(cells))).astype(np.float32)
    imprint = np.zeros(land.shape, np.float32)
    texture_factor, wetness_term, ocean = 1 + 0.12 * texture, 0.025 * wetness, ~land
    out = np.empty((times.size, lat.size, lon.size), np.float32)
    for i in range(times.size):
        coarse = wy @ ssm[i].astype(np.float32) @ wx.T
        wet_coarse = np.minimum(wy @ rain[i].astype(np.float32) @ wx.T / 10.0, 1.5)
        pattern = sum(w * c for w, c in zip(weights[i] / 2, cells, strict=True))
        imprint = np.exp(-1 / 4) * imprint + 0.05 * wet_coarse * pattern
        value = coarse * texture_factor + (wetness_term + imprint) * np.minimum(coarse / 0.25, 1.2)
        np.clip(value, 0.01, 0.55, out=value)
        value[ocean] = np.nan
        out[i] = quantize(value, 10)
    return xr.DataArray(
        out,
        dims=("time", "lat", "lon"),
        coords={"time": times, "lat": lat, "lon": lon},
        name="ssm",
    )


def world_res(world: GridWorld) -> float:
    return float(abs(world.lat[0] - world.lat[1]))
