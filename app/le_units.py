"""LE in the units the user asked for: W m-2 as stored, or evaporation in mm d-1
(:mod:`catalog.evaporation`, E = LE·86400/λ(T)), for the map, the series, Profile, Compare and the
exports. H and every other variable stay in their stored units.

The air temperature behind λ(T): the product's own ``ta``, else the first catalog product holding
``ta`` that covers the product's region (e.g. the forcing an emulator product was predicted from),
taken at the same time steps (same day, or the mean over the same month, year, period or days) and
in the nearest cell; 20 °C where it has no value (outside its grid, no step on that day, or no such
product at all). :class:`Conversion` says which on screen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from app import compute, data, styles
from catalog import evaporation
from catalog.evaporation import MM_D

LE = "le"


def converts(variable: str, units: str) -> bool:
    """Whether ``variable`` is shown converted: LE asked for in mm d-1."""
    evaporation.check_units(units)
    return variable == LE and units == MM_D


def ta_product(name: str) -> str | None:
    """The product whose ``ta`` gives λ(T) for product ``name``: itself, else the first product with
    ``ta`` whose bounding box contains ``name``'s; None when there is none."""
    info = data.info(name)
    if "ta" in info.variables:
        return name
    w, s, e, n = info.bbox
    for p in data.list_products():
        pw, ps, pe, pn = p.bbox
        if "ta" in p.variables and pw <= w and ps <= s and pe >= e and pn >= n:
            return p.name
    return None


@dataclass(frozen=True)
class Conversion:
    """What the values shown are: ``units``, the axis ``label`` and, when LE was converted,
    ``note`` (the temperature behind λ)."""

    units: str
    label: str
    note: str = ""


def describe(variable: str, info, units: str, source: str | None) -> Conversion:
    """The units, label and λ note of ``variable`` of product ``info`` shown in ``units``;
    ``source`` is the :func:`ta_product` (None: 20 °C fixed)."""
    if not converts(variable, units):
        return Conversion(styles.units(variable, info), styles.label(variable, info))
    where = None if source is None else f"ta of {source} (same time steps, nearest cell)"
    return Conversion(MM_D, f"{evaporation.le_label(MM_D)} [{LE}]", evaporation.lambda_note(where))


def on_grid(ta: xr.DataArray, like: xr.DataArray) -> xr.DataArray:
    """``ta`` (lat, lon[, time]) at the cells of ``like``: the value of the ``ta`` cell nearest each
    cell centre, NaN farther than half a ``ta`` cell (outside its grid)."""
    tol = {d: 0.5 * compute.grid_step(ta, d) * (1 + 1e-6) for d in ("lat", "lon")}
    out = ta
    for dim in ("lat", "lon"):
        target = like[dim].values
        if ta.sizes[dim] == 1:
            keep = np.abs(target - float(ta[dim].values[0])) <= tol[dim]
            out = out.isel({dim: np.zeros(target.size, dtype=int)}).assign_coords({dim: target})
            out = out.where(xr.DataArray(keep, coords={dim: target}, dims=dim))
        else:
            out = out.reindex({dim: target}, method="nearest", tolerance=tol[dim])
    return out


def _level_like(name: str, step: float) -> int:
    """The coarsest pyramid level of ``name`` still at least as fine as ``step`` degrees (level 0
    when none is)."""
    fine = [int(lev["level"]) for lev in data.info(name).levels if float(lev["resolution"]) <= step * 1.001]
    return max(fine) if fine else 0


def field_ta(source: str, like: xr.DataArray, *, agg=None, date=None, period=None, days=None):
    """Air temperature (°C) of ``source`` on the cells of the 2-D field ``like``: over the same
    aggregation (``agg``, ``date``, ``period``) or the same ``days``; None when ``source`` has no
    time step there."""
    times = data.time_axis(source)
    if days is not None:
        wanted = pd.DatetimeIndex(days).normalize().intersection(compute.step_days(times))
        if times.size and wanted.size != pd.DatetimeIndex(days).size:
            return None
    elif times.size and compute.steps_in(times, agg, date, period).empty:
        return None
    step = min(compute.grid_step(like, "lat"), compute.grid_step(like, "lon"))
    level = _level_like(source, step)
    lon, lat = like["lon"].values, like["lat"].values
    pad_x, pad_y = compute.grid_step(like, "lon"), compute.grid_step(like, "lat")
    x_range = (float(lon.min()) - pad_x, float(lon.max()) + pad_x)
    y_range = (float(lat.min()) - pad_y, float(lat.max()) + pad_y)
    if days is not None:
        ta = data.field_on_days(source, "ta", level, days, x_range, y_range)
    else:
        ta = data.field(source, "ta", level, agg, date, period, x_range, y_range)
    return on_grid(ta, like)


