"""ILAMB scorecard on the real Hawaii set (``../shared/data/qa4sm_hawaii``), 2017-2018.

Products: ESA CCI SM combined v08.1 and C3S v202505 (flag 0 kept), SMAP L3 V9 AM+PM (every
retrieval: read without ``retrieval_qual_flag``, since in 2017-18 no station's nearest SMAP cell has
recommended retrievals), all time-series cells; reference: the ISMN stations at 0-0.1 m, flag G.
The hand computation parses the ``.stm`` files line by line, takes the daily mean of days with at
least 12 hourly values, pairs it with the product's daily value at the nearest location (haversine),
forms monthly means of the paired days (months with at least half their days paired) and computes
the ILAMB scores with plain numpy. Sources: awst-austria/qa4sm-testdata (ESA CCI SM CC-BY-4.0, C3S
Copernicus licence, NASA SMAP public domain, ISMN terms: Dorigo et al. 2021).
"""

from __future__ import annotations

import io
import math
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
import xarray as xr

HAWAII = "qa4sm_hawaii"
ISMN = "ISMN/ISMN_TESTDATA_HAWAII"
CELLS = {  # name: folder, soil-moisture variable, flag variables read
    "ESA_CCI_SM_C_V08_1": ("ts_cells/ESA_CCI_SM_combined/ESA_CCI_SM_C_V08_1", "sm", ["flag"]),
    "C3S_V202505": ("ts_cells/C3S_combined/C3S_V202505/TCDR/063_images_to_ts/combined-daily", "sm", ["flag"]),
    "SMAP_V9_AM_PM": ("ts_cells/SMAP_L3/SMAP_V9_AM_PM/netcdf", "soil_moisture", []),
}
PERIOD = ("2017-01-01", "2018-12-31")
GRID_PERIOD = ("2015-01-01", "2020-12-31")  # the gridded products written to the catalog


@pytest.fixture(scope="module")
def hawaii(shared_data):
    from data_prep.ismn import read_ismn_folder
    from data_prep.ts_cells import read_ts_cells

    sites, obs = read_ismn_folder(shared_data / HAWAII / ISMN)
    products = {}
    for name, (folder, var, flags) in CELLS.items():
        ds = read_ts_cells(shared_data / HAWAII / folder, variables=[var, *flags])
        products[name] = ds if "ssm" in ds else ds.rename({var: "ssm"})
    return sites, obs, products


def _options():
    from validation.config import ValidationOptions
    from validation.scorecard import ScorecardOptions

    return ScorecardOptions.from_config(base=ValidationOptions.from_config(period=list(PERIOD)))


@pytest.fixture(scope="module")
def card(hawaii):
    from validation import scorecard

    sites, obs, products = hawaii
    options = _options()
    cols = {
        name: scorecard.station_collocation(
            scorecard.point_product_matches(ds, name, sites, obs, options), sites, options
        )
        for name, ds in products.items()
    }
    return scorecard.build_scorecard(
        cols, variable="ssm", reference="ISMN Hawaii (SCAN, COSMOS)", options=options
    )


def _station_daily(station_dir) -> pd.Series:
    """Daily means (≥ 12 hourly values) of the 'G' records at 0-0.1 m, probes averaged per hour."""
    records = []
    for f in sorted(station_dir.glob("*_sm_*.stm")):
        for line in f.read_text().splitlines():
            parts = line.split()
            if len(parts) < 14 or float(parts[11]) > 0.1 or parts[13] != "G":
                continue
            records.append((datetime.strptime(parts[0] + parts[1], "%Y/%m/%d%H:%M"), float(parts[12])))
    hourly = pd.DataFrame(records, columns=["time", "v"]).groupby("time")["v"].mean()
    days = hourly.groupby(hourly.index.normalize())
    daily = days.mean()[days.count() >= 12]
    return daily[(daily.index >= PERIOD[0]) & (daily.index <= PERIOD[1])]


