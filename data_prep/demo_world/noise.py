"""Smooth, reproducible N(0, 1) noise: cubic B-splines on coarse knot grids (global, periodic in
longitude, AR(1) in time; or regional), unit variance everywhere, seeded per stream name."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from data_prep.demo_world.spec import SEED


def rng_for(name: str) -> np.random.Generator:
    """A generator seeded by the world seed and a stream name (independent, reproducible)."""
    return np.random.default_rng([SEED, zlib.crc32(name.encode())])


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


def region_noise(name: str, lat: np.ndarray, lon: np.ndarray, spacing: float) -> np.ndarray:
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
