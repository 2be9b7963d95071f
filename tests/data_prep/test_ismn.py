"""ISMN readers on the real TU Wien ISMN test files, checked against a plain line-by-line parse."""

from __future__ import annotations

import math
import zipfile
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from catalog.errors import InputError
from data_prep.ismn import flag_mask, read_ismn, read_ismn_folder, write_ismn

ISMN = "ismn_tuw_testdata"
ARM1 = "COSMOS/ARM-1/COSMOS_COSMOS_ARM-1_sm_0.000000_0.190000_Cosmic-ray-Probe_20170810_20180809.stm"
HEADER_ARM1 = f"Data_seperate_files_header_20170810_20180809/{ARM1}"
CEOP_ARM1 = f"Data_seperate_files_20170810_20180809/{ARM1}"
NARBONNE = "SMOSMANIA/SMOSMANIA_SMOSMANIA_Narbonne_sm_0.050000_0.050000_ThetaProbe-ML2X_20070101_20070131.stm"


def plain_lines(data: bytes) -> list[list[str]]:
    """Whitespace-split non-empty lines, for any mix of CR / LF line endings."""
    text = data.decode()
    for ending in ("\r\n", "\n\r", "\r"):
        text = text.replace(ending, "\n")
    return [ln.split() for ln in text.split("\n") if ln.strip()]


def test_header_values_format(shared_data):
    path = shared_data / ISMN / HEADER_ARM1
    header, *data = plain_lines(path.read_bytes())
    meta, table = read_ismn(path, flags=None)
    assert meta["format"] == "header_values"
    assert (meta["network"], meta["station"], meta["sensor"]) == (header[1], header[2], header[8])
    assert meta["lat"] == float(header[3]) == 36.6054 and meta["lon"] == float(header[4])
    assert meta["elevation"] == float(header[5])
    assert (meta["depth_from"], meta["depth_to"]) == (0.0, 0.19)
    assert meta["units"] == "m3 m-3" and meta["site_id"] == "COSMOS.ARM-1"
    assert len(table) == len(data)
    for i in (0, 1, 4000, len(data) - 1):
        date, clock, value, flag = data[i][:4]
        assert table["time"].iloc[i] == datetime.strptime(f"{date} {clock}", "%Y/%m/%d %H:%M")
        assert table["soil_moisture"].iloc[i] == float(value)
        assert table["flag"].iloc[i] == flag
    assert (table["depth_from"] == 0.0).all() and (table["depth_to"] == 0.19).all()
    # static variables beside the file
    quantities = {row["quantity"] for row in meta["static_variables"]}
    assert {"saturation", "clay fraction", "land cover classification"} <= quantities


def test_both_formats_agree(shared_data):
    path = shared_data / ISMN / CEOP_ARM1
    lines = plain_lines(path.read_bytes())
    meta, table = read_ismn(path, flags=None)
    assert meta["format"] == "separate_files"
    first = lines[0]
    assert (meta["network"], meta["station"]) == (first[5], first[6])
    assert (meta["lat"], meta["lon"], meta["elevation"]) == tuple(float(x) for x in first[7:10])
    assert meta["sensor"] == "Cosmic-ray-Probe"  # from the file name
    for i in (0, 2, 5000, len(lines) - 1):
        row = lines[i]
        assert table["time"].iloc[i] == datetime.strptime(f"{row[0]} {row[1]}", "%Y/%m/%d %H:%M")
        assert table["soil_moisture"].iloc[i] == float(row[12])
        assert table["flag"].iloc[i] == row[13]
    _, other = read_ismn(shared_data / ISMN / HEADER_ARM1, flags=None)
    pd.testing.assert_frame_equal(table, other)


