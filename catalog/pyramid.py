"""Multiscale pyramid arithmetic: level shapes and the 2 × 2 coarsening of a gridded product.

Level ``k`` is level 0 coarsened by ``2**k``; levels are added while the current level is wider
than :data:`MAX_TOP_WIDTH` pixels, so the coarsest level is at most 1024 px wide. A coarse pixel is
the mean of the *valid* (non-NaN) pixels of its 2 × 2 block and NaN when all four are missing. An odd
row or column at the southern or eastern edge is padded with NaN, so the coarse grid keeps the same
north-west corner and covers the whole input. Categorical variables (:data:`CATEGORICAL`) cannot be
averaged (nor can CF flag variables, those with ``flag_values``): their coarse pixel takes the first
valid value of the block in the order NW, NE, SW, SE.

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


def _mean_kernel(block: np.ndarray) -> np.ndarray:
    """NaN-aware mean of each 2 x 2 block of a (time, 2m, 2n) float32 numpy array.

    At most four values are summed, so float32 sums stay within a few ulp of the exact mean.
    """
    parts = [block[:, i::2, j::2] for i in (0, 1) for j in (0, 1)]
    total = np.zeros(parts[0].shape, np.float32)
    count = np.zeros(parts[0].shape, np.float32)
    for p in parts:
        valid = ~np.isnan(p)
        np.add(total, p, out=total, where=valid)
        count += valid
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count  # 0 / 0 → NaN where the block has no valid value


def _first_valid_kernel(block: np.ndarray) -> np.ndarray:
    """First non-NaN value of each 2 x 2 block (NW, NE, SW, SE) of a (time, 2m, 2n) numpy array."""
    t, h, w = block.shape
    r = block.reshape(t, h // 2, 2, w // 2, 2)
    out = r[:, :, 0, :, 0].copy()
    for di, dj in ((0, 1), (1, 0), (1, 1)):
        out = np.where(np.isnan(out), r[:, :, di, :, dj], out)
    return out.astype(np.float32)


def _apply_2x2(x: da.Array, kernel) -> da.Array:
    """Apply a 2 x 2 block kernel over a (time, lat, lon) dask array, padding odd edges with NaN."""
    pad = [(0, 0), (0, x.shape[1] % 2), (0, x.shape[2] % 2)]
    if any(p[1] for p in pad):
        x = da.pad(x, pad, mode="constant", constant_values=np.nan)
    # every block must hold whole 2 x 2 cells: make the spatial chunks even
    even = [tuple(c + (c % 2) if i < len(cs) - 1 else c for i, c in enumerate(cs)) for cs in x.chunks[1:]]
    even = [_fix_total(cs, n) for cs, n in zip(even, x.shape[1:], strict=True)]
    x = x.rechunk((x.chunks[0], *even))
    out_chunks = (x.chunks[0], tuple(c // 2 for c in x.chunks[1]), tuple(c // 2 for c in x.chunks[2]))
    return da.map_blocks(kernel, x, chunks=out_chunks, dtype=np.float32)


def _fix_total(chunks: tuple[int, ...], total: int) -> tuple[int, ...]:
    """Even chunk sizes summing to ``total`` (even): trim the excess from the last chunks."""
    out, acc = [], 0
    for c in chunks:
        c = min(c, total - acc)
        if c > 0:
            out.append(c)
            acc += c
    if acc < total:
        out.append(total - acc)
    return tuple(out)


def nanmean_2x2(x: da.Array) -> da.Array:
    """NaN-aware mean of each 2 × 2 block of a ``(time, lat, lon)`` array (float32)."""
    return _apply_2x2(x.astype(np.float32), _mean_kernel)


def first_valid_2x2(x: da.Array) -> da.Array:
    """First non-NaN value of each 2 × 2 block (NW, NE, SW, SE) of a ``(time, lat, lon)`` array."""
    return _apply_2x2(x, _first_valid_kernel)


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
        reduce = first_valid_2x2 if name in CATEGORICAL or "flag_values" in var.attrs else nanmean_2x2
        out[name] = (("time", "lat", "lon"), reduce(data), dict(var.attrs))
    out.attrs = dict(ds.attrs)
    out.attrs["resolution_lon"] = 2 * dlon
    out.attrs["resolution_lat"] = 2 * dlat
    return out