def _haversine(lon1, lat1, lon2, lat2):
    p1, p2, dl = np.radians(lat1), np.radians(lat2), np.radians(np.asarray(lon2) - lon1)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * 6371.0088 * np.arcsin(np.sqrt(a))


def _product_daily(ds: xr.Dataset, lon: float, lat: float) -> pd.Series:
    i = int(np.argmin(_haversine(lon, lat, ds["lon"].values, ds["lat"].values)))
    one = ds.isel(location=i)
    v = one["ssm"].values.astype("float64")
    if "flag" in one:
        v = np.where(one["flag"].values == 0, v, np.nan)
    s = pd.Series(v, index=pd.DatetimeIndex(one["time"].values)).dropna()
    s = s.groupby(s.index.normalize()).mean()
    return s[(s.index >= PERIOD[0]) & (s.index <= PERIOD[1])]


def _hand(shared_data, sites: pd.DataFrame, product: xr.Dataset) -> pd.DataFrame:
    rows = {}
    for _, site in sites[sites["network_ismn"] == "SCAN"].iterrows():
        station_dir = shared_data / HAWAII / ISMN / "SCAN" / site["station"].replace("_", "")
        obs = _station_daily(station_dir)
        pred = _product_daily(product, float(site["lon"]), float(site["lat"]))
        days = pd.concat({"o": obs, "p": pred}, axis=1, join="inner").dropna()
        months = days.groupby(days.index.to_period("M"))
        monthly = months.mean()[months.size() >= 0.5 * months.size().index.days_in_month]
        if len(monthly) < 12:
            continue
        o, p = monthly["o"].to_numpy(), monthly["p"].to_numpy()
        sigma = math.sqrt(((o - o.mean()) ** 2).mean())
        cal = monthly.index.month
        clim_o = monthly["o"].groupby(cal).mean()
        clim_p = monthly["p"].groupby(cal).mean()
        iav_o = math.sqrt(((o - clim_o.reindex(cal).to_numpy()) ** 2).mean())
        iav_p = math.sqrt(((p - clim_p.reindex(cal).to_numpy()) ** 2).mean())
        if len(clim_o) == 12:
            shift = int(clim_p.idxmax()) - int(clim_o.idxmax())
            phase = 0.5 * (1 + math.cos(2 * math.pi * shift / 12))
        else:
            phase = np.nan
        rows[site["site_id"]] = {
            "n_months": len(o),
            "mean_mod": p.mean(),
            "mean_ref": o.mean(),
            "bias": math.exp(-abs(p.mean() - o.mean()) / sigma),
            "rmse": math.exp(-math.sqrt((((p - p.mean()) - (o - o.mean())) ** 2).mean()) / sigma),
            "phase": phase,
            "iav": math.exp(-abs(iav_p - iav_o) / iav_o),
        }
    return pd.DataFrame(rows).T


def _dist(m, r) -> float:
    m, r = np.asarray(m, float), np.asarray(r, float)
    sigma = m.std() / r.std()
    return 2 * (1 + np.corrcoef(m, r)[0, 1]) / (sigma + 1 / sigma) ** 2


@pytest.mark.parametrize("product", ["ESA_CCI_SM_C_V08_1", "SMAP_V9_AM_PM"])
def test_hawaii_scores_equal_a_hand_computation(shared_data, hawaii, card, product):
    sites, _, products = hawaii
    hand = _hand(shared_data, sites, products[product])
    loc = card.locations[card.locations["product"] == product].set_index("location")
    assert sorted(loc.index) == sorted(hand.index)
    assert len(hand) >= 4
    for sid in hand.index:
        assert loc.loc[sid, "n_months"] == hand.loc[sid, "n_months"]
        for score in ("mean_mod", "mean_ref", "bias", "rmse", "phase", "iav"):
            assert loc.loc[sid, score] == pytest.approx(hand.loc[sid, score], rel=1e-9, nan_ok=True), (
                sid,
                score,
            )
    row = card.table[(card.table["product"] == product) & (card.table["region"] == "all")].iloc[0]
    assert row["n_locations"] == len(hand)
    assert row["bias"] == pytest.approx(hand["bias"].mean(), rel=1e-9)
    assert row["phase"] == pytest.approx(hand["phase"].mean(skipna=True), rel=1e-9)
    assert row["dist"] == pytest.approx(_dist(hand["mean_mod"], hand["mean_ref"]), rel=1e-9, abs=1e-12)