def test_flag_filter_default_keeps_good_only(shared_data):
    path = shared_data / ISMN / HEADER_ARM1
    _, *data = plain_lines(path.read_bytes())
    flags = np.array([row[3] for row in data])
    values = np.array([float(row[2]) for row in data])
    assert {"D03", "D05", "D03,D05"} <= set(flags)  # several codes in one flag do occur
    meta, table = read_ismn(path)  # flags=("G",)
    good = flags == "G"
    np.testing.assert_array_equal(table["soil_moisture"].notna().to_numpy(), good)
    np.testing.assert_array_equal(table["soil_moisture"].to_numpy()[good], values[good])
    np.testing.assert_array_equal(table["soil_moisture_raw"].to_numpy(), values)
    assert meta["n_rejected"] == int((~good).sum())
    # keeping D03 too keeps "D03" but not "D03,D05"
    _, wider = read_ismn(path, flags=("G", "D03"))
    kept = np.isin(flags, ["G", "D03"])
    np.testing.assert_array_equal(wider["soil_moisture"].notna().to_numpy(), kept)


def test_flag_mask_codes():
    flags = pd.Series(["G", "D01,D03", "D01", "C03", "M", "U"])
    assert flag_mask(flags, ("G",)).tolist() == [True, False, False, False, False, False]
    assert flag_mask(flags, ("G", "D01", "D03")).tolist() == [True, True, True, False, False, False]


def test_cr_only_file(shared_data):
    for folder, fmt in (("format_header_values", "header_values"), ("format_ceop_sep", "separate_files")):
        path = shared_data / ISMN / folder / NARBONNE
        raw = path.read_bytes()
        assert b"\r" in raw and b"\n" not in raw
        lines = plain_lines(raw)
        meta, table = read_ismn(path, flags=("G", "U"))
        assert meta["format"] == fmt and meta["station"] == "Narbonne" and meta["network"] == "SMOSMANIA"
        assert (meta["depth_from"], meta["depth_to"]) == (0.05, 0.05)
        data = lines[1:] if fmt == "header_values" else lines
        value_at = 2 if fmt == "header_values" else 12
        assert len(table) == len(data) == 741
        for i in (0, 100, 740):
            assert table["soil_moisture"].iloc[i] == float(data[i][value_at])
            assert table["time"].iloc[i] == datetime.strptime(f"{data[i][0]} {data[i][1]}", "%Y/%m/%d %H:%M")


def test_zip_archive_multinetwork(shared_data):
    archive = shared_data / ISMN / "zip_archives/multinetwork/header_values/Data_header_values.zip"
    sites, obs = read_ismn_folder(archive, flags=("G", "U"))
    with zipfile.ZipFile(archive) as z:
        members = [n for n in z.namelist() if n.endswith(".stm")]
        assert len(sites) == len(members) == 8
        name = next(n for n in members if "Abrams" in n)
        header, *data = plain_lines(z.read(name))
    assert set(sites["network_ismn"]) == {"MAQU", "SCAN", "SOILSCAPE"}
    abrams = sites.set_index("site_id").loc["SCAN.Abrams"]
    assert abrams["lat"] == float(header[3]) and abrams["lon"] == float(header[4])
    series = obs[obs["site_id"] == "SCAN.Abrams"].reset_index(drop=True)
    assert len(series) == len(data)
    assert (series["depth_from"] == 0.0508).all()  # the file name's 6 decimals, the header says 0.05
    kept = 0
    for i in range(0, len(data), 997):
        date, clock, value, flag = data[i][:4]
        assert series["time"].iloc[i] == datetime.strptime(f"{date} {clock}", "%Y/%m/%d %H:%M")
        expected = float(value) if set(flag.split(",")) <= {"G", "U"} else math.nan
        got = series["soil_moisture"].iloc[i]
        assert (math.isnan(got) and math.isnan(expected)) or got == expected
        kept += not math.isnan(expected)
    assert kept > 0
    assert abrams["start"] == series.dropna(subset=["soil_moisture"])["time"].min()


def test_folder_walk_with_zips_skips_duplicates(shared_data):
    sites, obs = read_ismn_folder(shared_data / ISMN / "Data_seperate_files_header_20170810_20180809")
    assert sorted(sites["site_id"]) == ["COSMOS.ARM-1", "COSMOS.Barrow-ARM"]
    assert set(obs.columns) >= {
        "site_id",
        "time",
        "soil_moisture",
        "depth_from",
        "depth_to",
        "sensor",
        "flag",
    }
    everything_sites, everything = read_ismn_folder(shared_data / ISMN)
    assert everything_sites["site_id"].is_unique
    # ARM-1 appears in two folders and three zips, read once
    assert (everything["site_id"] == "COSMOS.ARM-1").sum() == (obs["site_id"] == "COSMOS.ARM-1").sum()
    assert everything.attrs["duplicate_files_skipped"]


