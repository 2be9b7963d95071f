"""Data for the views, through ``catalog.api`` only, with caches shared by sessions (:class:`ViewData`,
one per catalog).

Maps are read from the pyramid level that matches the screen and only over the visible window;
time aggregates are computed lazily and cached per (product, variable, level, aggregation, period).
"""

from __future__ import annotations

import threading
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from app import compute
from catalog import api
from catalog.errors import InputError

# Aggregates of a whole pyramid level are cached when the level is at most this many pixels;
# bigger levels are aggregated per visible window.
WHOLE_LEVEL_AGG_MAX_PX = 4_000_000
# Largest netCDF export (values), to keep one request from exhausting the server.
EXPORT_MAX_VALUES = 50_000_000

PRODUCTS_TTL_S = 5.0


class ViewData:
    """What the views keep between requests for one data directory's catalog, shared by the
    sessions: the product list (re-read at most every :data:`PRODUCTS_TTL_S`), opened levels,
    time aggregates and time axes (keyed by the product's stored version, so a rewritten or grown
    product is read again). One per :class:`catalog.api.Catalog` (:func:`view_data`)."""

    def __init__(self, catalog: api.Catalog):
        self.catalog = catalog
        self._lock = threading.RLock()
        self._products: tuple[float, list] = (0.0, [])
        self.open = lru_cache(maxsize=64)(lambda name, level, _version: catalog.open_product(name, level))
        self.whole_level_aggregate = lru_cache(maxsize=24)(_whole_level_aggregate)
        self.window_aggregate = lru_cache(maxsize=64)(_window_aggregate)
        self.time_axis = lru_cache(maxsize=64)(_time_axis)

    def forget_products(self) -> None:
        """Read the product list again at the next call (after a product was written)."""
        with self._lock:
            self._products = (0.0, [])

    def list_products(self) -> list:
        with self._lock:
            stamp, items = self._products
            if time.monotonic() - stamp > PRODUCTS_TTL_S or not items:
                items = list(self.catalog.list_products())
                self._products = (time.monotonic(), items)
            return items


_views_lock = threading.Lock()
_views: dict[Path, ViewData] = {}


def view_data() -> ViewData:
    """The :class:`ViewData` of the current settings' catalog."""
    cat = api.catalog()
    with _views_lock:
        if cat.data_dir not in _views:
            _views[cat.data_dir] = ViewData(cat)
        return _views[cat.data_dir]


def list_products() -> list:
    """Catalog products (re-read at most every few seconds, so new products appear)."""
    return view_data().list_products()


def info(name: str):
    """ProductInfo of ``name`` (InputError for an unknown product)."""
    for p in list_products():
        if p.name == name:
            return p
    return api.product_info(name)


def gridded_variables(p) -> list[str]:
    """Variables of a product that can be drawn (quality flags left out)."""
    return [v for v in p.variables if v != "flag"]


def _version(name: str):
    p = info(name)
    return (p.store_id, str(p.time_end), int(p.n_time))


def open_level(name: str, level: int) -> xr.Dataset:
    """Lazy dataset of one pyramid level (cached; reopened when the product grows)."""
    return view_data().open(name, int(level), _version(name))


def variable_array(name: str, variable: str, level: int) -> xr.DataArray:
    ds = open_level(name, level)
    if variable not in ds.data_vars:
        raise InputError(f"product {name!r} has no variable {variable!r} (has: {', '.join(ds.data_vars)})")
    return ds[variable]


def level_for_view(name: str, x_range, y_range, width_px: int) -> int:
    return int(api.choose_level(name, tuple(x_range), tuple(y_range), int(width_px)))


def _period_key(agg: str, date, period):
    start, end = compute.period_bounds(agg, date, period)
    return (agg, start.strftime("%Y-%m-%d"), end.strftime("%Y-%m-%d"))


def _whole_level_aggregate(name, variable, level, agg_key, version) -> xr.DataArray:
    agg, start, end = agg_key
    da = variable_array(name, variable, level)
    out = compute.time_aggregate(da, "period" if agg != "day" else "day", start, period=(start, end))
    return out.load()


def _window_aggregate(name, variable, level, agg_key, window_key, version) -> xr.DataArray:
    agg, start, end = agg_key
    x0, x1, y0, y1 = window_key
    da = variable_array(name, variable, level)
    win = compute.visible_window(da, (x0, x1), (y0, y1))
    return compute.time_aggregate(win, "period", start, period=(start, end)).load()


def _with_spacing(da: xr.DataArray, name: str, level: int) -> xr.DataArray:
    """``da`` with its grid spacing in ``attrs`` (``res_lat``, ``res_lon``, from the catalog), so a
    window one cell wide or high keeps its true cell size."""
    lev = data_level(name, level)
    res_lon = float(lev.get("resolution", 0) or 0)
    res_lat = float(lev.get("resolution_lat", res_lon) or res_lon)
    if res_lon > 0:
        da = da.copy(deep=False)
        da.attrs = {**da.attrs, "res_lat": res_lat, "res_lon": res_lon}
    return da


