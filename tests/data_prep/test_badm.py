"""BADM (BIF) site metadata: standalone workbooks, the AmeriFlux BASE-BADM zip, bad input.

No BADM file is in the shared sample data, so every file here is **constructed** in ``tmp_path``
following the published AmeriFlux layout (amerifluxr ``amf_read_bif`` / ``amf_read_base`` and the
AmeriFlux BADM data-product page): the ``AMF_<SITE>_BASE-BADM_<version>.zip`` download holds
``AMF_<SITE>_BASE_<HH|HR>_<version>.csv`` (two ``#`` metadata lines, then ``TIMESTAMP_START,
TIMESTAMP_END,...`` with -9999 for missing) and ``AMF_<SITE>_BIF_<date>.xlsx``, one sheet ``AMF-BIF``
with the columns ``SITE_ID, GROUP_ID, VARIABLE_GROUP, VARIABLE, DATAVALUE``, one row per reported
value, the values of a group instance sharing a numeric GROUP_ID (site name in ``GRP_HEADER``,
coordinates in ``GRP_LOCATION``, IGBP class in ``GRP_IGBP``). Site ids and values are invented.
"""

from __future__ import annotations

import csv
import math
import zipfile

import openpyxl
import pandas as pd
import pytest

from catalog.errors import InputError
from data_prep.badm import read_badm
from data_prep.fluxnet import read_site_table

BIF_HEADER = ("SITE_ID", "GROUP_ID", "VARIABLE_GROUP", "VARIABLE", "DATAVALUE")


def bif_rows(
    site, *, lat=41.1797, lon=-96.4397, elev=361, name=None, igbp="CRO", group0=1000, moved=False,
    name_group="GRP_HEADER",
):  # fmt: skip
    """BIF rows of one site as AmeriFlux writes them (numbers as numbers, a few as text)."""
    g = group0
    rows = [
        (site, g, name_group, "SITE_NAME", name or f"{site} test cropland"),
        (site, g + 1, "GRP_COUNTRY", "COUNTRY", "USA"),
        (site, g + 2, "GRP_CLIM_AVG", "MAT", 10.1),
        (site, g + 2, "GRP_CLIM_AVG", "MAP", 790),
        (site, g + 2, "GRP_CLIM_AVG", "CLIMATE_KOEPPEN", "Dfa"),
        (site, g + 3, "GRP_IGBP", "IGBP", igbp),
        (site, g + 3, "GRP_IGBP", "IGBP_COMMENT", "cropland since 2001"),
        (site, g + 4, "GRP_UTC_OFFSET", "UTC_OFFSET", -6),
        (site, g + 5, "GRP_TEAM_MEMBER", "TEAM_MEMBER_NAME", "A. Person"),
        (site, g + 5, "GRP_TEAM_MEMBER", "TEAM_MEMBER_ROLE", "PI"),
    ]
    if lat is not None:
        rows += [
            (site, g + 6, "GRP_LOCATION", "LOCATION_LAT", lat),
            (site, g + 6, "GRP_LOCATION", "LOCATION_LONG", str(lon)),  # text cells occur too
            (site, g + 6, "GRP_LOCATION", "LOCATION_ELEV", elev),
        ]
    if moved:  # the tower moved in 2015: an older location dated 2001, the current one dated 2015
        rows += [
            (site, g + 6, "GRP_LOCATION", "LOCATION_DATE_START", "20150601"),
            (site, g + 7, "GRP_LOCATION", "LOCATION_LAT", 40.0),
            (site, g + 7, "GRP_LOCATION", "LOCATION_LONG", -95.0),
            (site, g + 7, "GRP_LOCATION", "LOCATION_DATE_START", 20010101),
            (site, g + 7, "GRP_LOCATION", "LOCATION_COMMENT", "first tower"),
            (site, g + 8, "GRP_IGBP", "IGBP", "GRA"),
            (site, g + 8, "GRP_IGBP", "IGBP_DATE_START", "2016"),
        ]
    return rows