def convert_field(
    field: xr.DataArray, name: str, variable: str, units: str, *, agg=None, date=None, period=None, days=None
) -> tuple[xr.DataArray, Conversion]:
    """A 2-D ``field`` of ``variable`` of product ``name`` in ``units`` (LE → mm d-1 with the
    product's air temperature over the same time steps), and what it now is."""
    info = data.info(name)
    if not converts(variable, units):
        return field, describe(variable, info, units, None)
    source = ta_product(name)
    ta = None if source is None else field_ta(source, field, agg=agg, date=date, period=period, days=days)
    ta = None if ta is None else ta.transpose(*field.dims)
    out = evaporation.convert_le(field, MM_D, ta).astype("float32")
    out.attrs = {**field.attrs, "units": MM_D}
    return out, describe(variable, info, units, source if ta is not None else None)


def _series_ta(source: str, series: xr.DataArray, *, point=None, bbox=None):
    """``ta`` of ``source`` at the pixel ``point`` (lon, lat) or the box mean over ``bbox``, on
    the time steps of ``series`` (NaN where it has none)."""
    if point is not None:
        info = data.info(source)
        if not data.contains(info, *point):
            return None
        ta = data.point_series(source, *point, variables=["ta"])["ta"]
    else:
        ta = data.region_series(source, bbox, variables=["ta"])["ta"]
    if "time" not in ta.dims or "time" not in series.dims:
        return ta
    days = pd.DatetimeIndex(series["time"].values).normalize()
    by_day = pd.Series(
        np.asarray(ta.values, dtype="float64"), index=pd.DatetimeIndex(ta["time"].values).normalize()
    )
    by_day = by_day[~by_day.index.duplicated()]
    return by_day.reindex(days).to_numpy()


def convert_series(
    series: xr.DataArray, name: str, variable: str, units: str, *, point=None, bbox=None
) -> tuple[xr.DataArray, Conversion, np.ndarray | None]:
    """A pixel (``point``) or box-mean (``bbox``) time series in ``units``, what it now is, and the
    air temperature (°C, per step, NaN where 20 °C was used) behind λ (None when not converted or
    no temperature product)."""
    info = data.info(name)
    if not converts(variable, units):
        return series, describe(variable, info, units, None), None
    source = ta_product(name)
    ta = None if source is None else _series_ta(source, series, point=point, bbox=bbox)
    ta_values = None if ta is None else np.asarray(ta, dtype="float64")
    out = evaporation.convert_le(series, MM_D, ta_values)
    out.attrs = {**series.attrs, "units": MM_D}
    return out, describe(variable, info, units, source if ta is not None else None), ta_values


def convert_like(values: xr.DataArray, variable: str, units: str, ta) -> xr.DataArray:
    """Another series of the same product and place (e.g. an interval bound of ``le``) in ``units``
    exactly as :func:`convert_series` converted ``variable``: with its air temperature ``ta`` (°C per
    step, NaN or None: 20 °C); unchanged when ``variable`` is not converted."""
    if not converts(variable, units):
        return values
    out = evaporation.convert_le(values, MM_D, None if ta is None else np.asarray(ta, dtype="float64"))
    out.attrs = {**values.attrs, "units": MM_D}
    return out


def convert_dataset(sub: xr.Dataset, name: str, level: int, units: str) -> tuple[xr.Dataset, str]:
    """A region export's subset with ``le`` in ``units`` (the air temperature of each time step and
    cell) and the λ note for its attributes ('' when nothing was converted)."""
    if LE not in sub.data_vars or not converts(LE, units):
        return sub, ""
    source = ta_product(name)
    ta = None
    if source is not None:
        le = sub[LE]
        ta_ds = data.open_level(source, _level_like(source, compute.grid_step(le, "lat")))["ta"]
        if "time" in le.dims and "time" in ta_ds.dims:
            ta_ds = ta_ds.reindex(time=le["time"].values, method="nearest", tolerance=pd.Timedelta(hours=1))
        ta = on_grid(ta_ds, le).transpose(*le.dims)
    out = sub.copy()
    converted = evaporation.convert_le(sub[LE], MM_D, ta)
    converted.attrs = {**sub[LE].attrs, "units": MM_D, "long_name": "evaporation (LE / λ(T))"}
    converted.attrs.pop("standard_name", None)
    for key in ("valid_min", "valid_max"):
        converted.attrs.pop(key, None)
    out[LE] = converted.astype("float32")
    note = describe(LE, data.info(name), units, source).note
    out[LE].attrs["comment"] = note
    return out, note
