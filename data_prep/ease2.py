"""EASE-Grid 2.0 global grids (EPSG:6933, cylindrical equal-area on WGS 84) used by SMAP.

Published grid definitions (Brodzik et al. 2012, ISPRS Int. J. Geo-Inf. 1:32; NSIDC EASE-Grid 2.0
format description): the global grid is centred on (0, 0) with cells of 36032.220840584 m (M36,
964 x 406) or 9008.055210146 m (M09, 3856 x 1624), i.e. x in ±17367530.445 m and y in ±7314540.831 m
(about ±85.044° latitude). Cell (row, col) has its centre at x = (col + 0.5 - n_cols/2) * size,
y = (n_rows/2 - row - 0.5) * size; because the projection is equal-area, row latitudes are not
evenly spaced. Coordinates are converted with PROJ (pyproj), not an approximation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pyproj

from catalog.errors import InputError


@dataclass(frozen=True)
class Ease2Grid:
    name: str
    cell_size: float  # metres
    n_rows: int
    n_cols: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_rows, self.n_cols)

    @property
    def y_max(self) -> float:
        return self.n_rows / 2 * self.cell_size

    @property
    def x_min(self) -> float:
        return -self.n_cols / 2 * self.cell_size


M36 = Ease2Grid("M36", 36032.220840584, 406, 964)
M09 = Ease2Grid("M09", 9008.055210146, 1624, 3856)
GRIDS = {g.name: g for g in (M36, M09)}


def grid(name: str) -> Ease2Grid:
    """The global EASE2 grid called ``name`` ("M36" or "M09")."""
    try:
        return GRIDS[name]
    except KeyError:
        raise InputError(f"unknown EASE-Grid 2.0 grid {name!r}; known: {', '.join(GRIDS)}") from None


def grid_for_shape(shape: tuple[int, ...]) -> Ease2Grid | None:
    """The global grid whose (rows, cols) is ``shape``, or None."""
    return next((g for g in GRIDS.values() if g.shape == tuple(shape)), None)


@cache
def _to_lonlat() -> pyproj.Transformer:
    return pyproj.Transformer.from_crs("EPSG:6933", "EPSG:4326", always_xy=True)


@cache
def _from_lonlat() -> pyproj.Transformer:
    return pyproj.Transformer.from_crs("EPSG:4326", "EPSG:6933", always_xy=True)


def row_latitudes(g: Ease2Grid) -> np.ndarray:
    """Latitude (degrees north) of the centre of each row, north to south."""
    y = g.y_max - (np.arange(g.n_rows) + 0.5) * g.cell_size
    _, lat = _to_lonlat().transform(np.zeros_like(y), y)
    return np.asarray(lat)


def column_longitudes(g: Ease2Grid) -> np.ndarray:
    """Longitude (degrees east) of the centre of each column, west to east."""
    x = g.x_min + (np.arange(g.n_cols) + 0.5) * g.cell_size
    lon, _ = _to_lonlat().transform(x, np.zeros_like(x))
    return np.asarray(lon)


def rows_for_latitudes(g: Ease2Grid, lat) -> np.ndarray:
    """Row of the cell containing each latitude; -1 outside the grid (beyond about ±85.04°)."""
    lat = np.asarray(lat, dtype=float)
    _, y = _from_lonlat().transform(np.zeros_like(lat), lat)
    row = np.floor((g.y_max - np.asarray(y)) / g.cell_size)
    return np.where((row >= 0) & (row < g.n_rows), row, -1).astype(np.int64)


def columns_for_longitudes(g: Ease2Grid, lon) -> np.ndarray:
    """Column of the cell containing each longitude (wrapped to -180…180)."""
    lon = (np.asarray(lon, dtype=float) + 180.0) % 360.0 - 180.0
    x, _ = _from_lonlat().transform(lon, np.zeros_like(lon))
    col = np.floor((np.asarray(x) - g.x_min) / g.cell_size)
    return np.clip(col, 0, g.n_cols - 1).astype(np.int64)
