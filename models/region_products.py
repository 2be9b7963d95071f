"""A per-block computation over a region, run as Dask tasks into a new catalog product.

The blocks (:mod:`models.block_tasks`) write into a scratch Zarr store in the data directory's
``tmp/``; only when every block is written is the store handed to :func:`catalog.store.write_product`
(pyramid, atomic registration); a cancel or a failure registers nothing, and the scratch store is
removed either way. Prediction (:mod:`models.predict`) and explanation maps
(:mod:`models.explain_map`) are such computations.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import dask.array as da
import numpy as np
import xarray as xr

from catalog import settings, store
from models import block_tasks


@dataclass(frozen=True)
class Output:
    """One output variable: its attributes, stored dtype and the value of pixels never written."""

    attrs: dict
    dtype: str = "float32"
    fill: float | int = np.nan


def run_into_product(
    grid: xr.Dataset,
    blocks: list[block_tasks.Block],
    block_size: tuple[int, int, int],
    compute_block: Callable,
    forests,
    block_args: Callable[[block_tasks.Block], tuple],
    outputs: dict[str, Output],
    *,
    name: str,
    title: str,
    attrs: dict,
    provenance: dict,
    synthetic: bool,
    progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    summarise: Callable[[xr.Dataset], dict] | None = None,
) -> str:
    """Compute ``compute_block(forests, arrays, *block_args(block))`` (a dict of the ``outputs``'
    arrays) for every block of ``grid`` and register the result as product ``name``; returns where
    it was computed (recorded in the provenance as ``computed_on``, beside ``created``, the time the
    blocks were done; ``summarise(result)``, given the computed dataset before registration, adds its
    dict to the provenance: counts over the whole product). Raises
    :class:`block_tasks.Cancelled` on a cancel, with nothing registered."""
    nt, ny, nx = (grid.sizes[d] for d in ("time", "lat", "lon"))
    scratch = settings.data_dir() / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    store.clean_stale(scratch)  # left by a worker that was killed mid-job
    tmp = store.temp_dir(scratch, name)
    template = xr.Dataset(
        {
            v: (("time", "lat", "lon"), da.full((nt, ny, nx), o.fill, dtype=o.dtype, chunks=block_size))
            for v, o in outputs.items()
        },
        coords={"time": grid.time.values, "lat": grid.lat.values, "lon": grid.lon.values},
    )
    try:
        template.to_zarr(tmp, compute=False, mode="w", consolidated=False)
        tasks = block_tasks.block_tasks(
            compute_block, block_tasks.share(forests), grid, blocks, block_args, str(tmp.resolve())
        )
        computed_on = block_tasks.run(tasks, progress=progress, should_cancel=should_cancel)
        if should_cancel is not None and should_cancel():
            raise block_tasks.Cancelled("cancelled before registering")
        result = xr.open_zarr(tmp, consolidated=False)
        for v, o in outputs.items():
            result[v].attrs = dict(o.attrs)
        result.attrs = {"title": title, **attrs}
        if summarise is not None:
            provenance = {**provenance, **summarise(result)}
        store.write_product(
            result,
            name,
            provenance={
                **provenance,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "computed_on": computed_on,
            },
            synthetic=synthetic,
            mode="create",
            title=title,
            kind="flux",
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return computed_on
