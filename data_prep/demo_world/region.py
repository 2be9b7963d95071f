"""The GSSM1km-like 1 km region: the coarse ``ssm`` interpolated bilinearly, with a static texture /
topographic-wetness pattern and rain-cell imprints that dry out in a few days."""

from __future__ import annotations

import numpy as np
import xarray as xr

from data_prep.demo_world.grid import fill_ocean, grid_centres, interpolation_matrix, quantize
from data_prep.demo_world.land import land_mask
from data_prep.demo_world.noise import region_noise, rng_for
from data_prep.demo_world.spec import DemoSpec
from data_prep.demo_world.static import REFERENCE_RES
from data_prep.demo_world.world import GridWorld, world_res


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

    texture = 0.7 * region_noise("texture", lat, lon, 0.25) + 0.5 * region_noise("texture", lat, lon, 0.06)
    wetness = region_noise("wetness", lat, lon, 0.03)
    cells = [region_noise(f"cells{k}", lat, lon, 0.15) for k in range(4)]
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
