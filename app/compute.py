"""Pure xarray/numpy computations behind the dashboard views (no I/O, no widgets).

Grids follow the project conventions: dims ``(time, lat, lon)`` or ``(lat, lon)``, ``lat``
descending, ``lon`` ascending, cell centres in degrees.
"""

from __future__ import annotations

import datashader as dsh
import numpy as np
import pandas as pd
import xarray as xr

from app import categories
from catalog.errors import InputError
from catalog.evaporation import REFERENCE_TA_C
from catalog.geo import cos_lat_mean, cos_lat_weights

AGGREGATIONS = ("day", "month", "year", "period")


def resolution(coord: xr.DataArray) -> float:
    """Absolute grid spacing of a regular 1-D coordinate (degrees)."""
    values = np.asarray(coord.values, dtype="float64")
    if values.size < 2:
        return 1.0
    return float(abs(values[1] - values[0]))


def visible_window(da: xr.DataArray, x_range, y_range, pad: int = 1) -> xr.DataArray:
    """The part of ``da`` whose cells intersect lon ``x_range`` × lat ``y_range``, plus ``pad``
    cells on each side (lazy arrays stay lazy). Empty when the view is outside the grid."""
    lon = np.asarray(da["lon"].values)
    lat = np.asarray(da["lat"].values)
    x0, x1 = sorted(float(v) for v in x_range)
    y0, y1 = sorted(float(v) for v in y_range)
    half_x, half_y = grid_step(da, "lon") / 2, grid_step(da, "lat") / 2
    ix = np.nonzero((lon + half_x > x0) & (lon - half_x < x1))[0]
    iy = np.nonzero((lat + half_y > y0) & (lat - half_y < y1))[0]
    if ix.size == 0 or iy.size == 0:
        return da.isel(lon=slice(0, 0), lat=slice(0, 0))
    sx = slice(max(ix[0] - pad, 0), min(ix[-1] + pad + 1, lon.size))
    sy = slice(max(iy[0] - pad, 0), min(iy[-1] + pad + 1, lat.size))
    return da.isel(lon=sx, lat=sy)