def test_hawaii_scorecard_table_csv_and_html(card):
    from validation import export
    from validation.scorecard import SCORE_NAMES, TABLE_COLUMNS

    from .test_scorecard import parse_html

    table = card.table
    assert set(table["product"]) == set(CELLS)
    # every station lies in the United States, so in North America: one continent row per product
    assert sorted(set(table["region"])) == ["North America", "all"]
    assert table[list(SCORE_NAMES)].drop(columns="dist").notna().all().all()
    assert ((table[list(SCORE_NAMES)].fillna(0) >= 0) & (table[list(SCORE_NAMES)].fillna(0) <= 1)).all().all()
    assert card.meta["period"] == ["2017-01", "2018-12"] and card.meta["units"] == "m3 m-3"
    text = export.scorecard_csv(card)
    head = dict(line[2:].split(": ", 1) for line in text.splitlines() if line.startswith("# "))
    assert head["units"].startswith("m3 m-3") and head["variable"] == "ssm (surface soil moisture)"
    assert head["period"] == "2017-01…2018-12"
    back = pd.read_csv(io.StringIO(text), comment="#")
    assert list(back.columns) == TABLE_COLUMNS and len(back) == len(table)
    parsed = parse_html(export.scorecard_html(card))
    assert len(parsed.scores) == len(table) * len(SCORE_NAMES)
    assert {s for s, _ in parsed.scores} == set(SCORE_NAMES)


@pytest.fixture(scope="module")
def hawaii_catalog(hawaii, tmp_path_factory):
    """ISMN stations as network ``ismn_hawaii``; CCI and C3S (2015-2020; their 0.25° cells put back on
    the regular grid) as gridded products ``esa_cci_sm_v081`` and ``c3s_sm_v202505``."""
    from catalog import store

    sites, obs, products = hawaii
    root = tmp_path_factory.mktemp("scorecard-hawaii")
    d = root / "fluxlens-data"
    d.mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("FLUXLENS_DATA_DIR", str(d))
    mp.setenv("FLUXLENS_VALIDATION_CACHE", str(root / "cache"))
    store.write_stations("ismn_hawaii", sites, obs, provenance={"test": "qa4sm_hawaii ISMN"}, synthetic=False)
    for name, product in (("esa_cci_sm_v081", "ESA_CCI_SM_C_V08_1"), ("c3s_sm_v202505", "C3S_V202505")):
        ds = products[product].sel(time=slice("2015-01-01", "2020-12-31"))
        grid = ds.set_index(location=["lat", "lon"]).unstack("location").sortby("lat", ascending=False)
        lat = np.arange(float(grid["lat"].max()), float(grid["lat"].min()) - 0.1, -0.25)
        lon = np.arange(float(grid["lon"].min()), float(grid["lon"].max()) + 0.1, 0.25)
        grid = grid.reindex(lat=lat, lon=lon, method="nearest", tolerance=0.01)  # cells at sea: missing
        grid = grid.transpose("time", "lat", "lon")
        out = xr.Dataset(
            {
                "ssm": grid["ssm"].astype("float32").assign_attrs(units="m3 m-3", long_name="soil moisture"),
                "flag": grid["flag"].fillna(255).astype("float32").assign_attrs(units="1"),
            }
        )
        out.attrs["time_step"] = "day"
        store.write_product(out, name, provenance={"test": product}, synthetic=False)
    yield d
    mp.undo()


