"""Regular lat/lon grids of the demo world: cell centres, linear interpolation weights between
grids, ocean cells filled from land, and the power-of-two value lattice every field is stored on."""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi


def quantize(x, exponent: int) -> np.ndarray:
    """Round to a multiple of 2**-exponent, as float32 (exact; NaN kept)."""
    scale = np.float32(2.0**exponent)
    out = np.array(x, dtype=np.float32)
    out *= scale
    np.round(out, out=out)
    out /= scale
    return out


def grid_centres(res: float, bbox=(-180.0, -90.0, 180.0, 90.0)) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centre ``lat`` (descending) and ``lon`` (ascending) of a regular grid over ``bbox``."""
    west, south, east, north = bbox
    n_lat, n_lon = round((north - south) / res), round((east - west) / res)
    lat = north - (np.arange(n_lat) + 0.5) * res
    lon = west + (np.arange(n_lon) + 0.5) * res
    return lat, lon


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
