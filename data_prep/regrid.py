"""Regridding of regular lat/lon fields onto another regular lat/lon grid, with rasterio (GDAL warp).

Chosen over pyresample, xESMF and odc-geo because rasterio is already a FluxLens dependency (the
GSSM1km reader), GDAL's warp implements the three methods needed on regular grids — ``average``
(area-weighted mean of the source cells overlapping a target cell, NaN left out: for coarsening),
``bilinear`` (for refining) and ``mode`` (most frequent class: for categorical layers) — and runs
per 2-D slice, so dask keeps the time axis lazy. The method is chosen per variable by
:func:`method_for` and recorded in the product's provenance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rasterio.warp
import xarray as xr
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import from_origin

from catalog.errors import InputError

WGS84 = CRS.from_epsg(4326)


@dataclass(frozen=True)
class Grid:
    """A regular lat/lon grid by cell centres: lat descending, lon ascending."""

    lat: np.ndarray
    lon: np.ndarray

    @property
    def dlat(self) -> float:
        return float(abs(self.lat[1] - self.lat[0])) if self.lat.size > 1 else float("nan")

    @property
    def dlon(self) -> float:
        return float(self.lon[1] - self.lon[0]) if self.lon.size > 1 else float("nan")

    def transform(self):
        return from_origin(self.lon[0] - self.dlon / 2, self.lat[0] + self.dlat / 2, self.dlon, self.dlat)

    def same_as(self, other: Grid) -> bool:
        return (
            self.lat.size == other.lat.size
            and self.lon.size == other.lon.size
            and np.allclose(self.lat, other.lat, atol=1e-7)
            and np.allclose(self.lon, other.lon, atol=1e-7)
        )

    def describe(self) -> str:
        return f"{self.lat.size} x {self.lon.size} px at {self.dlat:.6g} x {self.dlon:.6g} deg"


def grid_of(da: xr.DataArray | xr.Dataset) -> Grid:
    lat, lon = np.asarray(da.lat.values, float), np.asarray(da.lon.values, float)
    if lat.size < 2 or lon.size < 2:
        raise InputError(f"a grid needs at least 2 x 2 cells, got {lat.size} x {lon.size}")
    return Grid(lat, lon)


def regular_grid(
    resolution: float, bbox: tuple[float, float, float, float], like: Grid | None = None
) -> Grid:
    """Cells of ``resolution`` degrees covering ``bbox`` (W, S, E, N). Cell edges lie on multiples of
    the resolution, unless ``like`` (a grid of the same resolution) is given: then its cell centres
    are kept, so a source already at that resolution is not shifted by half a cell."""
    if not resolution > 0:
        raise InputError(f"resolution must be positive, got {resolution}")
    w, s, e, n = bbox
    if like is not None and np.isclose(like.dlon, resolution) and np.isclose(like.dlat, resolution):
        plon, plat = like.lon[0] % resolution, like.lat[0] % resolution
    else:
        plon = plat = resolution / 2
    # cells that overlap the box by more than a hair: centres within half a cell of it
    eps = 1e-6
    i0, i1 = np.ceil((w - plon) / resolution - 0.5 + eps), np.floor((e - plon) / resolution + 0.5 - eps)
    j0, j1 = np.ceil((s - plat) / resolution - 0.5 + eps), np.floor((n - plat) / resolution + 0.5 - eps)
    nx, ny = int(i1 - i0) + 1, int(j1 - j0) + 1
    if nx < 1 or ny < 1:
        raise InputError(f"bbox {tuple(bbox)} holds no cell of {resolution} deg")
    if nx * ny > 400_000_000:
        raise InputError(f"target grid of {ny} x {nx} px is too large")
    lon = plon + (i0 + np.arange(nx)) * resolution
    lat = plat + (j1 - np.arange(ny)) * resolution
    return Grid(lat, lon)


def method_for(src: Grid, dst: Grid, categorical: bool) -> str:
    """``none`` (same grid), ``mode`` (categorical), ``average`` (target cells larger) or ``bilinear``."""
    if src.same_as(dst):
        return "none"
    if categorical:
        return "mode"
    return "average" if dst.dlon * dst.dlat >= src.dlon * src.dlat * (1 - 1e-6) else "bilinear"


METHOD_TEXT = {
    "none": "none (already on the target grid)",
    "average": "area-weighted mean of the overlapping source cells, missing ones left out (GDAL 'average')",
    "bilinear": "bilinear interpolation between source cell centres (GDAL warp 'bilinear')",
    "mode": "most frequent class among the overlapping source cells (GDAL warp 'mode')",
}


def _warp2d(arr: np.ndarray, src: Grid, dst: Grid, method: str) -> np.ndarray:
    out = np.full((dst.lat.size, dst.lon.size), np.nan, dtype=np.float32)
    rasterio.warp.reproject(
        source=np.ascontiguousarray(arr, dtype=np.float32),
        destination=out,
        src_transform=src.transform(),
        src_crs=WGS84,
        dst_transform=dst.transform(),
        dst_crs=WGS84,
        resampling=getattr(Resampling, method),
        src_nodata=np.nan,
        dst_nodata=np.nan,
    )
    return out


def _warp_block(block: np.ndarray, src: Grid, dst: Grid, method: str) -> np.ndarray:
    return np.stack([_warp2d(block[t], src, dst, method) for t in range(block.shape[0])])


def regrid(da: xr.DataArray, dst: Grid, *, categorical: bool = False) -> tuple[xr.DataArray, str]:
    """``da`` (time, lat, lon) on ``dst``, lazily per time chunk; returns it and the method used."""
    src = grid_of(da)
    method = method_for(src, dst, categorical)
    if method == "none":
        return da, method
    data = da.data
    import dask.array as dsa

    if not isinstance(data, dsa.Array):
        data = dsa.from_array(data, chunks=(1, -1, -1))
    data = data.rechunk({1: -1, 2: -1})
    out = data.map_blocks(
        _warp_block, src, dst, method, dtype=np.float32, chunks=(data.chunks[0], dst.lat.size, dst.lon.size)
    )
    res = xr.DataArray(
        out, dims=("time", "lat", "lon"), coords={"time": da.time.values, "lat": dst.lat, "lon": dst.lon},
        attrs=dict(da.attrs),
        name=da.name,
    )  # fmt: skip
    return res, method
