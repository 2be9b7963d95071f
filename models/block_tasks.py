"""Blocks of a regional prediction as Dask tasks, on whichever scheduler is current.

Each block is one task that reads its inputs (the lazy feature cubes' slice: a dependency of the
task, so on a ``dask.distributed`` cluster the read happens on the worker that runs it), predicts
with the packed forests and writes its ``region`` of the output Zarr store; no array travels
back. Writes of different blocks touch different Zarr chunks, so blocks may run in any order, in
parallel, and again (a retried block rewrites the same region with the same values).

Two executors give the same results:

* **threads** (default, no cluster): one block at a time in a background thread, each read with
  Dask's threaded scheduler and predicted with ``n_jobs`` kernel threads — memory bounded by one block;
* **distributed**: with a ``dask.distributed`` client current (``$FLUXLENS_DASK_SCHEDULER``, see
  :func:`models.cluster.dask_scheduler`), every block is submitted to the cluster; the packed forests
  are scattered to every worker once (``broadcast``) and each worker builds the C kernel itself on
  first use (:func:`models.forest.kernel`); a block whose worker dies is recomputed elsewhere
  (``retries``).

Progress comes from the completed futures, in completion order; a cancel request cancels every
future not yet finished and raises :class:`Cancelled` (the caller registers nothing).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dask
import numpy as np
import xarray as xr

from catalog.errors import FluxLensError

RETRIES = 2  # a block lost with its worker is recomputed up to this many times
POLL_S = 0.5  # how often a cancel request is looked at while blocks run


class Cancelled(FluxLensError):
    """The run was cancelled; blocks already written are left in the scratch store."""


@dataclass(frozen=True)
class Block:
    """One block: its number and its positional ``region`` (dim → slice) in the output."""

    index: int
    region: dict[str, slice]


def current_client():
    """The current ``dask.distributed`` client, or None (the local threaded scheduler)."""
    try:
        from distributed import get_client
    except ImportError:  # pragma: no cover - distributed is a dependency
        return None
    try:
        return get_client()
    except ValueError:
        return None


def share(forests):
    """``forests`` as the block tasks should take them: on a cluster, scattered to every worker once
    (each task then refers to the worker's copy instead of carrying its own); else as they are."""
    client = current_client()
    if client is None:
        return forests
    return client.scatter([forests], broadcast=True, hash=False)[0]


def _write(out: dict[str, np.ndarray], coords_region: dict[str, slice], store: str) -> None:
    ds = xr.Dataset({v: (("time", "lat", "lon"), a) for v, a in out.items()})
    ds.to_zarr(store, region=coords_region, consolidated=False)


def _block_task(compute_block: Callable, forests, arrays: dict, args: tuple, region: dict, store: str) -> int:
    """Task body: predict one block from its (already read) ``arrays`` and write its region."""
    _write(compute_block(forests, arrays, *args), region, store)
    return 0


def block_tasks(
    compute_block: Callable,
    forests,
    inputs: xr.Dataset,
    blocks: Sequence[Block],
    block_args: Callable[[Block], tuple],
    store: str,
) -> list:
    """One ``dask.delayed`` task per block: ``compute_block(forests, arrays, *block_args(block))``
    (arrays: the block's input variables as numpy, read as the task's dependency) written to the
    block's region of the Zarr ``store``."""
    tasks = []
    for block in blocks:
        sub = inputs.isel(block.region)
        arrays = {v: sub[v].data for v in sub.data_vars}
        tasks.append(
            dask.delayed(_block_task, pure=False)(
                compute_block,
                forests,
                arrays,
                block_args(block),
                block.region,
                store,
                dask_key_name=f"predict-block-{block.index}",
            )  # fmt: skip
        )
    return tasks


def run(
    tasks: list,
    *,
    progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> str:
    """Run the block tasks on the current scheduler (see the module docstring); returns which one.
    Raises :class:`Cancelled` when ``should_cancel()`` turns true before all are done, and the
    first failure of a block (after its retries) otherwise; either way no block is left running."""
    client = current_client()
    if client is not None:
        futures = client.compute(tasks, retries=RETRIES)
        _follow(futures, _distributed_wait, lambda fs: client.cancel(fs, force=True), progress, should_cancel)
        return f"dask.distributed cluster at {client.scheduler.address}"
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="predict-block") as pool:
        futures = [pool.submit(dask.compute, t, scheduler="threads") for t in tasks]
        _follow(futures, _local_wait, lambda fs: [f.cancel() for f in fs], progress, should_cancel)
    return "dask local threaded scheduler"


def _local_wait(pending: set) -> tuple[set, set]:
    done, not_done = concurrent.futures.wait(pending, timeout=POLL_S, return_when="FIRST_COMPLETED")
    return set(done), set(not_done)


def _distributed_wait(pending: set) -> tuple[set, set]:
    from distributed import wait

    try:
        result = wait(list(pending), timeout=POLL_S, return_when="FIRST_COMPLETED")
    except TimeoutError:
        return set(), pending
    return set(result.done), set(result.not_done)


def _follow(futures, wait_some, cancel, progress, should_cancel) -> None:
    """Wait for ``futures``, reporting each completion; cancel the rest on a request or a failure."""
    pending, done, total = set(futures), 0, len(futures)
    try:
        while pending:
            if should_cancel is not None and should_cancel():
                raise Cancelled(f"cancelled after {done} of {total} blocks")
            finished, pending = wait_some(pending)
            for f in finished:
                f.result()  # a failed block raises here
                done += 1
                if progress is not None:
                    progress(done, total)
    except BaseException:
        cancel(list(pending))
        raise
