"""Giovanni-style analyses on products built so that the answers are known: Hovmöller diagrams,
climatology, anomaly and seasonal-mean maps, per-pixel correlation maps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from catalog.errors import InputError
from validation import climatology, correlation_map, hovmoller

LAT = np.arange(59.5, 29.5, -1.0)  # descending, as products are stored
LON = np.arange(-109.5, -80.0, 1.0)
TIME = pd.date_range("2016-01-01", "2018-12-31", freq="D")


def _grid(values):
    return xr.DataArray(values, dims=("time", "lat", "lon"), coords={"time": TIME, "lat": LAT, "lon": LON})


def test_hovmoller_time_by_latitude_and_longitude():
    t = np.arange(TIME.size, dtype="float64")[:, None, None]
    lat = LAT[None, :, None]
    lon = LON[None, None, :]
    # v = t + 2 lat + g(lon): the lon mean of a row is t + 2 lat + mean(g over the box's columns)
    g = np.sin(np.deg2rad(lon) * 7)
    v = _grid(np.broadcast_to(t + 2 * lat + g, (TIME.size, LAT.size, LON.size)).copy())
    v[:, 5, 3] = np.nan  # a missing cell drops out of its row's mean
    h = hovmoller.hovmoller(v, (-100, -90), (40, 50), along="lat")
    assert h.dims == ("time", "lat") and list(h["lat"].values) == [x for x in LAT if 40 <= x <= 50]
    cols = (LON >= -100) & (LON <= -90)
    want = t[:, 0, 0][:, None] + 2 * h["lat"].values[None, :] + g[0, 0, cols].mean()
    np.testing.assert_allclose(h.values, want, rtol=1e-6)
    # v = t + lon + k(lat): the lat mean of a column is t + lon + the cos(lat)-weighted mean of k
    k = (LAT - 45.0) ** 2
    v = _grid(np.broadcast_to(t + lon + k[None, :, None], (TIME.size, LAT.size, LON.size)).copy())
    h = hovmoller.hovmoller(v, (-100, -90), (30, 60), along="lon")
    w = np.cos(np.deg2rad(LAT))
    want = t[:, 0, 0][:, None] + LON[cols][None, :] + np.sum(w * k) / np.sum(w)
    assert h.dims == ("time", "lon")
    np.testing.assert_allclose(h.values, want, rtol=1e-6)
    with pytest.raises(InputError, match="no cell centre"):
        hovmoller.hovmoller(v, (0, 10), (0, 10))
    with pytest.raises(InputError, match="along 'time'"):
        hovmoller.hovmoller(v, (-100, -90), (40, 50), along="time")


def test_climatology_anomalies_and_seasons():
    month = TIME.month.to_numpy()
    year = TIME.year.to_numpy()
    base = 0.1 + 0.01 * month  # a known calendar-month value
    offset = {2016: -0.02, 2017: 0.0, 2018: 0.02}  # mean zero over the three years
    series = base + np.vectorize(offset.get)(year)
    v = _grid(np.broadcast_to(series[:, None, None], (TIME.size, LAT.size, LON.size)).copy())
    v[:, 0, 0] = np.nan
    clim = climatology.monthly_climatology(v)
    assert clim.dims == ("month", "lat", "lon")
    # each month has the same number of days in every year except February 2016: weight the offsets
    feb = (np.array([29, 28, 28]) * np.array([-0.02, 0.0, 0.02])).sum() / 85
    want = 0.1 + 0.01 * np.arange(1, 13) + np.where(np.arange(1, 13) == 2, feb, 0.0)
    np.testing.assert_allclose(clim[:, 3, 3].values, want, atol=1e-12)
    assert np.isnan(clim[:, 0, 0]).all()
    anom = climatology.anomalies(v)
    day = TIME.get_loc(pd.Timestamp("2018-07-04"))
    assert float(anom[day, 3, 3]) == pytest.approx(0.02, abs=1e-12)
    seasonal = climatology.seasonal_means(v)
    assert list(seasonal["season"].values) == ["DJF", "MAM", "JJA", "SON"]
    for season, months in {"DJF": (12, 1, 2), "JJA": (6, 7, 8)}.items():
        pick = np.isin(month, months)
        assert float(seasonal.sel(season=season)[3, 3]) == pytest.approx(series[pick].mean(), abs=1e-12)
    with pytest.raises(InputError, match=r"month\(s\) \[1\]"):
        climatology.anomalies(v, clim.sel(month=slice(2, 12)))


def test_correlation_map_of_a_product_with_itself_is_one_where_valid():
    rng = np.random.default_rng(4)
    a = _grid(rng.normal(0.25, 0.05, (TIME.size, LAT.size, LON.size)))
    a[:, 0, :] = np.nan  # no data
    a[5:, 1, 0] = np.nan  # only 5 valid steps < min_n
    a[:, 2, 0] = 0.3  # constant
    out = correlation_map.correlation_map(a, a)
    valid = np.ones((LAT.size, LON.size), bool)
    valid[0, :] = valid[1, 0] = valid[2, 0] = False
    np.testing.assert_allclose(out["r"].values[valid], 1.0, rtol=0, atol=1e-12)
    assert np.isnan(out["r"].values[~valid]).all()
    assert int(out["n"][1, 0]) == 5
    neg = correlation_map.correlation_map(a, -2 * a + 1)
    np.testing.assert_allclose(neg["r"].values[valid], -1.0, atol=1e-12)


def test_correlation_map_equals_pairwise_pearson():
    rng = np.random.default_rng(5)
    shape = (TIME.size, LAT.size, LON.size)
    a = _grid(rng.normal(0, 1, shape))
    b = 0.5 * a + _grid(rng.normal(0, 1, shape))
    a = a.where(rng.random(shape) > 0.3)
    b = b.where(rng.random(shape) > 0.2)
    out = correlation_map.correlation_map(a, b)
    for i, j in ((0, 0), (7, 11), (29, 29)):
        x, y = a[:, i, j].values, b[:, i, j].values
        keep = np.isfinite(x) & np.isfinite(y)
        assert int(out["n"][i, j]) == keep.sum()
        assert float(out["r"][i, j]) == pytest.approx(np.corrcoef(x[keep], y[keep])[0, 1], rel=1e-10)
    other = a.assign_coords(lon=a["lon"] + 0.25)
    with pytest.raises(InputError, match="share no 'lon'"):
        correlation_map.correlation_map(a, other)
