"""Multiscale pyramid arithmetic: level shapes and the 2 × 2 coarsening of a gridded product.

Level ``k`` is level 0 coarsened by ``2**k``; levels are added while the current level is wider
than :data:`MAX_TOP_WIDTH` pixels, so the coarsest level is at most 1024 px wide. A coarse pixel is
the mean of the *valid* (non-NaN) pixels of its 2 × 2 block and NaN when all four are missing. An odd
row or column at the southern or eastern edge is padded with NaN, so the coarse grid keeps the same
north-west corner and covers the whole input. Categorical variables (:data:`CATEGORICAL`) cannot be
averaged: their coarse pixel takes the first valid value of the block in the order NW, NE, SW, SE.

Pure lazy xarray/dask compute; reading and writing levels is ``catalog.store``'s job.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

MAX_TOP_WIDTH = 1024
CATEGORICAL = frozenset({"flag", "igbp"})


def level_shapes(n_lat: int, n_lon: int, max_width: int = MAX_TOP_WIDTH) -> list[tuple[int, int]]:
    """``(n_lat, n_lon)`` of every level, level 0 first, down to ``n_lon <= max_width``."""
    shapes = [(n_lat, n_lon)]
    while shapes[-1][1] > max_width:
        la, lo = shapes[-1]
        shapes.append(((la + 1) // 2, (lo + 1) // 2))
    return shapes


def _step(values: np.ndarray) -> float:
    """Grid step from the first and last centres, rounded to 12 significant digits."""
    step = (float(values[-1]) - float(values[0])) / (len(values) - 1)
    return float(f"{abs(step):.12g}")


def grid_edges(ds: xr.Dataset) -> tuple[float, float, float, float]:
    """``(west, north, dlon, dlat)`` of a regular grid with ``lat`` descending; steps positive.

    A one-pixel axis takes its step from ``attrs["resolution_lon"|"resolution_lat"]`` (default 1°).
    """
    lon, lat = ds.lon.values, ds.lat.values
    dlon = _step(lon) if lon.size > 1 else float(ds.attrs.get("resolution_lon", 1.0))
    dlat = _step(lat) if lat.size > 1 else float(ds.attrs.get("resolution_lat", dlon))
    return float(lon[0]) - dlon / 2, float(lat[0]) + dlat / 2, dlon, dlat


def _pad_even(x: da.Array) -> da.Array:
    pad = [(0, 0), (0, x.shape[1] % 2), (0, x.shape[2] % 2)]
    if any(p[1] for p in pad):
        x = da.pad(x, pad, mode="constant", constant_values=np.nan)
    return x


def _blocks(x: da.Array) -> list[da.Array]:
    x = _pad_even(x)
    return [x[:, 0::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 0::2], x[:, 1::2, 1::2]]


def nanmean_2x2(x: da.Array) -> da.Array:
    """NaN-aware mean of each 2 × 2 block of a ``(time, lat, lon)`` array (float64 sums, float32 out)."""
    total = None
    count = None
    for b in _blocks(x.astype(np.float64)):
        valid = ~da.isnan(b)
        v = da.where(valid, b, 0.0)
        total = v if total is None else total + v
        count = valid.astype(np.int8) if count is None else count + valid
    return da.where(count > 0, total / da.maximum(count, 1), np.nan).astype(np.float32)


def first_valid_2x2(x: da.Array) -> da.Array:
    """First non-NaN value of each 2 × 2 block (NW, NE, SW, SE) of a ``(time, lat, lon)`` array."""
    out = None
    for b in _blocks(x):
        out = b if out is None else da.where(da.isnan(out), b, out)
    return out.astype(np.float32)


def coarsen_2x2(ds: xr.Dataset) -> xr.Dataset:
    """Next pyramid level of ``ds`` (dims time, lat, lon; lat descending), lazily.

    Coordinates are recomputed from the north-west corner so they stay exact cell centres.
    """
    west, north, dlon, dlat = grid_edges(ds)
    n_lat, n_lon = (ds.sizes["lat"] + 1) // 2, (ds.sizes["lon"] + 1) // 2
    lat = north - (np.arange(n_lat) + 0.5) * 2 * dlat
    lon = west + (np.arange(n_lon) + 0.5) * 2 * dlon
    out = xr.Dataset(
        coords={"time": ds.time, "lat": ("lat", lat, ds.lat.attrs), "lon": ("lon", lon, ds.lon.attrs)}
    )
    for name, var in ds.data_vars.items():
        data = var.transpose("time", "lat", "lon").data
        if not isinstance(data, da.Array):
            data = da.from_array(data, chunks=(1, -1, -1))
        reduce = first_valid_2x2 if name in CATEGORICAL else nanmean_2x2
        out[name] = (("time", "lat", "lon"), reduce(data), dict(var.attrs))
    out.attrs = dict(ds.attrs)
    out.attrs["resolution_lon"] = 2 * dlon
    out.attrs["resolution_lat"] = 2 * dlat
    return out
