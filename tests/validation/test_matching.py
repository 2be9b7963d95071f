"""Matching, series and quality rules of the validation, on small series worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from catalog import geo
from catalog.errors import InputError
from validation import config, matching, series
from validation.config import ValidationOptions


def test_haversine_one_degree_of_latitude():
    assert geo.haversine_km(10.0, 0.0, 10.0, 1.0) == pytest.approx(2 * math.pi * 6371.0088 / 360)


def _grid() -> xr.Dataset:
    lat = np.array([2.0, 1.0, 0.0])  # descending
    lon = np.array([0.0, 1.0, 2.0])
    t = pd.date_range("2020-01-01", periods=2)
    v = np.arange(18, dtype="float32").reshape(2, 3, 3)
    return xr.Dataset({"le": (("time", "lat", "lon"), v)}, coords={"time": t, "lat": lat, "lon": lon})


def test_grid_series_nearest_and_bilinear():
    ds = _grid()
    near = matching.grid_series(ds, 0.8, 1.9, "nearest")
    # nearest centre (lon 1, lat 2) holds v[:, 0, 1] = [1, 10]
    assert near["le"].values.tolist() == [1.0, 10.0]
    assert near.attrs["pixel_lon"] == 1.0 and near.attrs["pixel_lat"] == 2.0
    assert near.attrs["distance_km"] == pytest.approx(geo.haversine_km(1.0, 2.0, 0.8, 1.9))
    bil = matching.grid_series(ds, 0.5, 1.5, "bilinear")
    # midway between v[0, 0:2, 0:2] = [[0, 1], [3, 4]] -> 2.0 (and 11.0 on day 2)
    assert bil["le"].values.tolist() == pytest.approx([2.0, 11.0])
    assert bil.attrs["method"] == "bilinear"
    with pytest.raises(InputError, match="outside"):
        matching.grid_series(ds, 5.0, 1.0)
    with pytest.raises(InputError, match="spatial method"):
        matching.grid_series(ds, 1.0, 1.0, "cubic")


def test_to_daily_coverage():
    t = pd.date_range("2020-01-01", periods=48, freq="h")
    values = np.r_[np.arange(24.0), np.full(24, np.nan)]
    values[24:34] = 5.0  # day 2: 10 of 24 hours
    s = pd.Series(values, index=t)
    daily = matching.to_daily(s, min_coverage=0.5)
    assert daily.iloc[0] == pytest.approx(11.5)
    assert np.isnan(daily.iloc[1])
    assert matching.to_daily(s, min_coverage=0.4).iloc[1] == pytest.approx(5.0)


def test_to_monthly_coverage():
    t = pd.date_range("2021-02-01", "2021-03-31", freq="D")
    s = pd.Series(1.0, index=t)
    s[(t.month == 2) & (t.day > 10)] = np.nan  # Feb: 10 of 28 days
    monthly = matching.to_monthly(s, min_coverage=0.5)
    assert list(monthly.index) == [pd.Timestamp("2021-02-01"), pd.Timestamp("2021-03-01")]
    assert np.isnan(monthly.iloc[0]) and monthly.iloc[1] == 1.0
    with pytest.raises(InputError, match="time step"):
        matching.to_time_step(s, "week")


def test_anomaly_of_pure_annual_cycle():
    # three non-leap years of an exact 365-day sinusoid: the 31-day moving mean keeps the factor
    # sin(31 pi / 365) / (31 sin(pi / 365)) of the amplitude, so the anomaly is the rest.
    t = pd.date_range("2017-01-01", "2019-12-31", freq="D")
    phase = 2 * np.pi * (t.day_of_year.to_numpy() - 1) / 365
    s = pd.Series(3.0 + 2.0 * np.sin(phase), index=t)
    gain = math.sin(31 * math.pi / 365) / (31 * math.sin(math.pi / 365))
    anom = matching.anomalies(s, window_days=31)
    np.testing.assert_allclose(anom.to_numpy(), 2.0 * (1 - gain) * np.sin(phase), atol=1e-9)


def test_monthly_anomaly_uses_calendar_months():
    t = pd.date_range("2018-01-01", periods=24, freq="MS")
    s = pd.Series(np.r_[np.arange(12.0), np.arange(12.0) + 2.0], index=t)
    anom = matching.anomalies(s)
    np.testing.assert_allclose(anom.to_numpy(), np.r_[np.full(12, -1.0), np.full(12, 1.0)])


def test_energy_balance_closure():
    rn = np.array([100.0, 200.0, 300.0, 400.0, 500.0, np.nan] * 3)
    g = np.full(rn.shape, 20.0)
    avail = rn - g
    le, h = 0.5 * avail, 0.3 * avail
    out = matching.energy_balance_closure(le, h, rn, g, min_n=5)
    assert out["n"] == 15
    assert out["slope_origin"] == pytest.approx(0.8)
    assert out["ols_slope"] == pytest.approx(0.8)
    assert out["ols_intercept"] == pytest.approx(0.0, abs=1e-9)
    assert out["ratio"] == pytest.approx(0.8)


def test_quality_rules_from_config():
    smap = config.quality_rule("smap_l3_demo")
    assert smap["rule"] == "bit_clear"
    keep = config.flag_keep_mask([0, 1, 2, 3, 65534, np.nan], smap)
    assert keep.tolist() == [True, False, True, False, False, False]
    cci = config.quality_rule("ESA_CCI_SM_C")
    assert config.flag_keep_mask([0, 1, 32, 0], cci).tolist() == [True, False, False, True]
    assert config.quality_rule("fluxes_demo") is None


def test_options_from_config_and_bad_options():
    opts = ValidationOptions.from_config(anomaly=True)
    assert opts.anomaly and opts.anomaly_window_days == 31 and opts.depth == (0.0, 0.1)
    with pytest.raises(InputError, match="min_coverage"):
        ValidationOptions.from_config(min_coverage=0.0)
    with pytest.raises(InputError, match="unknown options"):
        ValidationOptions.from_config(colour="red")
    with pytest.raises(InputError, match="cannot be validated"):
        config.variable_spec("ndvi")


def test_fluxnet_station_series_qc_and_corrected():
    t = pd.date_range("2010-01-01", periods=4)
    table = pd.DataFrame(
        {
            "time": t,
            "LE": [10.0, 20.0, 30.0, 40.0],
            "LE_QC": [1.0, 0.5, np.nan, 0.9],
            "LE_CORR": [11.0, 22.0, 33.0, 44.0],
        }
    )
    opts = ValidationOptions.from_config(qc_min=0.8)
    s = series.station_series(table, "le", opts)
    assert s["value"].tolist() == [10.0, 20.0, 30.0, 40.0]
    assert s["qc_pass"].tolist() == [True, False, True, True]
    corr = series.station_series(table, "le", ValidationOptions.from_config(use_corrected=True))
    assert corr["value"].tolist() == [11.0, 22.0, 33.0, 44.0]
    assert corr["qc_pass"].tolist() == [True, False, True, True]  # LE_QC used for LE_CORR
    period = ValidationOptions.from_config(period=["2010-01-02", "2010-01-03"])
    assert len(series.station_series(table, "le", period)) == 2
    with pytest.raises(InputError, match="no column 'NETRAD'"):
        series.station_series(table, "rn", opts)


def test_ismn_station_series_depth_and_flags():
    t = pd.Timestamp("2018-01-01")
    table = pd.DataFrame(
        {
            "time": [t, t, t, t + pd.Timedelta(hours=1)],
            "soil_moisture": [0.20, 0.30, 0.50, 0.25],
            "depth_from": [0.05, 0.05, 0.20, 0.05],
            "depth_to": [0.05, 0.05, 0.20, 0.05],
            "flag": ["G", "D06", "G", "C02"],
        }
    )
    s = series.station_series(table, "ssm", ValidationOptions.from_config())
    # 00:00: only the good 0.05 m sensor (0.20); 01:00: no good sensor -> shown, not passed
    assert s["value"].tolist() == pytest.approx([0.20, 0.25])
    assert s["qc_pass"].tolist() == [True, False]
    with pytest.raises(InputError, match="depth"):
        series.station_series(table, "ssm", ValidationOptions.from_config(depth=[0.3, 0.4]))


def test_product_series_flag_mask_and_match_pairs():
    t = pd.to_datetime(["2018-01-01 06:00", "2018-01-01 18:00", "2018-01-02 06:00", "2018-01-03 06:00"])
    ds = xr.Dataset(
        {"ssm": ("time", [0.2, 0.4, 0.3, 0.1]), "flag": ("time", [0, 0, 1, 2])},
        coords={"time": t},
    )
    pred = series.product_series(ds, "ssm", product_name="smap_demo")
    # day 1: mean of AM and PM; day 2: bit 0 set -> NaN; day 3: bit 1 only -> kept
    assert pred.to_numpy().tolist() == pytest.approx([0.3, np.nan, 0.1], nan_ok=True)
    obs = pd.DataFrame(
        {"value": np.full(72, 0.25), "qc_pass": np.ones(72, dtype=bool)},
        index=pd.date_range("2018-01-01", periods=72, freq="h"),
    )
    pairs = series.match_pairs(obs, pred, "day", ValidationOptions.from_config())
    assert list(pairs.index) == [pd.Timestamp("2018-01-01"), pd.Timestamp("2018-01-03")]
    assert pairs["obs"].tolist() == pytest.approx([0.25, 0.25])
    assert pairs["pred"].tolist() == pytest.approx([0.3, 0.1])


def test_taylor_geometry_distance_is_centred_rmsd():
    from validation import metrics, taylor

    rng = np.random.default_rng(2)
    o = rng.normal(size=200)
    p = 0.7 * o + rng.normal(scale=0.5, size=200)
    ts = metrics.taylor_stats(o, p)
    x, y = taylor.xy(ts.sigma_norm, ts.r)
    # distance from the reference point (1, 0) equals E' / sigma_o (law of cosines, Taylor 2001)
    assert math.hypot(x - 1.0, y) == pytest.approx(ts.crmsd_norm, rel=1e-9)
    g = taylor.grid(taylor.radius_limit([ts.sigma_norm, 2.2]))
    assert g["std_arcs"][-1][0, 0] == pytest.approx(1.1 * 2.2)
    for ray, (_lx, ly, text) in zip(g["r_rays"], g["r_labels"], strict=True):
        assert ray[1, 0] / np.hypot(*ray[1]) == pytest.approx(float(text))
        assert ly >= 0
    for arc in g["crmsd_arcs"]:
        assert (np.hypot(*arc.T) <= 1.1 * 2.2 + 1e-9).all() and (arc[:, 0] >= 0).all()
    assert min(lbl[0] for lbl in taylor.grid(1.5, negative=True)["r_labels"]) < 0
