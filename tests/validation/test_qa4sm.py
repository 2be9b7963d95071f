"""QA4SM-style options on constructed stations and products: quality switch, per sensor, seasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from catalog.errors import InputError
from validation import metrics, qa4sm
from validation.config import ValidationOptions

HOURS = pd.date_range("2017-01-01", "2018-12-31 23:00", freq="h")


def _station_table(rng):
    """Two probes at 5 cm (A good, B with a bad spell) and one at 20 cm, hourly, flags per record."""
    truth = 0.25 + 0.08 * np.sin(2 * np.pi * HOURS.day_of_year / 365.25)
    rows = []
    for sensor, depth, noise in (("A", 0.05, 0.01), ("B", 0.05, 0.02), ("C", 0.2, 0.01)):
        values = truth + rng.normal(0, noise, HOURS.size)
        flag = np.where((sensor == "B") & (HOURS.month == 3), "D01", "G")
        rows.append(
            pd.DataFrame(
                {
                    "site_id": "NET.S1",
                    "time": HOURS,
                    "soil_moisture": np.where(flag == "G", values, np.nan),
                    "soil_moisture_raw": values,
                    "depth_from": depth,
                    "depth_to": depth,
                    "flag": flag,
                    "sensor": sensor,
                }
            )
        )
    return pd.concat(rows, ignore_index=True), truth


def _product(rng, truth):
    days = pd.date_range("2017-01-01", "2018-12-31", freq="D")
    daily_truth = pd.Series(truth, index=HOURS).resample("D").mean().to_numpy()
    sm = 0.6 * daily_truth + 0.05 + rng.normal(0, 0.02, days.size)
    flag = np.where(rng.random(days.size) < 0.25, 1.0, 0.0)
    stamps = days + pd.Timedelta(hours=1)
    data = {"ssm": (("location", "time"), sm[None, :]), "flag": (("location", "time"), flag[None, :])}
    coords = {"location": [7], "lon": ("location", [10.0]), "lat": ("location", [45.0]), "time": stamps}
    return xr.Dataset(data, coords=coords)


@pytest.fixture
def world():
    rng = np.random.default_rng(11)
    table, truth = _station_table(rng)
    sites = pd.DataFrame({"site_id": ["NET.S1"], "lon": [10.01], "lat": [45.0]})
    return sites, table, _product(rng, truth)


def test_per_sensor_and_per_station(world):
    sites, table, _ = world
    opts = ValidationOptions.from_config()  # 0-0.1 m, flag G
    per_sensor = qa4sm.station_records(table, opts, "sensor")
    assert sorted(per_sensor) == ["A 0.05-0.05 m", "B 0.05-0.05 m"]  # C at 20 cm left out
    b = per_sensor["B 0.05-0.05 m"]
    assert b[b.index.month == 3].isna().all() and b[b.index.month == 4].notna().all()
    station = qa4sm.station_records(table, opts, "station")["station"]
    a = per_sensor["A 0.05-0.05 m"]
    both = pd.concat([a, b], axis=1).mean(axis=1)  # mean of the valid probes per hour
    pd.testing.assert_series_equal(station, both, check_names=False)
    with pytest.raises(InputError, match="no ISMN sensor between 0.3 and 0.5 m"):
        qa4sm.station_records(table, ValidationOptions.from_config(depth=[0.3, 0.5]), "sensor")


def test_quality_switch_on_off_custom(world):
    _, _, product = world
    one = product.isel(location=0)
    flag = one["flag"].values
    on = qa4sm.product_records(one, "ssm", qa4sm.quality_rule("ESA_CCI_SM_C_V08_1", "on"))
    off = qa4sm.product_records(one, "ssm", qa4sm.quality_rule("ESA_CCI_SM_C_V08_1", "off"))
    custom = qa4sm.product_records(
        one, "ssm", qa4sm.quality_rule("x", {"variable": "flag", "rule": "equals", "values": [1]})
    )
    assert int(on.notna().sum()) == int((flag == 0).sum())
    assert int(off.notna().sum()) == flag.size
    assert int(custom.notna().sum()) == int((flag == 1).sum())
    assert qa4sm.quality_rule("no_family_product", "on") is None
    with pytest.raises(InputError, match="'rule' in"):
        qa4sm.custom_rule({"variable": "flag", "rule": "less"})
    with pytest.raises(InputError, match="integer 'bit'"):
        qa4sm.custom_rule({"variable": "flag", "rule": "bit_clear"})
    with pytest.raises(InputError, match="no flag variable 'qual'"):
        rule = {"variable": "qual", "rule": "equals", "values": [0]}
        qa4sm.product_records(one.drop_vars("flag"), "ssm", rule)


def test_run_states_options_and_splits_seasons(world):
    sites, table, product = world
    opts = qa4sm.Qa4smOptions(pairing="nearest", scaling="mean_std", seasons=True, quality="on")
    out = qa4sm.validate({"cci_like": product, "unrated": product}, sites, table, opts)
    assert set(out["product"]) == {"cci_like", "unrated"}
    assert set(out["season"]) == {"all", "DJF", "MAM", "JJA", "SON"}
    assert (out["scaling"] == "mean_std").all() and (out["pairing"] == "nearest").all()
    assert (out["temporal_reference"] == "station").all() and (out["window_hours"] == 12).all()
    # 'cci' rule keeps flag 0 only, the unrated product keeps every record
    n = out[out["season"] == "all"].set_index(["product", "sensor"])["n"]
    assert n["unrated", "A 0.05-0.05 m"] > n["cci_like", "A 0.05-0.05 m"] > 300
    # the seasons partition the pairs; mean_std scaling: zero bias over all pairs, R unchanged
    for (_, _), rows in out.groupby(["product", "sensor"]):
        by = rows.set_index("season")
        assert by.loc[["DJF", "MAM", "JJA", "SON"], "n"].sum() == by.loc["all", "n"]
        assert abs(by.loc["all", "bias"]) < 1e-12
        assert by.loc["all", "bias_unscaled"] == pytest.approx(-0.05, abs=0.02)
    assert out.attrs["conventions"]["bias"].startswith("mean(product − reference)")


def test_pair_metrics_by_season_are_metrics_of_the_season_pairs(world):
    sites, table, product = world
    opts = qa4sm.Qa4smOptions(scaling="linreg")
    obs = qa4sm.station_records(table, opts.base, "sensor")["A 0.05-0.05 m"]
    pred = qa4sm.product_records(product.isel(location=0), "ssm", None)
    pairs = qa4sm.paired(obs, pred, opts)
    got = qa4sm.pair_metrics(pairs, "linreg", by_season=True)
    o, p = pairs["obs"].to_numpy(), pairs["pred"].to_numpy()
    slope, intercept = np.polyfit(p, o, 1)
    jja = pairs.index.month.isin([6, 7, 8])
    assert got["JJA"]["n"] == int(jja.sum())
    assert got["JJA"]["rmse"] == pytest.approx(metrics.rmse(o[jja], intercept + slope * p[jja]), rel=1e-9)
    assert got["JJA"]["bias_unscaled"] == pytest.approx(np.mean(p[jja] - o[jja]), rel=1e-9)
    assert got["all"]["ubrmse_unscaled"] == pytest.approx(np.std(p - o), rel=1e-9)


def test_daily_mean_pairing_needs_half_a_day(world):
    _, table, product = world
    opts = qa4sm.Qa4smOptions()
    obs = qa4sm.station_records(table, opts.base, "sensor")["A 0.05-0.05 m"]
    thin = obs.copy()
    day = pd.Timestamp("2018-05-05")
    thin[(thin.index >= day) & (thin.index < day + pd.Timedelta(hours=13))] = np.nan  # 11 h left
    pred = qa4sm.product_records(product.isel(location=0), "ssm", None)
    full, cut = qa4sm.paired(obs, pred, opts), qa4sm.paired(thin, pred, opts)
    assert day in full.index and day not in cut.index and len(full) == len(cut) + 1
    assert full.loc[day, "obs"] == pytest.approx(obs[day : day + pd.Timedelta(hours=23)].mean())


def test_bad_options():
    with pytest.raises(InputError, match="pairing 'hourly'"):
        qa4sm.Qa4smOptions(pairing="hourly")
    with pytest.raises(InputError, match="scaling 'z'"):
        qa4sm.Qa4smOptions(scaling="z")
    with pytest.raises(InputError, match="quality 'maybe'"):
        qa4sm.Qa4smOptions(quality="maybe")
    with pytest.raises(InputError, match="window_hours"):
        qa4sm.Qa4smOptions(window_hours=0)
