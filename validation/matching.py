"""Pure functions that pair station observations with a gridded or point product.

Spatial: the product pixel nearest to the station (great-circle distance reported), or bilinear
interpolation between the four surrounding pixel centres. Temporal, two pairings: ``daily_mean``
(sub-daily observations become daily means when enough of the day is covered, daily values monthly
means likewise, then paired on common stamps) and ``nearest`` (QA4SM's: each record of the temporal
reference with the other side's record nearest in time within a window, one to one). Anomalies
remove a mean seasonal cycle. Closure: how far LE + H falls short of Rn - G.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from catalog import time_steps
from catalog.errors import InputError
from catalog.geo import haversine_km, nearest_index
from catalog.time_steps import samples_per_day
from validation import metrics

SPATIAL_METHODS = ("nearest", "bilinear")
ANOMALY_WINDOW_DAYS = 31
PAIRINGS = ("daily_mean", "nearest")
TEMPORAL_REFERENCES = ("station", "product")
NEAREST_WINDOW = pd.Timedelta(hours=12)


def grid_pixels_nearest(ds: xr.Dataset, lons, lats) -> pd.DataFrame:
    """Nearest pixel of a ``(time, lat, lon)`` grid for many stations at once.

    Columns ``ilat``, ``ilon`` (indices), ``pixel_lon``, ``pixel_lat``, ``distance_km`` and ``inside``
    (False where the station lies outside the grid's outer cell edges).
    """
    glat, glon = ds["lat"].values, ds["lon"].values
    lons, lats = np.asarray(lons, dtype="float64"), np.asarray(lats, dtype="float64")
    ilat, ilon = nearest_index(glat, lats), nearest_index(glon, lons)
    half_lat = abs(float(glat[1] - glat[0])) / 2 if glat.size > 1 else 0.5
    half_lon = abs(float(glon[1] - glon[0])) / 2 if glon.size > 1 else 0.5
    inside = (
        (lats >= glat.min() - half_lat)
        & (lats <= glat.max() + half_lat)
        & (lons >= glon.min() - half_lon)
        & (lons <= glon.max() + half_lon)
    )
    plon, plat = glon[ilon], glat[ilat]
    return pd.DataFrame(
        {
            "ilat": ilat,
            "ilon": ilon,
            "pixel_lon": plon,
            "pixel_lat": plat,
            "distance_km": haversine_km(plon, plat, lons, lats),
            "inside": inside,
        }
    )


def grid_series(ds: xr.Dataset, lon: float, lat: float, method: str = "nearest") -> xr.Dataset:
    """The product's time series at a station from a ``(time, lat, lon)`` dataset.

    ``nearest``: the pixel whose centre is nearest; ``bilinear``: weights of the four surrounding
    pixel centres (NaN where any of the four is NaN). ``attrs`` state ``method``, ``pixel_lon``,
    ``pixel_lat`` (nearest pixel centre) and ``distance_km`` (station to that centre).
    Raises ``InputError`` when the station lies outside the grid.
    """
    if method not in SPATIAL_METHODS:
        raise InputError(f"matching: unknown spatial method {method!r}; use one of {SPATIAL_METHODS}")
    glat, glon = ds["lat"].values, ds["lon"].values
    half_lat = abs(float(glat[1] - glat[0])) / 2 if glat.size > 1 else 0.5
    half_lon = abs(float(glon[1] - glon[0])) / 2 if glon.size > 1 else 0.5
    if not (glat.min() - half_lat <= lat <= glat.max() + half_lat) or not (
        glon.min() - half_lon <= lon <= glon.max() + half_lon
    ):
        raise InputError(f"matching: station at lon {lon:.4f}, lat {lat:.4f} lies outside the product grid")
    near = ds.isel(lat=int(nearest_index(glat, lat)), lon=int(nearest_index(glon, lon)))
    plon, plat = float(near["lon"]), float(near["lat"])
    if method == "nearest":
        out = near
    else:
        # clamp inside the outer pixel centres so edge stations fall back to the edge values
        ilat = float(np.clip(lat, glat.min(), glat.max()))
        ilon = float(np.clip(lon, glon.min(), glon.max()))
        # read only the 2 x 2 surrounding pixels, then interpolate in memory
        box = ds.isel(lat=_bracket(glat, ilat), lon=_bracket(glon, ilon)).load()
        out = box.interp(lat=ilat, lon=ilon, method="linear")
    out = out.drop_vars([c for c in ("lat", "lon") if c in out.coords])
    out.attrs.update(
        method=method,
        pixel_lon=plon,
        pixel_lat=plat,
        distance_km=float(haversine_km(plon, plat, lon, lat)),
    )
    return out


def _bracket(centres: np.ndarray, x: float) -> list[int]:
    """Indices of the (up to) two pixel centres on either side of ``x`` (any sort order)."""
    order = np.argsort(centres)
    k = int(np.clip(np.searchsorted(centres[order], x), 1, max(centres.size - 1, 1)))
    return sorted({int(order[max(k - 1, 0)]), int(order[min(k, centres.size - 1)])})


def to_daily(series: pd.Series, *, min_coverage: float = 0.5) -> pd.Series:
    """Daily mean of a (sub-)daily series on a ``DatetimeIndex`` (UTC or local, as given).

    A day is kept when its valid samples are at least ``min_coverage`` of the nominal number of
    samples per day (from the median sampling interval); otherwise it is NaN. Daily input is
    returned on day starts unchanged.
    """
    s = _as_time_series(series)
    return time_steps.daily_mean(s, samples_per_day=samples_per_day(s.index), min_coverage=min_coverage)


def to_monthly(series: pd.Series, *, min_coverage: float = 0.5) -> pd.Series:
    """Monthly mean (labelled with the first day of the month) of a daily or finer series.

    Sub-daily input is first reduced with :func:`to_daily` (same ``min_coverage``); a month is
    kept when at least ``min_coverage`` of its days have a value. Monthly input (FLUXNET MM files:
    :func:`catalog.time_steps.is_monthly`) is returned on month starts unchanged: each value is
    already a month's mean (its own ``_QC`` says how much of the month was measured).
    """
    s = _as_time_series(series)
    if len(s) > 1 and time_steps.is_monthly(s.index):
        return s.resample("MS").mean()
    daily = to_daily(series, min_coverage=min_coverage)
    grouped = daily.resample("MS")
    mean, count = grouped.mean(), grouped.count()
    days = mean.index.days_in_month.to_numpy()
    return mean.where(count.to_numpy() >= min_coverage * days)


def to_time_step(series: pd.Series, time_step: str, *, min_coverage: float = 0.5) -> pd.Series:
    """Aggregate observations to a product's ``time_step`` (``"day"`` or ``"month"``)."""
    if time_step == "day":
        return to_daily(series, min_coverage=min_coverage)
    if time_step == "month":
        return to_monthly(series, min_coverage=min_coverage)
    raise InputError(f"matching: unknown product time step {time_step!r} (expected 'day' or 'month')")


def _day(t: pd.Timestamp) -> str:
    return f"{t:%Y-%m-%d}"


def validation_window(
    product_start, product_end, time_step: str = "day", period=None, *, product: str = "the product"
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last day a validation can pair: the product's period (a monthly product's last month
    to its end), cut to ``period`` (START, END) if given. ``InputError`` when they do not overlap."""
    start, end = pd.Timestamp(product_start), pd.Timestamp(product_end)
    if time_step == "month":
        end = end + pd.offsets.MonthEnd(0)
    if period is not None:
        p0, p1 = (pd.Timestamp(p) for p in period)
        if p1 < start or p0 > end:
            raise InputError(
                f"validation: the period {_day(p0)}…{_day(p1)} does not overlap {product} "
                f"({_day(start)}…{_day(end)}); nothing to validate"
            )
        start, end = max(start, p0), min(end, p1)
    return start, end


def _record_dates(sites: pd.DataFrame, column: str) -> pd.Series:
    if column not in sites:
        return pd.Series(pd.NaT, index=sites.index, dtype="datetime64[ns]")
    return pd.to_datetime(sites[column], errors="coerce")


def sites_overlapping(sites: pd.DataFrame, start, end) -> pd.Series:
    """Per site: whether its record (``start``…``end`` columns) overlaps [start, end]; a site whose
    record dates are unknown counts as overlapping (its observations decide)."""
    first, last = _record_dates(sites, "start"), _record_dates(sites, "end")
    before = last.notna() & (last < pd.Timestamp(start))
    after = first.notna() & (first > pd.Timestamp(end))
    return ~(before | after)


def require_overlap(sites: pd.DataFrame, start, end, *, label: str = "validation") -> pd.Series:
    """:func:`sites_overlapping`, or ``InputError`` ("0 of 31 sites overlap 2018-01-01…2018-12-31")
    when no site's record overlaps the window."""
    inside = sites_overlapping(sites, start, end)
    if len(sites) and not inside.any():
        first, last = _record_dates(sites, "start").min(), _record_dates(sites, "end").max()
        span = ""
        if pd.notna(first) and pd.notna(last):
            span = f"; the sites' records span {_day(first)}…{_day(last)}"
        window = f"{_day(pd.Timestamp(start))}…{_day(pd.Timestamp(end))}"
        raise InputError(f"{label}: 0 of {len(sites)} sites overlap {window}{span}; nothing to validate")
    return inside


def pair(obs: pd.Series, pred: pd.Series) -> pd.DataFrame:
    """Observation and prediction on their common time stamps, columns ``obs``/``pred``, both valid."""
    df = pd.concat({"obs": _as_time_series(obs), "pred": _as_time_series(pred)}, axis=1, join="inner")
    return df.dropna()


def nearest_in_time(reference: pd.Series, other: pd.Series, *, window=NEAREST_WINDOW) -> pd.DataFrame:
    """One-to-one nearest-in-time collocation of ``other`` onto the records of ``reference``.

    Only valid (finite) values of either series take part. Each reference record takes the ``other``
    record nearest in time with |Δt| <= ``window`` (a tie goes to the earlier record); an ``other``
    record chosen by several reference records stays with the nearest of them only (a tie: the
    earlier), so each record of either side is used at most once: pytesmo's ``df_match`` with a
    window and ``dropduplicates``, the temporal matching of QA4SM (default window ±12 h; Gruber et al.
    2020, RSE 244:111806). Index: the reference's time stamps (``time``); columns ``reference``,
    ``other``, ``other_time``.
    """
    window = pd.Timedelta(window)
    if window < pd.Timedelta(0):
        raise InputError(f"matching: the time window {window} is negative")
    ref, oth = _as_time_series(reference).dropna(), _as_time_series(other).dropna()
    empty = pd.DataFrame(
        {"reference": [], "other": [], "other_time": pd.DatetimeIndex([])},
        index=pd.DatetimeIndex([], name="time"),
    )
    if ref.empty or oth.empty:
        return empty
    rt = ref.index.as_unit("ns").asi8
    ot = oth.index.as_unit("ns").asi8
    k = np.searchsorted(ot, rt)
    left, right = np.clip(k - 1, 0, ot.size - 1), np.clip(k, 0, ot.size - 1)
    chosen = np.where(np.abs(ot[right] - rt) < np.abs(rt - ot[left]), right, left)
    distance = np.abs(ot[chosen] - rt)
    within = np.flatnonzero(distance <= window.value)
    candidates = pd.DataFrame({"ref": within, "oth": chosen[within], "distance": distance[within]})
    kept = (
        candidates.sort_values(["oth", "distance", "ref"], kind="stable")
        .drop_duplicates("oth", keep="first")
        .sort_values("ref")
    )
    if kept.empty:
        return empty
    out = pd.DataFrame(
        {
            "reference": ref.to_numpy()[kept["ref"].to_numpy()],
            "other": oth.to_numpy()[kept["oth"].to_numpy()],
            "other_time": oth.index[kept["oth"].to_numpy()],
        },
        index=ref.index[kept["ref"].to_numpy()],
    )
    out.index.name = "time"
    return out


def pair_nearest_in_time(
    obs: pd.Series, pred: pd.Series, *, reference: str = "station", window=NEAREST_WINDOW
) -> pd.DataFrame:
    """Observation and prediction paired by :func:`nearest_in_time`, either side the temporal reference.

    ``reference="station"``: each station record takes the nearest product record (QA4SM with the
    in-situ data as temporal reference); ``"product"``: each product record the nearest station record.
    Columns ``obs``, ``pred`` on the reference's time stamps, ``matched_time`` the other side's stamp.
    """
    if reference not in TEMPORAL_REFERENCES:
        raise InputError(f"matching: temporal reference {reference!r} is not one of {TEMPORAL_REFERENCES}")
    if reference == "station":
        m = nearest_in_time(obs, pred, window=window)
        columns = {"obs": m["reference"], "pred": m["other"]}
    else:
        m = nearest_in_time(pred, obs, window=window)
        columns = {"obs": m["other"], "pred": m["reference"]}
    return pd.DataFrame({**columns, "matched_time": m["other_time"]}, index=m.index)


def seasonal_climatology(series: pd.Series, *, window_days: int = ANOMALY_WINDOW_DAYS) -> pd.Series:
    """Mean seasonal cycle evaluated at each time stamp of ``series``.

    Daily data: for every day of year (29 Feb counted as 28 Feb), the mean of all values within a
    centred ``window_days`` window of days of year, wrapping around the year end.
    Monthly data: the mean of each calendar month over the years.
    """
    s = _as_time_series(series)
    if s.empty:
        return s.copy()
    if time_steps.is_monthly(s.index):
        clim = s.groupby(s.index.month).mean()
        return pd.Series(clim.reindex(s.index.month).to_numpy(), index=s.index)
    doy = _day_of_year_365(s.index)
    valid = np.isfinite(s.to_numpy())
    sums = np.bincount(doy[valid], weights=s.to_numpy()[valid], minlength=365)
    counts = np.bincount(doy[valid], minlength=365).astype("float64")
    half = window_days // 2
    kernel = np.ones(2 * half + 1)
    wrap = np.concatenate
    sums_w = np.convolve(wrap([sums[-half:], sums, sums[:half]]), kernel, mode="valid")
    counts_w = np.convolve(wrap([counts[-half:], counts, counts[:half]]), kernel, mode="valid")
    with np.errstate(invalid="ignore", divide="ignore"):
        clim = np.where(counts_w > 0, sums_w / counts_w, np.nan)
    return pd.Series(clim[doy], index=s.index)


def anomalies(series: pd.Series, *, window_days: int = ANOMALY_WINDOW_DAYS) -> pd.Series:
    """``series`` minus its :func:`seasonal_climatology`."""
    s = _as_time_series(series)
    return s - seasonal_climatology(s, window_days=window_days)


def paired_anomalies(pairs: pd.DataFrame, *, window_days: int = ANOMALY_WINDOW_DAYS) -> pd.DataFrame:
    """Anomalies of both columns of :func:`pair` output, each from its own climatology on the paired days."""
    out = pd.DataFrame(
        {c: anomalies(pairs[c], window_days=window_days) for c in ("obs", "pred")}, index=pairs.index
    )
    return out.dropna()


def energy_balance_closure(le, h, rn, g=None, *, min_n: int = metrics.MIN_PAIRS) -> dict[str, float]:
    """Energy-balance closure of a tower: y = LE + H against x = Rn - G (G = 0 where not given).

    Returns ``slope_origin`` (least squares through the origin), ``ols_slope``/``ols_intercept``,
    ``ratio`` = sum(y) / sum(x) (energy balance ratio, Wilson et al. 2002, Agric. For. Meteorol.
    113:223) and ``n``, all on time steps where every term is valid.
    """
    le, h, rn = (np.asarray(v, dtype="float64") for v in (le, h, rn))
    g = np.zeros_like(rn) if g is None else np.asarray(g, dtype="float64")
    y, x = le + h, rn - g
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    slope, intercept = metrics.ols_fit(x, y, min_n=min_n)
    ratio = float(y.sum() / x.sum()) if x.size >= min_n and x.sum() != 0 else np.nan
    return {
        "n": int(x.size),
        "slope_origin": metrics.slope_through_origin(x, y, min_n=min_n),
        "ols_slope": slope,
        "ols_intercept": intercept,
        "ratio": ratio,
    }


def _as_time_series(series: pd.Series) -> pd.Series:
    if not isinstance(series.index, pd.DatetimeIndex):
        raise InputError("matching: a series needs a DatetimeIndex of time stamps")
    s = series.astype("float64")
    if s.index.tz is not None:
        s.index = s.index.tz_convert("UTC").tz_localize(None)
    if not s.index.is_monotonic_increasing:
        s = s.sort_index()
    return s[~s.index.duplicated(keep="first")]


def _day_of_year_365(index: pd.DatetimeIndex) -> np.ndarray:
    """0-based day of year on a 365-day calendar (29 Feb counted as 28 Feb)."""
    doy = index.day_of_year.to_numpy() - 1
    leap_after_feb = index.is_leap_year & (doy >= 59)
    return np.where(leap_after_feb, doy - 1, doy)