def write_workbook(path, sheets: dict[str, list[tuple]]):
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(list(row))
    wb.save(path)
    return path


def write_bif(path, rows):
    return write_workbook(path, {"AMF-BIF": [BIF_HEADER, *rows]})


def base_csv_text(site, *, version="1-5", n=96, start="2018-07-01"):
    """An AmeriFlux BASE half-hourly csv: '#' lines, TIMESTAMP_START/END, qualified names, -9999."""
    header = [
        "TIMESTAMP_START", "TIMESTAMP_END", "CO2", "FC", "H", "LE", "G_1_1_1", "NETRAD", "SW_IN", "LW_IN",
        "P", "PA", "RH", "SWC_1_1_1", "SWC_1_2_1", "TA_1_1_1", "VPD", "WS",
    ]  # fmt: skip
    lines = [f"# Site: {site}", f"# Version: {version}", ",".join(header)]
    t0 = pd.Timestamp(start)
    for i in range(n):
        t = t0 + pd.Timedelta(minutes=30 * i)
        hour = (i % 48) / 2
        day = max(0.0, math.sin(math.pi * (hour - 6) / 12))
        values = [
            400 + i % 7, -5 * day, 150 * day - 20, 300 * day + 5, 40 * day - 10, 500 * day - 60,
            800 * day, 320 + i % 5, 0.2 if i % 17 == 0 else 0, 97.1, 60 - 20 * day, 25.0 + i % 3 * 0.5,
            30.5, 18 + 8 * day, 12 * day, 2.5 + day,
        ]  # fmt: skip
        if i % 11 == 3:
            values[3] = -9999  # LE missing
        if i % 13 == 5:
            values[11] = -9999  # SWC_1_1_1 missing
        cells = [f"{t:%Y%m%d%H%M}", f"{t + pd.Timedelta(minutes=30):%Y%m%d%H%M}"]
        cells += ["-9999" if v == -9999 else f"{v:.4f}".rstrip("0").rstrip(".") for v in values]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def write_base_badm_zip(folder, site, *, version="1-5", bif=None, base=True, **site_kwargs):
    """``AMF_<site>_BASE-BADM_<version>.zip`` with the BASE csv and the site's BIF workbook."""
    path = folder / f"AMF_{site}_BASE-BADM_{version}.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        if base:
            zf.writestr(f"AMF_{site}_BASE_HH_{version}.csv", base_csv_text(site, version=version))
        if bif is not False:
            book = write_bif(folder / f"AMF_{site}_BIF_20230922.xlsx", bif or bif_rows(site, **site_kwargs))
            zf.write(book, book.name)
            book.unlink()
    return path


def test_standalone_bif_workbook_several_sites(tmp_path):
    rows = bif_rows("US-Xaa", group0=100) + bif_rows("US-Xbb", group0=200, moved=True, name="Moved tower")
    rows += bif_rows("US-Xcc", group0=300, lat=None)  # registered, no coordinates reported
    rows += bif_rows(
        "CA-Xdd", group0=400, lat=49.5, lon=-105.1, name_group="GRP_SITE_NAME"
    )  # ICOS-style group
    path = write_bif(tmp_path / "AMF_AA-Flx_BIF_CCBY4_20230922.xlsx", rows)
    sites = read_badm(path).set_index("site_id")
    assert list(sites.index) == ["US-Xaa", "US-Xbb", "CA-Xdd"]
    assert sites.loc["CA-Xdd", ["name", "lat", "lon"]].tolist() == ["CA-Xdd test cropland", 49.5, -105.1]
    a = sites.loc["US-Xaa"]
    assert (a["name"], a["lat"], a["lon"], a["elevation"]) == ("US-Xaa test cropland", 41.1797, -96.4397, 361)
    assert (a["igbp"], a["igbp_code"]) == ("CRO", 12)
    assert (a["mat"], a["map"], a["climate_koeppen"], a["utc_offset"], a["country"]) == (
        10.1,
        790,
        "Dfa",
        -6,
        "USA",
    )
    # the latest location (2015) and IGBP class (2016) of the moved tower
    b = sites.loc["US-Xbb"]
    assert (b["lat"], b["lon"], b["location_date_start"]) == (41.1797, -96.4397, "20150601")
    assert (b["igbp"], b["igbp_code"], b["name"]) == ("GRA", 10, "Moved tower")
    assert read_badm(path).attrs["sites_without_coordinates"] == ["US-Xcc"]
    # read_site_table takes the same workbook, and its csv export
    pd.testing.assert_frame_equal(read_site_table(path), read_badm(path))
    export = tmp_path / "AMF_AA-Flx_BIF.csv"
    with open(export, "w", newline="") as fh:
        csv.writer(fh).writerows([BIF_HEADER, *rows])
    pd.testing.assert_frame_equal(read_site_table(export), read_badm(path))


