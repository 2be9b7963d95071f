"""Pure numpy/pyproj computations behind the Equal Earth global map (no I/O, no widgets).

Equal Earth is EPSG:8857 (Šavrič, Patterson & Jenny 2018, on the WGS 84 ellipsoid: equal-area
through the authalic latitude), plot coordinates in metres. A projected screen raster is made by
inverse projection: every screen pixel centre is taken back to lon/lat once per frame (cached), and
shows the grid cell containing that point, the cells first block-averaged when several fit in one
screen pixel. So the value under the mouse is the value of the lon/lat field at the lon/lat the hover
reports. (Forward-warping the field with ``geoviews.project`` took 0.32 s per 720 × 360 field against
≈ 7 ms for the cached lookup.)
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import xarray as xr
from pyproj import CRS, Transformer

from app import categories

EQUAL_EARTH = CRS.from_epsg(8857)
_FORWARD = Transformer.from_crs(4326, EQUAL_EARTH, always_xy=True)
_INVERSE = Transformer.from_crs(EQUAL_EARTH, 4326, always_xy=True)
# A point whose inverse projection does not project back within this is off the globe (PROJ's
# inverse is good to ≈ 2 mm, at the poles).
ROUND_TRIP_TOL_M = 1.0
# Cells block-averaged before the lookup when at least this many fit in one pixel (per axis).
MIN_BLOCK = 2


def to_projected(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Equal Earth metres of lon/lat degrees."""
    x, y = _FORWARD.transform(np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64"))
    return np.asarray(x), np.asarray(y)


def to_lonlat(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat degrees of Equal Earth metres; NaN off the globe."""
    x, y = np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64")
    lon, lat = (np.asarray(v) for v in _INVERSE.transform(x, y))
    with np.errstate(invalid="ignore"):
        bx, by = to_projected(lon, lat)
        off = ~((np.abs(bx - x) <= ROUND_TRIP_TOL_M) & (np.abs(by - y) <= ROUND_TRIP_TOL_M))
    return np.where(off, np.nan, lon), np.where(off, np.nan, lat)


@lru_cache(maxsize=1)
def world_half_extent() -> tuple[float, float]:
    """(x of lon 180° on the equator, y of the north pole), metres."""
    x, _ = to_projected(180.0, 0.0)
    _, y = to_projected(0.0, 90.0)
    return float(x), float(y)


def fit_world(width: int, height: int, margin: float = 0.02) -> tuple[tuple, tuple]:
    """Plot ranges (metres) showing the whole globe in a ``width`` × ``height`` frame with square
    metres."""
    hx, hy = (v * (1 + margin) for v in world_half_extent())
    if hx / hy > width / height:
        hy = hx * height / width
    else:
        hx = hy * width / height
    return (-hx, hx), (-hy, hy)


def pixel_centres(x_range, y_range, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """x (left to right) and y (top row first) of the pixel centres of a frame."""
    (x0, x1), (y0, y1) = sorted(x_range), sorted(y_range)
    x = x0 + (np.arange(width) + 0.5) * (x1 - x0) / width
    y = y1 - (np.arange(height) + 0.5) * (y1 - y0) / height
    return x, y


@lru_cache(maxsize=8)
def _pixel_lonlat(x_range, y_range, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = pixel_centres(x_range, y_range, width, height)
    lon, lat = to_lonlat(*np.meshgrid(x, y))
    lon.flags.writeable = lat.flags.writeable = False
    return lon, lat


def pixel_lonlat(x_range, y_range, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat of every pixel centre (height × width, top row first; NaN off the globe), cached."""
    key = tuple(float(v) for v in x_range), tuple(float(v) for v in y_range)
    return _pixel_lonlat(*key, int(width), int(height))


def _spacing(field: xr.DataArray, dim: str, attr: str) -> float:
    values = field[dim].values
    if values.size > 1:
        return float(abs(values[1] - values[0]))
    return float(field.attrs.get(attr, 1.0))


def block_mean(field: xr.DataArray, pixel_deg: float) -> xr.DataArray:
    """``field`` with blocks of k × k cells averaged (mean of valid cells) where k =
    ⌊``pixel_deg`` / cell⌋ ≥ :data:`MIN_BLOCK`, else unchanged; grid spacing kept in ``attrs``."""
    res_lon, res_lat = _spacing(field, "lon", "res_lon"), _spacing(field, "lat", "res_lat")
    k_lon, k_lat = int(pixel_deg // res_lon), int(pixel_deg // res_lat)
    if max(k_lon, k_lat) < MIN_BLOCK:
        return field
    k_lon, k_lat = max(k_lon, 1), max(k_lat, 1)
    out = field.coarsen(lon=k_lon, lat=k_lat, boundary="trim").mean()  # skips NaN
    out.attrs = {**field.attrs, "res_lon": res_lon * k_lon, "res_lat": res_lat * k_lat}
    return out


def project_field(field: xr.DataArray, x_range, y_range, width: int, height: int) -> xr.DataArray:
    """The Equal Earth screen raster (``y`` top row first × ``x``, metres of the pixel centres) of a
    lon/lat field (lat descending, lon ascending, regular): each pixel shows the cell containing its
    centre's lon/lat, NaN off the globe and outside the grid."""
    lon_px, lat_px = pixel_lonlat(x_range, y_range, width, height)
    px_m = (max(x_range) - min(x_range)) / width
    field = field.transpose("lat", "lon")
    if categories.of(field.attrs) is None:  # classes are never averaged
        field = block_mean(field, px_m / (world_half_extent()[0] / 180.0))
    lon, lat = field["lon"].values, field["lat"].values
    res_lon, res_lat = _spacing(field, "lon", "res_lon"), _spacing(field, "lat", "res_lat")
    with np.errstate(invalid="ignore"):
        col = np.floor((lon_px - (lon[0] - res_lon / 2)) / res_lon)
        row = np.floor(((lat[0] + res_lat / 2) - lat_px) / res_lat)
        inside = (col >= 0) & (col < lon.size) & (row >= 0) & (row < lat.size)
    values = np.asarray(field.values, dtype="float32")
    out = np.full(lon_px.shape, np.nan, dtype="float32")
    out[inside] = values[row[inside].astype(int), col[inside].astype(int)]
    x, y = pixel_centres(x_range, y_range, width, height)
    return xr.DataArray(out, coords={"y": y, "x": x}, dims=("y", "x"), attrs=dict(field.attrs))


def project_lines(xs: list, ys: list) -> tuple[list, list]:
    """Polylines (lists of lon and lat lists) in Equal Earth metres."""
    out_x, out_y = [], []
    for lon, lat in zip(xs, ys, strict=True):
        x, y = to_projected(lon, lat)
        out_x.append(x.tolist())
        out_y.append(y.tolist())
    return out_x, out_y


def box_outline(w: float, s: float, e: float, n: float, steps: int = 64) -> tuple[list, list]:
    """The outline of a lon/lat box in metres, its edges followed in ``steps`` pieces (parallels
    and meridians are curves in Equal Earth)."""
    t = np.linspace(0.0, 1.0, steps + 1)
    lon = np.concatenate([w + (e - w) * t, np.full_like(t, e), e - (e - w) * t, np.full_like(t, w)])
    lat = np.concatenate([np.full_like(t, s), s + (n - s) * t, np.full_like(t, n), n - (n - s) * t])
    x, y = to_projected(lon, lat)
    return x.tolist(), y.tolist()


@lru_cache(maxsize=1)
def globe_outline() -> tuple[list, list]:
    """The edge of the map (the ±180° meridians and the pole lines), metres."""
    return box_outline(-180.0, -90.0, 180.0, 90.0, steps=180)


# WGS 84 constants of the JavaScript inverse below, as PROJ's eqearth uses them.
_A = 6378137.0
_ES = 0.0066943799901413165  # first eccentricity squared (1 / f = 298.257223563)
_E = math.sqrt(_ES)
_QP = (1 - _ES) * (1 / (1 - _ES) - math.log((1 - _E) / (1 + _E)) / (2 * _E))
_APA = (
    _ES / 3 + _ES**2 * 31 / 180 + _ES**3 * 517 / 5040,
    _ES**2 * 23 / 360 + _ES**3 * 251 / 3780,
    _ES**3 * 761 / 45360,
)

# ``inverse(x, y)`` → [lon, lat] in degrees (NaN off the globe): Newton iterations on the
# parametric latitude, then the authalic-to-geodetic series, as PROJ's eqearth. The hover of the
# projected map reports lon/lat with it.
INVERSE_JS = f"""
function inverse(x, y) {{
  const A1 = 1.340264, A2 = -0.081106, A3 = 0.000893, A4 = 0.003796, M = Math.sqrt(3) / 2;
  const R = {_A!r} * Math.sqrt({_QP / 2!r});
  const yc = y / R;
  let t = yc;
  for (let i = 0; i < 12; i++) {{
    const t2 = t * t, t6 = t2 * t2 * t2;
    const f = t * (A1 + A2 * t2 + t6 * (A3 + A4 * t2)) - yc;
    const fp = A1 + 3 * A2 * t2 + t6 * (7 * A3 + 9 * A4 * t2);
    const d = f / fp;
    t -= d;
    if (Math.abs(d) < 1e-12) break;
  }}
  const t2 = t * t, t6 = t2 * t2 * t2;
  const lam = M * (x / R) * (A1 + 3 * A2 * t2 + t6 * (7 * A3 + 9 * A4 * t2)) / Math.cos(t);
  const s = Math.sin(t) / M;
  if (!(Math.abs(s) <= 1) || !(Math.abs(lam) <= Math.PI + 1e-12)) return [NaN, NaN];
  const beta = Math.asin(s);
  const phi = beta + {_APA[0]!r} * Math.sin(2 * beta) + {_APA[1]!r} * Math.sin(4 * beta)
    + {_APA[2]!r} * Math.sin(6 * beta);
  return [lam * 180 / Math.PI, phi * 180 / Math.PI];
}}
"""
