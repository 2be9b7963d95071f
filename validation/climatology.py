"""Climatology, anomaly and seasonal-mean maps of a ``(time, lat, lon)`` product (Giovanni's
"time-averaged", "seasonal" and "anomaly" maps).

- monthly climatology: c(m, y, x) = mean of the valid values of calendar month m over all years;
- anomalies: a(t) = v(t) − c(month of t);
- seasonal means: the mean of all valid values of a season's months (DJF, MAM, JJA, SON) over all
  years (a December counts with the DJF that follows it, which does not change a pooled mean).

Means skip missing values; a cell with none in a month or season is NaN. Reference for the
anomaly convention: WMO (2017), Guidelines on the calculation of climate normals, WMO-No. 1203.
"""

from __future__ import annotations

import xarray as xr

from catalog.errors import InputError
from validation import seasons


def _timed(da: xr.DataArray) -> xr.DataArray:
    if "time" not in da.dims:
        raise InputError(f"climatology: the product has no 'time' dimension (has {da.dims})")
    return da


def monthly_climatology(da: xr.DataArray) -> xr.DataArray:
    """Mean of each calendar month over the years; dim ``month`` (1–12, only months present)."""
    return _timed(da).groupby("time.month").mean("time", skipna=True)


def anomalies(da: xr.DataArray, climatology: xr.DataArray | None = None) -> xr.DataArray:
    """``da`` minus the climatology of its calendar month (its own :func:`monthly_climatology` by default)."""
    da = _timed(da)
    clim = monthly_climatology(da) if climatology is None else climatology
    missing = sorted(set(da["time.month"].values.tolist()) - set(clim["month"].values.tolist()))
    if missing:
        raise InputError(f"climatology: no climatology for month(s) {missing}")
    return (da.groupby("time.month") - clim).drop_vars("month")


def seasonal_means(da: xr.DataArray) -> xr.DataArray:
    """Mean of each season's values over all years; dim ``season`` in the order DJF, MAM, JJA, SON."""
    da = _timed(da)
    label = xr.DataArray(seasons.season_of(da["time"].values), dims="time", coords={"time": da["time"]})
    means = da.groupby(label.rename("season")).mean("time", skipna=True)
    return means.reindex(season=list(seasons.SEASONS))