def test_hawaii_cli_from_the_catalog_matches_and_is_cached(hawaii_catalog, card, tmp_path, capsys):
    from fluxlens import cli

    argv = ["validate", "scorecard", "--product", "esa_cci_sm_v081", "--variable", "ssm",
            "--reference", "ismn_hawaii", "--period", *PERIOD,
            "--csv", str(tmp_path / "cci.csv"), "--html", str(tmp_path / "cci.html")]  # fmt: skip
    assert cli.main(argv) == 0
    assert "(cached)" not in capsys.readouterr().out
    from validation import scorecard

    got = pd.read_csv(tmp_path / "cci.csv", comment="#").set_index("region")
    options = scorecard.ScorecardOptions.from_config(base={"period": list(PERIOD)})
    catalog_card = scorecard.compute_scorecard("esa_cci_sm_v081", "ssm", "ismn_hawaii", options=options)
    assert catalog_card.cached  # what the command computed
    here = catalog_card.locations.set_index("location")
    there = card.locations[card.locations["product"] == "ESA_CCI_SM_C_V08_1"].set_index("location")
    # Island Dairy (20.000 N) lies on the edge of two grid rows; the grid's nearest pixel is the one
    # at 20.125 N, at sea (no CCI data), where the nearest cell of the point set is the one at 19.875 N
    assert set(there.index) - set(here.index) == {"SCAN.Island_Dairy"}
    assert set(here.index) < set(there.index) and len(here) == 3
    for score in ("n_months", "mean_mod", "mean_ref", "bias", "rmse", "phase", "iav"):
        np.testing.assert_allclose(here[score], there.loc[here.index, score], rtol=1e-6, err_msg=score)
    assert got.loc["all", "n_locations"] == 3
    assert got.loc["all", "bias"] == pytest.approx(here["bias"].mean(), rel=1e-5)
    assert cli.main(argv) == 0
    assert "(cached)" in capsys.readouterr().out
    bad = ["validate", "scorecard", "--product", "esa_cci_sm_v081", "--variable", "le",
           "--reference", "ismn_hawaii", "--csv", str(tmp_path / "bad.csv")]  # fmt: skip
    assert cli.main(bad) == 2
    assert "product 'esa_cci_sm_v081' has no variable 'le'" in capsys.readouterr().err
    bad[bad.index("le")] = "ssm"
    assert cli.main([*bad, "--period", "2019-01-01", "2019-12-31"]) == 2
    assert "0 of 9 sites overlap 2019-01-01…2019-12-31" in capsys.readouterr().err
    assert not (tmp_path / "bad.csv").exists()


def test_hawaii_c3s_against_the_cci_grid(hawaii_catalog, hawaii, tmp_path, capsys):
    """C3S scored against ESA CCI as a gridded reference, 2015-2020: every cell of the CCI grid with 12
    common months (two: see below); the 'all' bias score is the area-weighted mean of the per-cell
    scores computed here."""
    from fluxlens import cli

    argv = ["validate", "scorecard", "--product", "c3s_sm_v202505", "--variable", "ssm",
            "--reference", "esa_cci_sm_v081", "--period", *GRID_PERIOD,
            "--csv", str(tmp_path / "grid.csv"), "--html", str(tmp_path / "grid.html")]  # fmt: skip
    assert cli.main(argv) == 0
    assert "(gridded)" in capsys.readouterr().out
    got = pd.read_csv(tmp_path / "grid.csv", comment="#").set_index("region")
    _, _, products = hawaii
    monthly = {}
    for key, name in (("p", "C3S_V202505"), ("o", "ESA_CCI_SM_C_V08_1")):
        ds = products[name].sel(time=slice(*GRID_PERIOD))
        v = ds["ssm"].where(ds["flag"] == 0)
        frame = pd.DataFrame(v.values.T, index=pd.DatetimeIndex(ds["time"].values).normalize())
        frame.columns = [
            f"{la:.3f},{lo:.3f}" for la, lo in zip(ds["lat"].values, ds["lon"].values, strict=True)
        ]
        frame = frame.groupby(level=0).mean()
        months = frame.resample("MS")
        keep = months.count().ge(0.5 * months.count().index.days_in_month.to_numpy()[:, None])
        monthly[key] = months.mean().where(keep)
    cells = sorted(set(monthly["p"].columns) & set(monthly["o"].columns))
    scores, weights = [], []
    for c in cells:
        pair = pd.concat({"p": monthly["p"][c], "o": monthly["o"][c]}, axis=1).dropna()
        if len(pair) < 12:
            continue
        o, p = pair["o"].to_numpy(), pair["p"].to_numpy()
        sigma = o.std()
        scores.append(math.exp(-abs(p.mean() - o.mean()) / sigma))
        lat = float(c.split(",")[0])
        weights.append(abs(math.sin(math.radians(lat + 0.125)) - math.sin(math.radians(lat - 0.125))))
    # the C3S cell files of the test set hold data at two locations only (19.875 and 19.625 N, 155.375 W)
    assert got.loc["all", "n_locations"] == len(scores) == 2
    assert got.loc["all", "bias"] == pytest.approx(np.average(scores, weights=weights), rel=1e-5)


