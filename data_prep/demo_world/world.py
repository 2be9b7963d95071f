"""The simulated world: the whole model at land points (:class:`PointWorld`) and on a regular grid
(:class:`GridWorld`, chunked over cells when only a period is kept)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_prep.demo_world.grid import grid_centres, quantize
from data_prep.demo_world.land import land_mask
from data_prep.demo_world.spec import GLOBE
from data_prep.demo_world.static import StaticFields
from data_prep.demo_world.surface import land_surface
from data_prep.demo_world.weather import weather

CHUNK_POINTS = 40_000  # land cells in memory at once when only a period is kept (≈ 1.4 GB peak)
# Threads simulating parts of the cells side by side: numpy releases the GIL in its loops, so two
# threads took the full world from 13 s to about 8 s on 2 cores (same values: cells are independent).
WORKERS = max(1, min(2, os.cpu_count() or 1))


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

    The cells are run in parts on :data:`WORKERS` threads. With ``period`` only those days are kept:
    each part (whole year, spin-up included; :data:`CHUNK_POINTS` cells in memory at once) is cut to
    the period, so memory follows the period, not the year. Cells are independent, so the values are
    those of one run over all cells.
    """
    lat, lon = grid_centres(res, bbox)
    land = land_mask(lat, lon)
    iy, ix = np.nonzero(land)
    if period is None:
        step = -(-iy.size // WORKERS)
    else:  # the chunks run WORKERS at a time: together they hold CHUNK_POINTS cells
        step = max(1, CHUNK_POINTS // WORKERS)

    def run(i: int) -> PointWorld:
        part = simulate_points(static, lat[iy[i : i + step]], lon[ix[i : i + step]], year)
        if period is not None:
            part = part.period(*period)
            part.series = {k: v.copy() for k, v in part.series.items()}  # drop the rest of the year
        return part

    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="demo-world") as pool:
        parts = list(pool.map(run, range(0, iy.size, step)))
    if len(parts) == 1:
        return GridWorld(lat, lon, land, parts[0])
    points = PointWorld(
        parts[0].time,
        lat[iy],
        lon[ix],
        {k: np.concatenate([p.static[k] for p in parts]) for k in parts[0].static},
        {k: np.concatenate([p.series.pop(k) for p in parts], axis=1) for k in list(parts[0].series)},
    )  # each variable's parts are freed once joined
    return GridWorld(lat, lon, land, points)


def world_res(world: GridWorld) -> float:
    return float(abs(world.lat[0] - world.lat[1]))
