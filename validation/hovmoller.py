"""Hovmöller diagrams of a ``(time, lat, lon)`` product over a lon/lat box (as NASA Giovanni draws them).

- time × latitude: for each latitude row, the mean over the box's longitudes (cells of one row have
  equal areas, so the plain mean of the valid cells is the area-weighted mean);
- time × longitude: for each longitude column, the mean over the box's latitudes weighted by
  cos(latitude), the cells' relative areas (:func:`catalog.geo.cos_lat_weights`).

Missing cells are left out of a mean; a row or column without valid cells is NaN.
Reference: Hovmöller (1949), The trough-and-ridge diagram, Tellus 1:62.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from catalog.errors import InputError
from catalog.geo import cos_lat_weights

AXES = ("lat", "lon")


def box(da: xr.DataArray, lon_range, lat_range) -> xr.DataArray:
    """The cells whose centres lie in [lon_min, lon_max] × [lat_min, lat_max] (coordinates in any order)."""
    (w, e), (s, n) = sorted(map(float, lon_range)), sorted(map(float, lat_range))
    for dim in ("time", "lat", "lon"):
        if dim not in da.dims:
            raise InputError(f"hovmoller: the product has no dimension {dim!r} (has {da.dims})")
    inside = da.sel(lon=(da["lon"] >= w) & (da["lon"] <= e), lat=(da["lat"] >= s) & (da["lat"] <= n))
    if inside.sizes["lat"] == 0 or inside.sizes["lon"] == 0:
        raise InputError(f"hovmoller: no cell centre in lon {w}…{e}, lat {s}…{n}")
    return inside


def hovmoller(da: xr.DataArray, lon_range, lat_range, *, along: str = "lat") -> xr.DataArray:
    """Time × ``along`` (``"lat"`` or ``"lon"``) means over the box; dims ``(time, along)``."""
    if along not in AXES:
        raise InputError(f"hovmoller: along {along!r} is not one of {AXES}")
    cells = box(da, lon_range, lat_range)
    if along == "lat":
        out = cells.mean("lon", skipna=True)
    else:
        w = xr.DataArray(cos_lat_weights(cells["lat"].values), dims="lat", coords={"lat": cells["lat"]})
        out = cells.weighted(w).mean("lat", skipna=True)
    out = out.transpose("time", along).astype(np.result_type(da.dtype, np.float32))
    out.attrs = {
        **da.attrs,
        "hovmoller": f"time x {along}",
        "lon_range": [*lon_range],
        "lat_range": [*lat_range],
    }
    return out
