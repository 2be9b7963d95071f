"""Pure xarray/numpy computations behind the dashboard views (no I/O, no widgets).

Grids follow the project conventions: dims ``(time, lat, lon)`` or ``(lat, lon)``, ``lat``
descending, ``lon`` ascending, cell centres in degrees.
"""

from __future__ import annotations

import datashader as dsh
import numpy as np
import pandas as pd
import xarray as xr

from catalog.errors import InputError

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
    half_x, half_y = resolution(da["lon"]) / 2, resolution(da["lat"]) / 2
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
    valid values over the month, the year or ``period`` containing it (NaN where none is valid).
    Stays lazy for dask-backed input."""
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
    out = sub.mean("time", skipna=True)
    out.attrs = dict(da.attrs)
    return out


def rasterize_to_screen(da: xr.DataArray, x_range, y_range, width: int, height: int) -> xr.DataArray:
    """Resample a 2-D field onto a ``width`` × ``height`` regular screen grid over the view
    (datashader raster: mean of valid cells when downsampling, nearest when upsampling).
    Returned with ``lat`` descending like the catalog grids."""
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
    if src.sizes["lat"] < 2 or src.sizes["lon"] < 2:
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
    res_lat = resolution(src["lat"]) if lat.size > 1 else float(src.attrs.get("res_lat", 1.0))
    res_lon = resolution(src["lon"]) if lon.size > 1 else float(src.attrs.get("res_lon", 1.0))
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


def regrid_block_mean(da: xr.DataArray, target_lat, target_lon, res_lat=None, res_lon=None) -> xr.DataArray:
    """Regrid a 2-D field to a coarser target grid: each target cell gets the mean of the valid
    source cells whose centres fall inside it (NaN where none). Source cells outside the target
    grid are dropped. Exact block mean when the resolutions are integer multiples. The target
    spacing ``res_lat``/``res_lon`` is needed only when the target has a single row/column."""
    tlat = np.asarray(target_lat, dtype="float64")
    tlon = np.asarray(target_lon, dtype="float64")
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
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    valid = np.isfinite(values) & (rr >= 0) & (cc >= 0)
    flat = rr[valid] * tlon.size + cc[valid]
    sums = np.bincount(flat, weights=values[valid], minlength=tlat.size * tlon.size)
    counts = np.bincount(flat, minlength=tlat.size * tlon.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    out = xr.DataArray(
        mean.reshape(tlat.size, tlon.size).astype("float32"),
        coords={"lat": tlat, "lon": tlon},
        dims=("lat", "lon"),
        name=da.name,
        attrs=dict(da.attrs),
    )
    return out


def to_common_grid(fields: dict[str, xr.DataArray]) -> dict[str, xr.DataArray]:
    """Put 2-D fields on the grid of the coarsest one (block mean of the finer ones), restricted to
    the area they share. Raises ``InputError`` when they do not overlap."""
    if not fields:
        return {}
    coarse_name = max(fields, key=lambda n: resolution(fields[n]["lat"]) * resolution(fields[n]["lon"]))
    coarse = fields[coarse_name]
    w = max(float(f["lon"].min()) - resolution(f["lon"]) / 2 for f in fields.values())
    e = min(float(f["lon"].max()) + resolution(f["lon"]) / 2 for f in fields.values())
    s = max(float(f["lat"].min()) - resolution(f["lat"]) / 2 for f in fields.values())
    n = min(float(f["lat"].max()) + resolution(f["lat"]) / 2 for f in fields.values())
    if w >= e or s >= n:
        raise InputError(f"products {', '.join(fields)} do not overlap in the selected region")
    target = visible_window(coarse, (w, e), (s, n), pad=0)
    if target.sizes["lat"] == 0 or target.sizes["lon"] == 0:
        raise InputError(f"products {', '.join(fields)} share less than one grid cell of {coarse_name}")
    out = {}
    res = {"res_lat": resolution(coarse["lat"]), "res_lon": resolution(coarse["lon"])}
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
        out[name].attrs.update(res)
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


def cos_lat_weights(lat) -> np.ndarray:
    """Area weights of regular lat-lon cells: cos(latitude)."""
    return np.cos(np.deg2rad(np.asarray(lat, dtype="float64")))


def weighted_mean(field: xr.DataArray) -> float:
    """cos(lat)-weighted mean of the valid cells of a 2-D field (NaN when none is valid):
    sum(w·x) / sum(w) over valid cells, w = cos(lat)."""
    values = np.asarray(field.transpose("lat", "lon").values, dtype="float64")
    w = np.broadcast_to(cos_lat_weights(field["lat"].values)[:, None], values.shape)
    ok = np.isfinite(values)
    total = w[ok].sum()
    return float((w[ok] * values[ok]).sum() / total) if total > 0 else float("nan")


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
    series: dict[str, xr.DataArray], units: dict[str, str], lon: float, lat: float
) -> pd.DataFrame:
    """Long table of time series (one row per product and time) with lon, lat and units columns."""
    frames = []
    for product, s in series.items():
        frames.append(
            pd.DataFrame(
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
        )
    if not frames:
        return pd.DataFrame(columns=["time", "product", "variable", "value", "units", "lon", "lat"])
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
