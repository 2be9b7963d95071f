"""Time steps of series and products: the one rule that tells monthly from daily data, and the
one daily mean of sub-daily samples with its coverage rule (:func:`daily_mean`).

A series is **monthly** when every time stamp is the first day of a month and the median spacing of
its distinct time stamps is at least :data:`MONTHLY_MIN_DAYS` days; otherwise (including a series with
fewer than two distinct stamps) it is **daily**. Several series (e.g. the sites of a network) are
judged together: the median is taken over the pooled spacings of all of them, never a single one's.
The median, not the minimum, lets a monthly record with gaps stay monthly and keeps one doubled
stamp from turning it daily.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

MONTHLY_MIN_DAYS = 27.0  # below the shortest month (28 d), far above any daily spacing
_DAY_NS = 86400e9


def _distinct(times) -> pd.DatetimeIndex:
    """The distinct, sorted, non-missing time stamps of ``times``."""
    t = pd.DatetimeIndex(pd.to_datetime(np.asarray(times).ravel()))
    return t[t.notna()].unique().sort_values().as_unit("ns")


def _pooled_spacings_days(time_lists) -> tuple[np.ndarray, bool]:
    """Spacings (days) between consecutive distinct stamps of every series, pooled, and whether
    every stamp of every series falls on the first day of a month."""
    diffs, first_of_month = [], True
    for times in time_lists:
        t = _distinct(times)
        first_of_month &= bool((t.day == 1).all())
        if len(t) > 1:
            diffs.append(np.diff(t.asi8) / _DAY_NS)
    return (np.concatenate(diffs) if diffs else np.array([])), first_of_month


def median_step_days(times) -> float:
    """Median spacing in days of the distinct time stamps of ``times``; 1.0 for fewer than two."""
    diffs, _ = _pooled_spacings_days([times])
    return float(np.median(diffs)) if diffs.size else 1.0


def samples_per_day(times) -> float:
    """Nominal number of samples per day, 1 / :func:`median_step_days` (1 for daily or coarser)."""
    return max(1.0 / median_step_days(times), 1.0)


def pooled_time_step(time_lists) -> str:
    """``"month"`` or ``"day"`` for several series judged together (module rule): every stamp of
    every series the first of a month and the median of the pooled spacings ≥ 27 days."""
    diffs, first_of_month = _pooled_spacings_days(time_lists)
    if diffs.size and first_of_month and np.median(diffs) >= MONTHLY_MIN_DAYS:
        return "month"
    return "day"


def time_step(times) -> str:
    """``"month"`` or ``"day"`` for one series of time stamps (module rule)."""
    return pooled_time_step([times])


def is_monthly(times) -> bool:
    """Whether one series of time stamps is monthly (module rule)."""
    return time_step(times) == "month"


def min_valid_samples(samples_per_day: float, min_coverage: float) -> int:
    """Valid samples a day needs for a daily mean: ⌈min_coverage × samples_per_day⌉, at least 1 (a
    1e-9 slack keeps float rounding of the product from asking for one more)."""
    return max(1, math.ceil(min_coverage * samples_per_day - 1e-9))


def daily_mean(obj, *, samples_per_day: float, min_coverage: float, dim: str = "time"):
    """Daily mean of the valid samples of each day, missing where fewer than
    :func:`min_valid_samples` (``min_coverage`` of the nominal ``samples_per_day``) are valid.

    ``obj``: a pandas Series/DataFrame on a ``DatetimeIndex`` or an xarray object with a time
    dimension ``dim``; days are bins of ``.resample("1D")`` labelled by their start (00:00), days
    without a sample included (NaN). Mean = Σ valid x / n valid, per column or variable.
    """
    need = min_valid_samples(samples_per_day, min_coverage)
    if hasattr(obj, "dims"):  # xarray
        mean = obj.resample({dim: "1D"}).mean(skipna=True)
        count = obj.notnull().resample({dim: "1D"}).sum()
    else:
        days = obj.resample("1D")
        mean, count = days.mean(), days.count()
    return mean.where(count >= need)
