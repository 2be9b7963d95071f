"""Where Dask computes: the local threaded scheduler, or an existing ``dask.distributed`` cluster.

``$FLUXLENS_DASK_SCHEDULER`` (or a command's ``--scheduler``) names the cluster's scheduler address
(``tcp://host:8786``); the job worker and ``fluxlens predict`` both compute inside
:func:`dask_scheduler`, and :mod:`models.block_tasks` sends prediction blocks to the cluster it
makes current. A cluster is started apart (``dask scheduler`` and ``dask worker``, or
dask-jobqueue on a batch system: see docs/scaling.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dask

from catalog import settings

ENV_DASK_SCHEDULER = "FLUXLENS_DASK_SCHEDULER"


@contextlib.contextmanager
def dask_scheduler(address: str | None = None) -> Iterator[str]:
    """Make Dask compute on the cluster at ``address`` (default ``$FLUXLENS_DASK_SCHEDULER``) or,
    without one, on the local threaded scheduler. Yields a description of the choice."""
    address = address or settings.current().text(ENV_DASK_SCHEDULER) or None
    if address:
        from distributed import Client

        with Client(address, set_as_default=True) as client:
            yield f"dask.distributed cluster at {client.scheduler.address}"
    else:
        with dask.config.set(scheduler="threads"):
            yield "dask local threaded scheduler"