def period_bounds(agg: str, date, period=None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Inclusive [start, end] days covered by aggregation ``agg`` around ``date``."""
    if agg == "period":
        if not period or len(period) != 2:
            raise InputError("aggregation 'period' needs a (start, end) period")
        start, end = sorted(pd.Timestamp(p).normalize() for p in period)
        return start, end
    day = pd.Timestamp(date).normalize()
    if agg == "day":
        return day, day
    if agg == "month":
        start = day.replace(day=1)
        return start, start + pd.offsets.MonthEnd(0)
    if agg == "year":
        return day.replace(month=1, day=1), day.replace(month=12, day=31)
    raise InputError(f"unknown time aggregation {agg!r}; choose one of {', '.join(AGGREGATIONS)}")


def time_aggregate(da: xr.DataArray, agg: str, date, period=None) -> xr.DataArray:
    """A 2-D ``(lat, lon)`` field: the time step nearest ``date`` (``agg='day'``), or the mean of
    valid values over the month, the year or ``period`` containing it (NaN where none is valid); a
    categorical variable's most frequent class instead of a mean (:mod:`app.categories`). Stays
    lazy for dask-backed input."""
    if "time" not in da.dims:
        return da
    if agg == "day":
        return da.sel(time=pd.Timestamp(date), method="nearest")
    start, end = period_bounds(agg, date, period)
    # Monthly products store the first day of each month: include every step starting in range.
    sub = da.sel(time=slice(start, end + pd.Timedelta(hours=23)))
    if sub.sizes["time"] == 0:
        raise InputError(
            f"no time steps of {da.name!r} between {start:%Y-%m-%d} and {end:%Y-%m-%d} "
            f"(data cover {pd.Timestamp(da.time.values[0]):%Y-%m-%d}"
            f"…{pd.Timestamp(da.time.values[-1]):%Y-%m-%d})"
        )
    cats = categories.of(da.attrs)
    if cats is not None:
        return categories.most_frequent(sub, cats)
    out = sub.mean("time", skipna=True)
    out.attrs = dict(da.attrs)
    return out


# -- time steps ----------------------------------------------------------------------------------
# Products keep their own time steps (daily, monthly, or irregular samples such as ERA5 12 UTC values
# on the 1st and 15th of each month). Views that set two products side by side use only the calendar
# days on which both have a time step, never a "nearest" step of the other product.


def step_days(times) -> pd.DatetimeIndex:
    """The calendar days (00:00) of time steps ``times``, unique and sorted."""
    return pd.DatetimeIndex(times).normalize().unique().sort_values()


def steps_in(times, agg: str, date, period=None) -> pd.DatetimeIndex:
    """The days of ``times`` that aggregation ``agg`` uses around ``date``: the day itself when the
    product has a step on it (``'day'``; none otherwise), else the days in the month, year or
    ``period``."""
    days = step_days(times)
    start, end = period_bounds(agg, date, period)
    return days[(days >= start) & (days <= end)]


def common_steps(times_a, times_b, agg: str, date, period=None) -> pd.DatetimeIndex:
    """Days in the window of ``agg`` on which both products have a time step."""
    a = steps_in(times_a, agg, date, period)
    return a.intersection(steps_in(times_b, agg, date, period)).sort_values()


def nearest_common_days(times_a, times_b, date) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """The last day before ``date`` and the first day after it on which both have a time step
    (None where there is none)."""
    both = step_days(times_a).intersection(step_days(times_b)).sort_values()
    day = pd.Timestamp(date).normalize()
    before, after = both[both < day], both[both > day]
    return (before[-1] if before.size else None, after[0] if after.size else None)


def on_days(da: xr.DataArray, days) -> xr.DataArray:
    """A 2-D field: the time step on the one day of ``days``, or the mean of valid values over the
    steps on ``days`` (lazy for dask input). ``InputError`` when none of the days is a step."""
    if "time" not in da.dims:
        return da
    wanted = pd.DatetimeIndex(days).normalize()
    idx = np.flatnonzero(pd.DatetimeIndex(da["time"].values).normalize().isin(wanted))
    if idx.size == 0:
        raise InputError(f"{da.name!r} has no time step on {', '.join(f'{d:%Y-%m-%d}' for d in wanted[:3])}")
    if idx.size == 1:
        return da.isel(time=int(idx[0]))
    out = da.isel(time=idx).mean("time", skipna=True)
    out.attrs = dict(da.attrs)
    return out


def sampling(times) -> str:
    """How a product is sampled in time, in words: 'daily, 60 time steps', 'monthly, …',
    'irregular: 600 time steps, 13–17 days apart (median 15 d)', 'one time step'."""
    t = pd.DatetimeIndex(times).sort_values()
    if t.size == 0:
        return "no time axis"
    if t.size == 1:
        return f"one time step ({t[0]:%Y-%m-%d})"
    gaps = np.diff(t.normalize().values).astype("timedelta64[D]").astype(int)
    lo, hi, med = int(gaps.min()), int(gaps.max()), float(np.median(gaps))
    n = f"{t.size:,} time steps"
    if lo == hi == 1:
        return f"daily, {n}"
    if 28 <= lo and hi <= 31 and (t.day == t[0].day).all():
        return f"monthly, {n}"
    spacing = f"{lo} days apart" if lo == hi else f"{lo}–{hi} days apart (median {med:g} d)"
    return f"irregular: {n}, {spacing}"


def is_regular_daily(times) -> bool:
    """Whether ``times`` has a step on every day between its first and last."""
    days = step_days(times)
    return days.size <= 1 or int((days[-1] - days[0]).days) + 1 == days.size


def rasterize_to_screen(da: xr.DataArray, x_range, y_range, width: int, height: int) -> xr.DataArray:
    """Resample a 2-D field onto a ``width`` × ``height`` regular screen grid over the view
    (datashader raster: mean of valid cells when downsampling, nearest when upsampling; a categorical
    field always nearest).
    Returned with ``lat`` descending like the catalog grids. When the cells are larger than the screen
    pixels, each pixel takes the value of the cell containing its centre (exact for views a few
    cells wide)."""
    x0, x1 = sorted(float(v) for v in x_range)
    y0, y1 = sorted(float(v) for v in y_range)
    canvas = dsh.Canvas(plot_width=int(width), plot_height=int(height), x_range=(x0, x1), y_range=(y0, y1))
    src = da.transpose("lat", "lon").astype("float32")
    if src.sizes["lat"] == 0 or src.sizes["lon"] == 0:
        lon = np.linspace(x0, x1, int(width) + 1)
        lat = np.linspace(y0, y1, int(height) + 1)
        lon_c, lat_c = (lon[:-1] + lon[1:]) / 2, (lat[:-1] + lat[1:]) / 2
        empty = np.full((int(height), int(width)), np.nan, dtype="float32")
        return xr.DataArray(empty, coords={"lat": lat_c, "lon": lon_c}, dims=("lat", "lon")).isel(
            lat=slice(None, None, -1)
        )
    px_x, px_y = (x1 - x0) / int(width), (y1 - y0) / int(height)
    upsampling = grid_step(src, "lon") >= px_x and grid_step(src, "lat") >= px_y
    if src.sizes["lat"] < 2 or src.sizes["lon"] < 2 or upsampling or categories.of(da.attrs):
        # Cells larger than screen pixels: each pixel takes the cell containing its centre. (Datashader's
        # raster drops the cells whose centres lie outside the view and stretches the rest over it,
        # misplacing every cell of a view only a few cells wide.) Classes are never averaged.
        return _nearest_to_screen(src, (x0, x1), (y0, y1), int(width), int(height))
    out = canvas.raster(
        src, agg="mean", downsample_method="mean", upsample_method="nearest", nan_value=np.nan
    )
    out = out.rename({out.dims[0]: "lat", out.dims[1]: "lon"}) if out.dims != ("lat", "lon") else out
    out = out.sortby("lat", ascending=False)
    out.attrs = dict(da.attrs)
    return out.astype("float32")


def _nearest_to_screen(src: xr.DataArray, x_range, y_range, width: int, height: int) -> xr.DataArray:
    """Screen raster of a field with a single row or column (datashader needs two): each screen
    pixel takes the cell containing its centre. Cell sizes come from ``attrs`` ``res_lat``/``res_lon``
    when a dimension has one cell."""
    lon_c = x_range[0] + (np.arange(width) + 0.5) * (x_range[1] - x_range[0]) / width
    lat_c = y_range[1] - (np.arange(height) + 0.5) * (y_range[1] - y_range[0]) / height
    lat = np.asarray(src["lat"].values, dtype="float64")
    lon = np.asarray(src["lon"].values, dtype="float64")
    res_lat, res_lon = grid_step(src, "lat"), grid_step(src, "lon")
    order_lat = np.argsort(lat)
    rows = np.searchsorted(_edges(lat[order_lat], res_lat), lat_c, side="right") - 1
    cols = np.searchsorted(_edges(lon, res_lon), lon_c, side="right") - 1
    ok_r = (rows >= 0) & (rows < lat.size)
    ok_c = (cols >= 0) & (cols < lon.size)
    values = np.asarray(src.values, dtype="float32")
    out = np.full((height, width), np.nan, dtype="float32")
    rr = order_lat[np.clip(rows, 0, lat.size - 1)]
    cc = np.clip(cols, 0, lon.size - 1)
    picked = values[np.ix_(rr, cc)]
    out[np.ix_(ok_r, ok_c)] = picked[np.ix_(ok_r, ok_c)]
    return xr.DataArray(out, coords={"lat": lat_c, "lon": lon_c}, dims=("lat", "lon"), attrs=dict(src.attrs))


def _edges(centres: np.ndarray, step: float | None = None) -> np.ndarray:
    """Cell edges (ascending) of a regular ascending centre coordinate."""
    if step is None:
        step = centres[1] - centres[0] if centres.size > 1 else 1.0
    return np.concatenate([centres - step / 2, [centres[-1] + step / 2]])


def _block_index(da: xr.DataArray, tlat: np.ndarray, tlon: np.ndarray, res_lat=None, res_lon=None):
    """(target row of each source row, target column of each source column, source values as a
    float64 ``(lat, lon)`` array); -1 for source rows/columns outside the target grid."""
    src = da.transpose("lat", "lon")
    values = np.asarray(src.values, dtype="float64")
    slat = np.asarray(src["lat"].values, dtype="float64")
    slon = np.asarray(src["lon"].values, dtype="float64")
    lat_asc = np.sort(tlat)
    lon_asc = np.sort(tlon)
    row_asc = np.searchsorted(_edges(lat_asc, res_lat), slat, side="right") - 1
    col_asc = np.searchsorted(_edges(lon_asc, res_lon), slon, side="right") - 1
    ok_r = (row_asc >= 0) & (row_asc < tlat.size)
    ok_c = (col_asc >= 0) & (col_asc < tlon.size)
    # Position of each ascending index in the target's own order.
    lat_pos = np.argsort(np.argsort(tlat))
    lon_pos = np.argsort(np.argsort(tlon))
    order_lat = np.empty(tlat.size, dtype=int)
    order_lat[lat_pos] = np.arange(tlat.size)
    order_lon = np.empty(tlon.size, dtype=int)
    order_lon[lon_pos] = np.arange(tlon.size)
    rows = np.where(ok_r, order_lat[np.clip(row_asc, 0, tlat.size - 1)], -1)
    cols = np.where(ok_c, order_lon[np.clip(col_asc, 0, tlon.size - 1)], -1)
    return rows, cols, values


def regrid_block_mean(da: xr.DataArray, target_lat, target_lon, res_lat=None, res_lon=None) -> xr.DataArray:
    """Regrid a 2-D field to a coarser target grid: each target cell gets the mean of the valid
    source cells whose centres fall inside it (NaN where none). Source cells outside the target
    grid are dropped. Exact block mean when the resolutions are integer multiples. The target
    spacing ``res_lat``/``res_lon`` is needed only when the target has a single row/column."""
    tlat = np.asarray(target_lat, dtype="float64")
    tlon = np.asarray(target_lon, dtype="float64")
    sums = regrid_block_sum(da, tlat, tlon, res_lat, res_lon)
    counts = regrid_block_sum(xr.where(np.isfinite(da), 1.0, np.nan), tlat, tlon, res_lat, res_lon)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    out = xr.DataArray(
        mean.astype("float32"),
        coords={"lat": tlat, "lon": tlon},
        dims=("lat", "lon"),
        name=da.name,
        attrs=dict(da.attrs),
    )
    return out


def block_counts(da: xr.DataArray, target_lat, target_lon, res_lat=None, res_lon=None) -> np.ndarray:
    """How many cell centres of ``da`` (valid or not) fall inside each target cell, ``(lat, lon)``
    in the target's order: the geometric coverage behind :func:`regrid_block_mean`."""
    ones = xr.ones_like(da.transpose("lat", "lon"), dtype="float64")
    counts = regrid_block_sum(ones, target_lat, target_lon, res_lat, res_lon)
    return counts


def regrid_block_sum(da: xr.DataArray, target_lat, target_lon, res_lat=None, res_lon=None) -> np.ndarray:
    """Sum of the valid source cells whose centres fall inside each target cell (0 where none)."""
    tlat = np.asarray(target_lat, dtype="float64")
    tlon = np.asarray(target_lon, dtype="float64")
    rows, cols, values = _block_index(da, tlat, tlon, res_lat, res_lon)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    valid = np.isfinite(values) & (rr >= 0) & (cc >= 0)
    flat = rr[valid] * tlon.size + cc[valid]
    sums = np.bincount(flat, weights=values[valid], minlength=tlat.size * tlon.size)
    return sums.reshape(tlat.size, tlon.size)


def grid_step(da: xr.DataArray, dim: str) -> float:
    """Grid spacing of ``da`` along ``dim`` ('lat' or 'lon'): from the coordinate, or from
    ``attrs['res_lat'|'res_lon']`` when the field has a single cell along it (1° if unknown)."""
    if da.sizes.get(dim, 0) > 1:
        return resolution(da[dim])
    return float(da.attrs.get(f"res_{dim}", 1.0))


def coarsest(fields: dict[str, xr.DataArray]) -> str:
    """Name of the field with the largest grid cells (the first one on a tie)."""
    return max(fields, key=lambda n: grid_step(fields[n], "lat") * grid_step(fields[n], "lon"))


def to_common_grid(fields: dict[str, xr.DataArray]) -> dict[str, xr.DataArray]:
    """Put 2-D fields on the grid of the coarsest one (block mean of the finer ones), restricted to
    the area they share. Raises ``InputError`` when they do not overlap."""
    if not fields:
        return {}
    coarse_name = coarsest(fields)
    coarse = fields[coarse_name]
    w = max(float(f["lon"].min()) - grid_step(f, "lon") / 2 for f in fields.values())
    e = min(float(f["lon"].max()) + grid_step(f, "lon") / 2 for f in fields.values())
    s = max(float(f["lat"].min()) - grid_step(f, "lat") / 2 for f in fields.values())
    n = min(float(f["lat"].max()) + grid_step(f, "lat") / 2 for f in fields.values())
    if w >= e or s >= n:
        raise InputError(f"products {', '.join(fields)} do not overlap in the selected region")
    target = visible_window(coarse, (w, e), (s, n), pad=0)
    if target.sizes["lat"] == 0 or target.sizes["lon"] == 0:
        raise InputError(f"products {', '.join(fields)} share less than one grid cell of {coarse_name}")
    out = {}
    res = {"res_lat": grid_step(coarse, "lat"), "res_lon": grid_step(coarse, "lon")}
    for name, field in fields.items():
        if name == coarse_name:
            out[name] = target.astype("float32")
        else:
            out[name] = regrid_block_mean(
                field,
                target["lat"].values,
                target["lon"].values,
                res_lat=res["res_lat"],
                res_lon=res["res_lon"],
            )
        out[name].attrs.update(res, grid_of=coarse_name)
    return out


def regrid_summary(fields: dict[str, xr.DataArray], common: dict[str, xr.DataArray]) -> dict:
    """How :func:`to_common_grid` put ``fields`` on one grid: ``target`` (the product whose grid is
    used), its spacing ``res`` (lat, lon), ``cells`` (cells of the common grid) and per regridded
    product ``res``, ``per_cell`` (its cells in one full target cell) and ``partial`` (target cells
    holding some but fewer than ``per_cell`` of its cell centres: partly covered by it)."""
    target = coarsest(fields)
    ref = common[target]
    res_t = (grid_step(ref, "lat"), grid_step(ref, "lon"))
    out = {"target": target, "res": res_t, "cells": int(ref.sizes["lat"] * ref.sizes["lon"]), "sources": {}}
    for name, field in fields.items():
        if name == target:
            continue
        res_s = (grid_step(field, "lat"), grid_step(field, "lon"))
        per_cell = max(1, round(res_t[0] / res_s[0])) * max(1, round(res_t[1] / res_s[1]))
        counts = block_counts(field, ref["lat"].values, ref["lon"].values, *res_t)
        out["sources"][name] = {
            "res": res_s,
            "per_cell": int(per_cell),
            "partial": int(((counts > 0) & (counts < per_cell)).sum()),
        }
    return out


def common_mask(fields) -> xr.DataArray:
    """True where every field (same grid) holds a valid value."""
    fields = list(fields)
    if not fields:
        raise InputError("common mask needs at least one field")
    mask = np.isfinite(fields[0])
    for f in fields[1:]:
        mask = mask & np.isfinite(f)
    return mask


def weighted_mean(field: xr.DataArray) -> float:
    """cos(lat)-weighted mean of the valid cells of a 2-D field as a number (NaN when none is valid);
    the weighting is :func:`catalog.geo.cos_lat_mean`'s."""
    return float(cos_lat_mean(field.astype("float64")))


def zonal_mean(field: xr.DataArray, band_deg: float = 1.0) -> pd.Series:
    """Mean of valid cells per latitude band of ``band_deg`` (cells assigned by their centre;
    rows weighted by cos(lat) inside a band). Indexed by band centre latitude, ascending;
    bands without valid cells are NaN."""
    values = np.asarray(field.transpose("lat", "lon").values, dtype="float64")
    lat = np.asarray(field["lat"].values, dtype="float64")
    band = np.floor((lat + 90.0) / band_deg).astype(int)
    n_bands = int(np.ceil(180.0 / band_deg))
    band = np.clip(band, 0, n_bands - 1)
    ok = np.isfinite(values)
    w = cos_lat_weights(lat)
    row_sum = np.where(ok, values, 0.0).sum(axis=1) * w
    row_wt = ok.sum(axis=1) * w
    sums = np.bincount(band, weights=row_sum, minlength=n_bands)
    wts = np.bincount(band, weights=row_wt, minlength=n_bands)
    present = np.bincount(band, minlength=n_bands) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(wts > 0, sums / np.where(wts > 0, wts, 1.0), np.nan)
    centres = -90.0 + (np.arange(n_bands) + 0.5) * band_deg
    return pd.Series(mean[present], index=pd.Index(centres[present], name="lat"), name=field.name)


def histogram(field: xr.DataArray, bins: int = 30, value_range=None) -> tuple[np.ndarray, np.ndarray]:
    """Counts and bin edges of the valid values of a field."""
    values = np.asarray(field.values, dtype="float64").ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.zeros(bins, dtype=int), np.linspace(0, 1, bins + 1)
    return np.histogram(values, bins=bins, range=value_range)


def series_table(
    series: dict[str, xr.DataArray],
    units: dict[str, str],
    lon: float,
    lat: float,
    lambda_ta: dict[str, np.ndarray | None] | None = None,
    bounds: dict[str, dict[str, np.ndarray]] | None = None,
) -> pd.DataFrame:
    """Long table of time series (one row per product and time) with lon, lat and units columns.
    ``lambda_ta`` (per product, °C per step, NaN = the 20 °C reference) adds the column
    ``lambda_ta_degC``: the air temperature behind λ(T) of values converted to evaporation.
    ``bounds`` (per product, bound name → values per step, e.g. ``le_q05``, ``le_q95``) adds one
    column per bound name, in the ``units`` of the row (NaN for products without it)."""
    names = sorted({b for per in (bounds or {}).values() for b in per})
    frames = []
    for product, s in series.items():
        frame = pd.DataFrame(
            {
                "time": pd.to_datetime(s["time"].values),
                "product": product,
                "variable": s.name,
                "value": np.asarray(s.values, dtype="float64"),
                "units": units.get(product, ""),
                "lon": float(s.attrs.get("pixel_lon", lon)),
                "lat": float(s.attrs.get("pixel_lat", lat)),
            }
        )
        if lambda_ta is not None and product in lambda_ta:
            ta = lambda_ta[product]
            ta = np.full(len(frame), np.nan) if ta is None else np.asarray(ta, dtype="float64")
            frame["lambda_ta_degC"] = np.where(np.isfinite(ta), ta, REFERENCE_TA_C)
        for b in names:
            values = (bounds or {}).get(product, {}).get(b)
            frame[b] = np.nan if values is None else np.asarray(values, dtype="float64")
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["time", "product", "variable", "value", "units", "lon", "lat", *names])
    return pd.concat(frames, ignore_index=True)


