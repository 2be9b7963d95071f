"""QA4SM's nearest-in-time pairing against a brute-force pairing written here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from catalog.errors import InputError
from validation import matching


def _brute_force(ref: pd.Series, other: pd.Series, window: pd.Timedelta) -> list[tuple]:
    """Every reference record's nearest other record (ties: earlier), then per other record only the
    nearest reference record (ties: earlier); loops over plain Python lists."""
    r = [(t, v) for t, v in ref.items() if np.isfinite(v)]
    o = [(t, v) for t, v in other.items() if np.isfinite(v)]
    choice = {}
    for rt, rv in r:
        best = None
        for ot, ov in o:
            d = abs(ot - rt)
            if d <= window and (best is None or d < best[0]):
                best = (d, ot, ov)
        if best is not None:
            choice[rt] = (best, rv)
    kept = {}
    for rt, ((d, ot, ov), rv) in sorted(choice.items()):
        if ot not in kept or d < kept[ot][0]:
            kept[ot] = (d, rt, rv, ov)
    return sorted((rt, rv, ov, ot) for ot, (d, rt, rv, ov) in kept.items())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nearest_in_time_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    hours = pd.date_range("2018-01-01", periods=24 * 40, freq="h")
    station = pd.Series(rng.normal(0.3, 0.05, hours.size), index=hours)
    station[rng.random(hours.size) < 0.3] = np.nan
    # product: one record a day at a random time of day, some days missing, some NaN
    days = pd.date_range("2018-01-01", periods=40, freq="D")
    stamps = days + pd.to_timedelta(rng.integers(0, 24 * 60, days.size), unit="min")
    product = pd.Series(rng.normal(0.25, 0.05, days.size), index=stamps)
    product = product[rng.random(days.size) > 0.2]
    product.iloc[::7] = np.nan
    window = pd.Timedelta(hours=12)
    for ref, other in ((station, product), (product, station)):
        got = matching.nearest_in_time(ref, other, window=window)
        want = _brute_force(ref, other, window)
        assert len(got) == len(want) > 10
        assert list(got.index) == [w[0] for w in want]
        np.testing.assert_array_equal(got["reference"].to_numpy(), [w[1] for w in want])
        np.testing.assert_array_equal(got["other"].to_numpy(), [w[2] for w in want])
        assert list(got["other_time"]) == [w[3] for w in want]
        assert got["other_time"].is_unique  # one record of the other side per reference record


def test_ties_window_edge_and_one_to_one():
    t = pd.Timestamp("2018-06-01")
    ref = pd.Series([1.0, 2.0, 3.0], index=[t, t + pd.Timedelta(hours=1), t + pd.Timedelta(hours=30)])
    other = pd.Series([10.0, 20.0], index=[t - pd.Timedelta(minutes=30), t + pd.Timedelta(minutes=30)])
    got = matching.nearest_in_time(ref, other, window=pd.Timedelta(hours=12))
    # t is 30 min from both other records: the earlier wins; t+1h takes the later one; t+30h none
    assert list(got["other"]) == [10.0, 20.0]
    assert list(got.index) == [t, t + pd.Timedelta(hours=1)]
    # two reference records wanting the same other record: the nearer keeps it
    other1 = other.iloc[1:]
    got = matching.nearest_in_time(ref, other1, window=pd.Timedelta(hours=12))
    assert list(got.index) == [t] and list(got["reference"]) == [1.0]  # both 30 min away: the earlier
    edge = matching.nearest_in_time(ref.iloc[:1], pd.Series([5.0], index=[t + pd.Timedelta(hours=12)]))
    assert len(edge) == 1  # |Δt| = window is inside
    assert matching.nearest_in_time(ref.iloc[:1], pd.Series([5.0], index=[t + pd.Timedelta(hours=13)])).empty
    with pytest.raises(InputError, match="negative"):
        matching.nearest_in_time(ref, other, window=pd.Timedelta(hours=-1))


def test_pair_nearest_in_time_either_side_as_reference():
    hours = pd.date_range("2018-01-01", periods=24 * 10, freq="h")
    station = pd.Series(np.arange(hours.size, dtype=float), index=hours)
    product = pd.Series(np.arange(10.0) * 100, index=pd.date_range("2018-01-01 06:00", periods=10, freq="D"))
    by_station = matching.pair_nearest_in_time(station, product, reference="station")
    by_product = matching.pair_nearest_in_time(station, product, reference="product")
    # each product record pairs with the station hour at its own time (Δt = 0), either way
    for got in (by_station, by_product):
        assert len(got) == 10
        np.testing.assert_array_equal(got["pred"].to_numpy(), product.to_numpy())
        np.testing.assert_array_equal(got["obs"].to_numpy(), station[product.index].to_numpy())
    assert list(by_product.index) == list(product.index)
    with pytest.raises(InputError, match="temporal reference"):
        matching.pair_nearest_in_time(station, product, reference="model")