def data_level(name: str, level: int) -> dict:
    """The catalog's description of one pyramid level (``{}`` when unknown)."""
    return next((lev for lev in info(name).levels if int(lev["level"]) == int(level)), {})


def field(name: str, variable: str, level: int, agg: str, date, period=None, x_range=None, y_range=None):
    """2-D field of ``variable`` at pyramid ``level`` for the aggregation, restricted to the view
    window when given (a numpy-backed DataArray)."""
    return _with_spacing(_field(name, variable, level, agg, date, period, x_range, y_range), name, level)


def field_on_days(name: str, variable: str, level: int, days, x_range=None, y_range=None) -> xr.DataArray:
    """2-D field of ``variable``: the time step on the one day of ``days`` or the mean over the
    steps on ``days`` (e.g. the days two compared products share), restricted to the view window."""
    da = variable_array(name, variable, level)
    if x_range is not None:
        da = compute.visible_window(da, x_range, y_range)
    return _with_spacing(compute.on_days(da, days).load(), name, level)


def _field(name: str, variable: str, level: int, agg: str, date, period=None, x_range=None, y_range=None):
    da = variable_array(name, variable, level)
    version = _version(name)
    if agg == "day" or "time" not in da.dims:
        if x_range is not None:  # window first: slicing a small lazy array is cheaper
            da = compute.visible_window(da, x_range, y_range)
        return compute.time_aggregate(da, "day", date).load()
    key = _period_key(agg, date, period)
    n_px = da.sizes["lat"] * da.sizes["lon"]
    if n_px <= WHOLE_LEVEL_AGG_MAX_PX or x_range is None:
        whole = view_data().whole_level_aggregate(name, variable, int(level), key, version)
        return whole if x_range is None else compute.visible_window(whole, x_range, y_range)
    # Snap the window outward to a coarse lattice so small pans reuse the cache.
    step = max(float(x_range[1] - x_range[0]), float(y_range[1] - y_range[0])) / 4
    snap = (
        np.floor(x_range[0] / step) * step,
        np.ceil(x_range[1] / step) * step,
        np.floor(y_range[0] / step) * step,
        np.ceil(y_range[1] / step) * step,
    )
    window_key = tuple(round(v, 6) for v in snap)
    win = view_data().window_aggregate(name, variable, int(level), key, window_key, version)
    return compute.visible_window(win, x_range, y_range)


def map_image(name, variable, agg, date, period, x_range, y_range, width, height):
    """The screen raster for a view: (DataArray height × width, pyramid level used)."""
    level = level_for_view(name, x_range, y_range, width)
    window = field(name, variable, level, agg, date, period, x_range, y_range)
    return compute.rasterize_to_screen(window, x_range, y_range, width, height), level


def nearest_time(name: str, date) -> pd.Timestamp:
    """The product's time step nearest ``date``."""
    times = time_axis(name)
    if times.size == 0:
        raise InputError(f"product {name!r} has no time steps")
    idx = int(np.abs((times - pd.Timestamp(date)).total_seconds()).argmin())
    return times[idx]


def time_axis(name: str) -> pd.DatetimeIndex:
    """The product's time steps (empty for a product without a time axis)."""
    return view_data().time_axis(name, _version(name))


def _time_axis(name: str, version) -> pd.DatetimeIndex:
    ds = open_level(name, 0)
    if "time" not in ds.dims:
        return pd.DatetimeIndex([])
    return pd.DatetimeIndex(ds["time"].values)


def step_days(name: str) -> pd.DatetimeIndex:
    """The calendar days on which the product has a time step."""
    return compute.step_days(time_axis(name))


def point_series(name: str, lon: float, lat: float, variables=None) -> xr.Dataset:
    return api.point_series(name, float(lon), float(lat), variables=variables)


def region_series(name: str, bbox, variables=None) -> xr.Dataset:
    return api.region_series(name, tuple(float(v) for v in bbox), variables=variables)


def products_with(variable: str) -> list[str]:
    """Names of the products that hold ``variable``."""
    return [p.name for p in list_products() if variable in p.variables]


def contains(p, lon: float, lat: float) -> bool:
    w, s, e, n = p.bbox
    return w <= lon <= e and s <= lat <= n


def export_region(name: str, variables, bbox, start, end, level: int) -> xr.Dataset:
    """Lazy subset of a product over ``bbox`` and [start, end] at ``level``, bounded in size."""
    ds = open_level(name, level)[list(variables)]
    w, s, e, n = bbox
    sub = compute.visible_window(ds, (w, e), (s, n), pad=0)
    if "time" in sub.dims:
        sub = sub.sel(time=slice(pd.Timestamp(start), pd.Timestamp(end)))
    n_values = int(np.prod([sub.sizes[d] for d in sub.dims])) * len(sub.data_vars)
    if n_values == 0:
        raise InputError(f"export of {name!r}: no data in bbox {bbox} between {start} and {end}")
    if n_values > EXPORT_MAX_VALUES:
        raise InputError(
            f"export of {name!r}: {n_values:,} values exceed the limit of {EXPORT_MAX_VALUES:,}; "
            "zoom in or shorten the period"
        )
    return sub