# -- Web Mercator (EPSG:3857) for the tile basemap ----------------------------------------------
# Spherical Web Mercator on the WGS 84 semi-major axis; latitudes beyond ±MERCATOR_MAX_LAT (where
# the square world of the tile pyramid ends) are clipped to it.
EARTH_RADIUS_M = 6378137.0
MERCATOR_MAX_LAT = 85.0511287798066
MERCATOR_MAX_Y = EARTH_RADIUS_M * np.pi  # y of MERCATOR_MAX_LAT, equal to x of 180°


def lonlat_to_mercator(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Web Mercator x, y (m) of lon/lat degrees: x = R·λ, y = R·ln tan(π/4 + φ/2), with φ clipped
    to ±85.0511°."""
    lon = np.asarray(lon, dtype="float64")
    lat = np.clip(np.asarray(lat, dtype="float64"), -MERCATOR_MAX_LAT, MERCATOR_MAX_LAT)
    x = EARTH_RADIUS_M * np.deg2rad(lon)
    y = EARTH_RADIUS_M * np.log(np.tan(np.pi / 4 + np.deg2rad(lat) / 2))
    return x, y


def mercator_to_lonlat(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat degrees of Web Mercator x, y (m): λ = x/R, φ = 2·atan(exp(y/R)) − π/2."""
    x = np.asarray(x, dtype="float64")
    y = np.clip(np.asarray(y, dtype="float64"), -MERCATOR_MAX_Y, MERCATOR_MAX_Y)
    lon = np.rad2deg(x / EARTH_RADIUS_M)
    lat = np.rad2deg(2 * np.arctan(np.exp(y / EARTH_RADIUS_M)) - np.pi / 2)
    return lon, lat


def mercator_source_rows(y_range, height: int, max_factor: int = 4) -> int:
    """Rows of a lat-regular image over the latitudes of mercator ``y_range`` fine enough that
    every one of ``height`` mercator screen rows gets a row of its own (the lat step is set by the
    row nearest a pole, where a mercator row spans the fewest degrees); at most
    ``max_factor × height``."""
    y0, y1 = sorted(float(v) for v in y_range)
    height = int(height)
    edges = np.linspace(y0, y1, height + 1)
    _, lat_edges = mercator_to_lonlat(np.zeros_like(edges), edges)
    steps = np.diff(lat_edges)
    span = lat_edges[-1] - lat_edges[0]
    if span <= 0 or steps.min() <= 0:
        return height
    return int(min(max(np.ceil(span / steps.min()), height), max_factor * height))


def mercator_rows(image: xr.DataArray, y_range, height: int) -> xr.DataArray:
    """Resample a lat-regular image (``lat`` descending, regular centres) onto ``height`` rows
    evenly spaced in Web Mercator y over ``y_range``: each output row takes, whole, the image row
    whose cell contains the latitude of the row's centre (nearest-row pick, no interpolation).
    Rows outside the image are NaN. Returned with dims ``(y, lon)``, ``y`` descending (top row
    first) and the centre latitudes as coordinate ``lat`` on ``y``."""
    y0, y1 = sorted(float(v) for v in y_range)
    height = int(height)
    y_c = y1 - (np.arange(height) + 0.5) * (y1 - y0) / height
    _, lat_c = mercator_to_lonlat(np.zeros_like(y_c), y_c)
    src = image.transpose("lat", "lon")
    lat = np.asarray(src["lat"].values, dtype="float64")
    values = np.asarray(src.values, dtype="float32")
    out = np.full((height, values.shape[1]), np.nan, dtype="float32")
    if lat.size:
        step = resolution(src["lat"]) if lat.size > 1 else float(src.attrs.get("res_lat", 1.0))
        north_edge = lat.max() + step / 2
        order = np.argsort(-lat)  # row positions from the north
        idx = np.floor((north_edge - lat_c) / step).astype(int)
        ok = (idx >= 0) & (idx < lat.size)
        out[ok] = values[order[idx[ok]]]
    return xr.DataArray(
        out,
        coords={"y": y_c, "lat": ("y", lat_c), "lon": src["lon"].values},
        dims=("y", "lon"),
        name=image.name,
        attrs=dict(image.attrs),
    )
