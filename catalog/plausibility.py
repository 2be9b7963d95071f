"""Plausibility of values at ingest: each canonical variable's valid range (``catalog.variables``).

A value outside its range is a decoding or unit error (a corrupt tile, a missing scale factor,
kg m-2 taken for m3 m-3), so by default it fails the write with the count and the first offending
position; with ``out_of_range="mask"`` such values become NaN and their count goes into the
provenance. NaN is missing, never out of range; ±inf is out of range. Pure lazy dask: the counts
are computed in the same pass that writes level 0 (see ``catalog.products``).
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from catalog.errors import InputError
from catalog.variables import valid_range

OUT_OF_RANGE_MODES = ("fail", "mask")


def ranges(ds: xr.Dataset) -> dict[str, tuple[float, float]]:
    """{variable: (valid_min, valid_max)} for the variables of ``ds`` that have a range in their
    stored units."""
    out = {}
    for v in ds.data_vars:
        r = valid_range(str(v), ds[v].attrs.get("units"))
        if r is not None:
            out[str(v)] = r
    return out


def outside(data, lo: float, hi: float):
    """Boolean (lazy) array: True where ``data`` is outside [lo, hi] (NaN is not)."""
    return (data < lo) | (data > hi)


def check_mode(mode: str) -> None:
    if mode not in OUT_OF_RANGE_MODES:
        raise InputError(f"bad out_of_range {mode!r}; use one of {OUT_OF_RANGE_MODES}")


def prepare(ds: xr.Dataset, mode: str) -> tuple[xr.Dataset, dict]:
    """``ds`` with its valid-range attributes (masked where ``mode == "mask"``) and the lazy
    reductions ``{variable: (count, first flat index, min, max)}`` over the original values."""
    check_mode(mode)
    ds = ds.copy()
    tasks = {}
    for v, (lo, hi) in ranges(ds).items():
        data = ds[v].data
        bad = outside(data, lo, hi)
        tasks[v] = (bad.sum(), da.argmax(bad.ravel()) if isinstance(bad, da.Array) else np.argmax(bad))
        attrs = {**ds[v].attrs, "valid_min": lo, "valid_max": hi}
        if mode == "mask":
            ds[v] = ds[v].where(~xr.DataArray(bad, dims=ds[v].dims))
        ds[v].attrs = attrs
    return ds, tasks


def verdict(name: str, ds: xr.Dataset, results: dict, mode: str) -> dict[str, int]:
    """Raise :class:`InputError` for out-of-range values (mode ``fail``), else return the count
    masked per variable (only variables with any)."""
    counts = {v: int(c) for v, (c, _first) in results.items() if int(c)}
    if not counts or mode == "mask":
        return counts
    parts = []
    for v, n in counts.items():
        first = int(results[v][1])
        t, i, j = np.unravel_index(first, ds[v].shape)
        value = float(ds[v].isel(time=int(t), lat=int(i), lon=int(j)).values)
        lo, hi = ranges(ds)[v]
        parts.append(
            f"{v}: {n:,} value(s) outside {lo:g}…{hi:g} {ds[v].attrs.get('units', '')}, first "
            f"{value:g} at time {str(ds.time.values[t])[:10]}, lat {float(ds.lat[i]):.5f}, "
            f"lon {float(ds.lon[j]):.5f}"
        )
    raise InputError(
        f"product {name!r}: implausible values ({'; '.join(parts)}). A corrupt file or a unit error? "
        "Nothing was written; --mask-out-of-range stores them as missing instead"
    )