def test_base_badm_zip_site_row(tmp_path):
    path = write_base_badm_zip(tmp_path, "US-Xyz", lat=36.6058, lon=-97.4888, elev=314, igbp="GRA")
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["AMF_US-Xyz_BASE_HH_1-5.csv", "AMF_US-Xyz_BIF_20230922.xlsx"]
    sites = read_badm(path)
    assert sites[["site_id", "lat", "lon", "elevation", "igbp"]].values.tolist() == [
        ["US-Xyz", 36.6058, -97.4888, 314, "GRA"]
    ]
    pd.testing.assert_frame_equal(read_site_table(path), sites)


def test_bad_badm_inputs(tmp_path):
    notes = write_workbook(tmp_path / "notes.xlsx", {"Notes": [("a", "b"), (1, 2)], "Empty": []})
    with pytest.raises(InputError, match=r"notes\.xlsx: no BADM sheet.*sheets \['Notes', 'Empty'\]"):
        read_badm(notes)
    nocoord = write_bif(tmp_path / "AMF_US-Nco_BIF_20230922.xlsx", bif_rows("US-Nco", lat=None))
    with pytest.raises(
        InputError, match=r"AMF_US-Nco_BIF_20230922\.xlsx: BADM without site coordinates.*US-Nco"
    ):
        read_badm(nocoord)
    nobadm = write_base_badm_zip(tmp_path, "US-Nob", bif=False)
    with pytest.raises(InputError, match=r"AMF_US-Nob_BASE-BADM_1-5\.zip: no BADM workbook inside"):
        read_badm(nobadm)
    zipped = write_base_badm_zip(tmp_path, "US-Zco", bif=bif_rows("US-Zco", lat=None))
    with pytest.raises(
        InputError, match=r"AMF_US-Zco_BASE-BADM_1-5\.zip \[AMF_US-Zco_BIF_20230922\.xlsx\]: BADM"
    ):
        read_badm(zipped)
    badlat = write_bif(tmp_path / "badlat.xlsx", bif_rows("US-Bad", lat="41,2 N"))
    with pytest.raises(InputError, match=r"badlat\.xlsx: site US-Bad: LOCATION_LAT '41,2 N' is not a number"):
        read_badm(badlat)
    outside = write_bif(tmp_path / "outside.xlsx", bif_rows("US-Out", lat=95.0))
    with pytest.raises(InputError, match=r"outside\.xlsx: site US-Out: LOCATION_LAT 95\.0 outside"):
        read_badm(outside)
    fake = tmp_path / "fake.xlsx"
    fake.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(InputError, match=r"fake\.xlsx: not a readable \.xlsx workbook"):
        read_badm(fake)
    fakezip = tmp_path / "AMF_US-Fak_BASE-BADM_1-5.zip"
    fakezip.write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"AMF_US-Fak_BASE-BADM_1-5\.zip: not a readable zip archive"):
        read_badm(fakezip)
    with pytest.raises(InputError, match="no such BADM file"):
        read_badm(tmp_path / "absent.xlsx")