def test_malformed_and_wrong_files(shared_data, tmp_path):
    bad = shared_data / ISMN / "malformed" / "mal_formed_file.txt"
    with pytest.raises(InputError, match="mal_formed_file.txt"):
        read_ismn(bad)
    with pytest.raises(InputError, match="mal_formed_file.txt"):
        read_ismn_folder(bad)
    lines = (shared_data / ISMN / HEADER_ARM1).read_bytes().decode().splitlines()
    broken = tmp_path / "COSMOS_COSMOS_ARM-1_sm_0.000000_0.190000_Cosmic-ray-Probe_20170810_20180809.stm"
    broken.write_text("\n".join([*lines[:10], "2017/08/10 0x:00   0.1410 G M"]))
    with pytest.raises(InputError, match="data line"):
        read_ismn(broken)
    header_only = tmp_path / "only_header.stm"
    header_only.write_text(lines[0] + "\n")
    with pytest.raises(InputError, match="no data lines"):
        read_ismn(header_only)
    temperature = tmp_path / "COSMOS_COSMOS_ARM-1_ts_0.050000_0.050000_X_20170810_20180809.stm"
    temperature.write_text("\n".join(lines[:5]))
    with pytest.raises(InputError, match="soil moisture"):
        read_ismn(temperature)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no ISMN soil-moisture"):
        read_ismn_folder(empty)


def test_write_roundtrip(shared_data, tmp_path):
    meta, table = read_ismn(shared_data / ISMN / HEADER_ARM1, flags=None)
    path = write_ismn(tmp_path, meta, table)
    assert path.name == ARM1.split("/")[-1]
    header, *data = plain_lines(path.read_bytes())
    assert header[:3] == ["COSMOS", "COSMOS", "ARM-1"] and float(header[3]) == meta["lat"]
    assert data[0][:4] == ["2017/08/10", "00:00", "0.1410", "G"]
    back_meta, back = read_ismn(path, flags=None)
    for key in ("network", "station", "lat", "lon", "elevation", "depth_from", "depth_to", "sensor"):
        assert back_meta[key] == meta[key], key
    pd.testing.assert_frame_equal(
        back[["time", "soil_moisture", "flag"]], table[["time", "soil_moisture", "flag"]]
    )
    # a flag-filtered table writes all values with their flags, and reads back filtered the same way
    filtered_meta, filtered = read_ismn(shared_data / ISMN / HEADER_ARM1)
    again = write_ismn(tmp_path / "filtered.stm", filtered_meta, filtered)
    _, filtered_back = read_ismn(again)
    pd.testing.assert_frame_equal(filtered_back, filtered)
    # a synthetic series with gaps: NaN written with flag M, read back as NaN
    demo = pd.DataFrame(
        {"time": pd.date_range("2018-01-01", periods=4, freq="D"), "soil_moisture": [0.2, np.nan, 0.31, 0.05]}
    )
    station = {"network": "DEMO", "station": "S01", "lat": 40.0, "lon": -98.0, "elevation": 400.0}
    out = write_ismn(tmp_path / "demo.stm", station | {"depth_from": 0.0, "depth_to": 0.05}, demo)
    meta2, read2 = read_ismn(out)
    assert meta2["site_id"] == "DEMO.S01"
    np.testing.assert_allclose(read2["soil_moisture"], demo["soil_moisture"], equal_nan=True)
    assert read2["flag"].tolist() == ["G", "M", "G", "G"]
    with pytest.raises(InputError, match="m3 m-3"):
        write_ismn(
            tmp_path / "pct.stm",
            station | {"depth_from": 0.0, "depth_to": 0.05},
            demo.assign(soil_moisture=30.0),
        )
    assert not (tmp_path / "pct.stm").exists()
    with pytest.raises(InputError, match="lacks"):
        write_ismn(tmp_path / "x.stm", {"network": "DEMO"}, demo)
