"""The one monthly/daily rule (catalog.time_steps) on edge cases worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from catalog import time_steps as T


def test_month_starts_are_monthly_and_days_daily():
    assert T.time_step(pd.date_range("2018-01-01", periods=12, freq="MS")) == "month"
    assert T.time_step(pd.date_range("2018-01-01", periods=40, freq="D")) == "day"
    assert T.time_step(pd.date_range("2018-01-01", periods=48, freq="h")) == "day"


def test_one_stamp_or_none_is_daily():
    assert T.time_step(pd.DatetimeIndex(["2018-01-01"])) == "day"
    assert T.time_step(pd.DatetimeIndex([])) == "day"
    assert T.median_step_days(pd.DatetimeIndex(["2018-01-01"])) == 1.0


def test_gaps_in_a_monthly_record_keep_it_monthly():
    t = pd.DatetimeIndex(["2018-01-01", "2018-02-01", "2018-06-01", "2019-01-01"])
    assert T.time_step(t) == "month"
    # one doubled stamp and unsorted input change nothing (distinct stamps, sorted)
    assert T.time_step(pd.DatetimeIndex(["2018-03-01", "2018-01-01", "2018-02-01", "2018-01-01"])) == "month"


def test_mid_month_stamps_are_never_monthly():
    # 30-day spacing, but not on the first of the month
    t = pd.date_range("2018-01-15", periods=6, freq="30D")
    assert T.median_step_days(t) == pytest.approx(30.0)
    assert T.time_step(t) == "day"


def test_first_of_month_stamps_of_a_daily_record_with_a_short_median_are_daily():
    # days 1 and 2 of January, then 1 February: median spacing (1, 30) -> 15.5 days < 27
    t = pd.DatetimeIndex(["2018-01-01", "2018-01-02", "2018-02-01"])
    assert T.time_step(t) == "day"


def test_pooled_median_over_all_series_not_a_single_ones():
    monthly = pd.date_range("2018-01-01", periods=24, freq="MS")
    one = pd.DatetimeIndex(["2018-05-01"])
    daily_on_first = pd.DatetimeIndex(["2018-01-01"])
    assert T.pooled_time_step([monthly, one, daily_on_first]) == "month"
    # a short daily site adds 4 spacings of 1 day to 23 of a month: the pooled median is still a
    # month, but its stamps are not month starts, so the network is daily
    assert T.pooled_time_step([monthly, pd.date_range("2018-03-01", periods=5, freq="D")]) == "day"
    # a monthly site alone is monthly; beside two daily sites the pooled series decides, not that site
    pair = pd.DatetimeIndex(["2018-01-01", "2018-02-01"])
    assert T.time_step(pair) == "month"
    assert T.pooled_time_step([pair, ["2019-01-01", "2019-01-02"], ["2019-03-01", "2019-03-02"]]) == "day"
    assert T.pooled_time_step([pd.Series(monthly), pd.Series(monthly + pd.DateOffset(years=2))]) == "month"
    assert T.pooled_time_step([one, daily_on_first]) == "day"  # no series has two stamps
    assert T.pooled_time_step([]) == "day"


def test_missing_stamps_are_ignored():
    t = pd.Series(pd.to_datetime(["2018-01-01", None, "2018-02-01", "2018-03-01"]))
    assert T.time_step(t) == "month"


def test_samples_per_day_from_the_median_spacing():
    assert T.samples_per_day(pd.date_range("2018-01-01", periods=96, freq="30min")) == pytest.approx(48.0)
    assert T.samples_per_day(pd.date_range("2018-01-01", periods=10, freq="D")) == 1.0
    assert T.samples_per_day(pd.date_range("2018-01-01", periods=10, freq="MS")) == 1.0
    hourly_with_gap = pd.date_range("2018-01-01", periods=30, freq="h").delete(slice(5, 15))
    assert T.samples_per_day(hourly_with_gap) == pytest.approx(24.0)
    assert np.isfinite(T.samples_per_day(pd.DatetimeIndex([])))


def test_min_valid_samples_rounds_up_and_needs_one():
    assert T.min_valid_samples(24, 0.5) == 12
    assert T.min_valid_samples(48, 0.7) == 34  # 33.6 -> 34
    assert T.min_valid_samples(1, 0.5) == 1
    assert T.min_valid_samples(25, 0.28) == 7  # 0.28 * 25 = 7.000000000000001 in floats, still 7
    assert T.min_valid_samples(24, 1e-6) == 1


def _hourly_two_days() -> pd.Series:
    t = pd.date_range("2020-01-01", periods=48, freq="h")
    values = np.r_[np.arange(24.0), np.full(24, np.nan)]
    values[24:34] = 5.0  # day 2: 10 of 24 hours valid
    return pd.Series(values, index=t)


def test_daily_mean_keeps_days_with_enough_valid_samples():
    s = _hourly_two_days()
    daily = T.daily_mean(s, samples_per_day=24, min_coverage=0.5)
    assert daily.index.tolist() == [pd.Timestamp("2020-01-01"), pd.Timestamp("2020-01-02")]
    assert daily.iloc[0] == pytest.approx(11.5) and np.isnan(daily.iloc[1])
    assert T.daily_mean(s, samples_per_day=24, min_coverage=10 / 24).iloc[1] == pytest.approx(5.0)
    assert np.isnan(T.daily_mean(s, samples_per_day=24, min_coverage=11 / 24).iloc[1])


def test_daily_mean_of_a_table_is_per_column():
    s = _hourly_two_days()
    table = pd.DataFrame({"a": s, "b": s.fillna(1.0)})
    daily = T.daily_mean(table, samples_per_day=24, min_coverage=0.5)
    assert np.isnan(daily.loc["2020-01-02", "a"])
    assert daily.loc["2020-01-02", "b"] == pytest.approx((10 * 5.0 + 14 * 1.0) / 24)


def test_daily_mean_of_xarray_matches_pandas():
    s = _hourly_two_days()
    da = xr.DataArray(
        np.repeat(s.to_numpy()[:, None], 2, axis=1), dims=("time", "x"), coords={"time": s.index}
    )
    out = T.daily_mean(da, samples_per_day=24, min_coverage=0.5)
    assert out.sizes == {"time": 2, "x": 2}
    np.testing.assert_allclose(out.isel(x=1).values, T.daily_mean(s, samples_per_day=24, min_coverage=0.5))
    ds = T.daily_mean(xr.Dataset({"v": da}), samples_per_day=24, min_coverage=0.4)
    assert float(ds["v"].isel(time=1, x=0)) == pytest.approx(5.0)
