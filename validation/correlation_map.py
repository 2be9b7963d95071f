"""Per-pixel temporal correlation map between two products on the same grid (Giovanni's
"correlation map"): at each cell, Pearson's R over the time steps where both are valid,

    R = Σ (a − ā)(b − b̄) / sqrt(Σ (a − ā)² Σ (b − b̄)²)   (means over the common valid steps),

NaN where fewer than ``min_n`` common steps remain or either series is constant there.
Reference: Pearson (1895); the pairwise-complete convention of pytesmo / Gruber et al. 2020.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from catalog.errors import InputError
from validation.metrics import MIN_PAIRS


def correlation_map(
    a: xr.DataArray, b: xr.DataArray, *, dim: str = "time", min_n: int = MIN_PAIRS
) -> xr.Dataset:
    """Variables ``r`` (Pearson R per cell) and ``n`` (common valid steps) over the non-``dim`` dims."""
    if dim not in a.dims or dim not in b.dims:
        raise InputError(f"correlation map: both products need a {dim!r} dimension ({a.dims}, {b.dims})")
    try:
        a, b = xr.align(a, b, join="inner")
    except ValueError as err:
        raise InputError(f"correlation map: the products cannot be aligned ({err})") from err
    for d in a.dims:
        if d != dim and a.sizes[d] == 0:
            raise InputError(f"correlation map: the products share no {d!r} coordinate; regrid one first")
    both = a.notnull() & b.notnull()
    a, b = a.where(both), b.where(both)
    n = both.sum(dim)
    da, db = a - a.mean(dim), b - b.mean(dim)
    sab, saa, sbb = (da * db).sum(dim), (da**2).sum(dim), (db**2).sum(dim)
    varies = ((a.max(dim) - a.min(dim)) > 0) & ((b.max(dim) - b.min(dim)) > 0)
    den = np.sqrt(saa * sbb)
    r = (sab / den.where(den > 0)).where(varies).clip(-1.0, 1.0).where(n >= max(int(min_n), 3))
    return xr.Dataset({"r": r.astype("float64"), "n": n})