def test_hawaii_qa4sm_command_from_the_catalog(hawaii_catalog, hawaii, tmp_path, capsys):
    """``validate qa4sm`` on the catalog's CCI grid (nearest-in-time pairing, CDF matching, per sensor)
    gives, at every station whose nearest grid cell is the point set's nearest location, the rows of
    qa4sm.validate on the original ts-cell product; triple collocation of the station, CCI and C3S."""
    from fluxlens import cli
    from validation import qa4sm
    from validation.config import ValidationOptions

    out, tc_out = tmp_path / "qa" / "cci.csv", tmp_path / "qa" / "tc.csv"
    argv = ["validate", "qa4sm", "--product", "esa_cci_sm_v081", "--product", "c3s_sm_v202505",
            "--network", "ismn_hawaii", "--pairing", "nearest", "--scaling", "cdf_match",
            "--period", *PERIOD, "--csv", str(out), "--triple-csv", str(tc_out)]  # fmt: skip
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "nearest pairing, scaling cdf_match, quality on" in printed
    head = dict(line[2:].split(": ", 1) for line in out.read_text().splitlines() if line.startswith("# "))
    assert head["network"] == "ismn_hawaii" and '"pairing": "nearest"' in head["options"]
    got = pd.read_csv(out, comment="#")
    cci = got[got["product"] == "esa_cci_sm_v081"].set_index(["site_id", "sensor"])
    assert set(got["scaling"]) == {"cdf_match"} and set(got["pairing"]) == {"nearest"}
    sites, obs, products = hawaii
    options = qa4sm.Qa4smOptions(
        base=ValidationOptions.from_config(period=list(PERIOD)), pairing="nearest", scaling="cdf_match"
    )
    want = qa4sm.validate({"esa_cci_sm_v081": products["ESA_CCI_SM_C_V08_1"]}, sites, obs, options)
    want = want.set_index(["site_id", "sensor"])
    common = [k for k in cci.index if not k[0].endswith("Island_Dairy")]  # the edge case noted above
    assert len(common) >= 5 and (cci.loc[common, "n"] > 0).sum() >= 4
    for col in ("n", "r", "rmse", "ubrmse", "bias", "bias_unscaled"):
        np.testing.assert_allclose(cci.loc[common, col], want.loc[common, col], rtol=1e-5, err_msg=col)
    tc = pd.read_csv(tc_out, comment="#")
    c3s_rows = got[got["product"] == "c3s_sm_v202505"]
    assert {"site_id", "sensor"} <= set(tc.columns) and len(tc) == len(c3s_rows)
    bad = ["validate", "qa4sm", "--product", "esa_cci_sm_v081", "--network", "ismn_hawaii",
           "--csv", str(tmp_path / "bad.csv"), "--triple-csv", str(tmp_path / "bad_tc.csv")]  # fmt: skip
    assert cli.main(bad) == 2
    assert "--triple-csv takes exactly two --product" in capsys.readouterr().err
    assert not (tmp_path / "bad.csv").exists() and not (tmp_path / "bad_tc.csv").exists()
