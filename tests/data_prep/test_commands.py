"""``fluxlens ingest``, ``catalog`` and ``demo`` through the real console entry point."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from catalog import api
from catalog.errors import InputError
from data_prep import commands
from data_prep.gssm import write_gssm_geotiff
from fluxlens import cli


def cube(n_time, start, n_lat=10, n_lon=16, res=0.01, west=-100.0, north=40.0, seed=0):
    rng = np.random.default_rng(seed)
    v = np.round(rng.uniform(0.05, 0.45, (n_time, n_lat, n_lon)), 3).astype(np.float32)
    return xr.DataArray(
        v,
        dims=("time", "lat", "lon"),
        coords={
            "time": pd.date_range(start, periods=n_time, freq="D"),
            "lat": north - (np.arange(n_lat) + 0.5) * res,
            "lon": west + (np.arange(n_lon) + 0.5) * res,
        },
    )


def test_ingest_gssm_and_catalog_listing(data_dir, tmp_path, capsys):
    tif = write_gssm_geotiff(tmp_path / "a.tif", cube(2, "2018-07-01"))
    assert cli.main(["ingest", "gssm", str(tif), "--name", "cli_gssm", "--synthetic"]) == 0
    assert "product cli_gssm: ssm, 2 time steps 2018-07-01..2018-07-02" in capsys.readouterr().out
    info = api.product_info("cli_gssm")
    assert info.synthetic is True and info.provenance["options"] == {"nodata": None, "zero_is_missing": True}
    assert cli.main(["catalog"]) == 0
    out = capsys.readouterr().out
    assert "cli_gssm  (synthetic): ssm [m3 m-3]; 0.01 deg, 10 x 16 px, 1 levels" in out
    assert "2018-07-01..2018-07-02 (2 days)" in out


def test_bad_input_exits_2_with_message_and_writes_nothing(data_dir, tmp_path, capsys):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00 not really a tiff")
    assert cli.main(["ingest", "gssm", str(bad), "--name", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fluxlens ingest: error:") and "broken.tif" in err
    assert cli.main(["ingest", "gssm", str(tmp_path / "missing.tif"), "--name", "x"]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert not (data_dir / "catalog.yaml").exists()
    assert not (data_dir / "products").exists() or not any((data_dir / "products").iterdir())


def test_replace_and_append_exclude_each_other(data_dir):
    with pytest.raises(SystemExit) as exc:
        cli.main(["ingest", "gssm", "a.tif", "--name", "x", "--replace", "--append"])
    assert exc.value.code == 2


def test_existing_product_needs_replace_or_append(data_dir, tmp_path, capsys):
    a = write_gssm_geotiff(tmp_path / "a.tif", cube(2, "2018-07-01", seed=1))
    b = write_gssm_geotiff(tmp_path / "b.tif", cube(2, "2018-07-01", seed=2))
    c = write_gssm_geotiff(tmp_path / "c.tif", cube(1, "2018-07-03", seed=3))
    assert cli.main(["ingest", "gssm", str(a), "--name", "p"]) == 0
    assert cli.main(["ingest", "gssm", str(b), "--name", "p"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["ingest", "gssm", str(b), "--name", "p", "--replace"]) == 0
    assert cli.main(["ingest", "gssm", str(c), "--name", "p", "--append"]) == 0
    assert api.product_info("p").n_time == 3
    capsys.readouterr()
    assert cli.main(["ingest", "gssm", str(b), "--name", "p", "--append"]) == 0  # already ingested: no change
    d = write_gssm_geotiff(tmp_path / "d.tif", cube(1, "2018-07-02", seed=4))
    assert cli.main(["ingest", "gssm", str(d), "--name", "p", "--append"]) == 2
    assert "1 date(s) already stored (2018-07-02" in capsys.readouterr().err
    assert api.product_info("p").n_time == 3


def test_smap_ingest_stores_what_the_reader_returns(data_dir, tmp_path):
    from data_prep import smap

    path = tmp_path / smap.smap_l3_file_name("2018-07-01")
    field = cube(1, "2018-07-01", n_lat=40, n_lon=60, res=0.25, west=-105.0, north=45.0).isel(
        time=0, drop=True
    )
    smap.write_smap_l3(path, field, field + 0.02)
    assert cli.main(["ingest", "smap", str(path), "--name", "sm_smap", "--passes", "AM"]) == 0
    expected = smap.read_smap_l3([str(path)], passes=("AM",)).ssm
    stored = api.open_product("sm_smap").ssm
    exp = expected.sortby("lat", ascending=False).values
    np.testing.assert_array_equal(stored.values, exp)
    assert np.isfinite(exp).sum() > 100
    assert api.product_info("sm_smap").provenance["options"]["passes"] == ["AM"]


def parse(argv):
    parser = argparse.ArgumentParser()
    commands.add_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_reader_options_from_flags():
    assert commands.reader_options(parse(["ingest", "esacci", "x", "--name", "n"])) == {"keep_flags": (0,)}
    assert commands.reader_options(
        parse(["ingest", "esacci", "x", "--name", "n", "--keep-flags", "all"])
    ) == {"keep_flags": None}
    assert commands.reader_options(
        parse(["ingest", "esacci", "x", "--name", "n", "--keep-flags", "0,2"])
    ) == {"keep_flags": (0, 2)}
    opts = commands.reader_options(parse(["ingest", "fluxnet", "x", "--name", "n", "--qc-min", "0.7"]))
    assert opts == {"sites_path": None, "qc_min": 0.7}
    with pytest.raises(InputError, match="bad --passes"):
        commands.reader_options(parse(["ingest", "smap", "x", "--name", "n", "--passes", "XM"]))
    with pytest.raises(InputError, match="bad --keep-flags"):
        commands.reader_options(parse(["ingest", "esacci", "x", "--name", "n", "--keep-flags", "a,b"]))


@pytest.mark.slow
def _no_products(data_dir):
    from catalog import api

    return api.list_products() == []


def _invert(src, dst, start, n=4096):
    data = bytearray(src.read_bytes())
    data[start : start + n] = bytes(b ^ 0xFF for b in data[start : start + n])
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("extra", [[], ["--mask-out-of-range"]])
def test_corrupt_gssm_tile_exits_2_and_stores_nothing(data_dir, tmp_path, capsys, extra):
    """4 KB inverted inside one DEFLATE tile used to be ingested (exit 0 with --mask-out-of-range, the
    garbage above 1 m3 m-3 masked, the rest kept); now the file is refused whatever the options."""
    import rasterio

    good = write_gssm_geotiff(tmp_path / "good.tif", cube(3, "2018-07-01", n_lat=600, n_lon=700))
    with rasterio.open(good) as src:
        offset = int(src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=2))
        size = int(src.get_tag_item("BLOCK_SIZE_0_0", "TIFF", bidx=2))
    bad = _invert(good, tmp_path / "bad.tif", offset + size // 2)
    assert cli.main(["ingest", "gssm", str(bad), "--name", "corrupt", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fluxlens ingest: error: {bad}: band 2 (2018-07-02), block at row 0, column 0")
    assert "corrupt DEFLATE data" in err and "Traceback" not in err and err.count("\n") == 1
    assert _no_products(data_dir)


def test_corrupt_smap_chunk_exits_2(data_dir, tmp_path, capsys):
    import h5py

    from data_prep import smap

    name = smap.smap_l3_file_name("2018-07-01")
    field = cube(1, "2018-07-01", n_lat=40, n_lon=60, res=0.25, west=-105.0, north=45.0).isel(
        time=0, drop=True
    )
    good = smap.write_smap_l3(tmp_path / name, field, field + 0.02)
    with h5py.File(good, "r") as f:
        d = f["Soil_Moisture_Retrieval_Data_PM/soil_moisture_pm"]
        info = max((d.id.get_chunk_info(i) for i in range(d.id.get_num_chunks())), key=lambda c: c.size)
    (tmp_path / "bad").mkdir()
    bad = _invert(good, tmp_path / "bad" / name, info.byte_offset + 10, min(4096, info.size - 20))
    assert cli.main(["ingest", "smap", str(bad), "--name", "corrupt_smap"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fluxlens ingest: error: {bad}: cannot read 'Soil_Moisture_Retrieval_Data_PM/")
    assert f"chunk at {info.chunk_offset}" in err and "Traceback" not in err
    assert _no_products(data_dir)


def test_corrupt_real_esacci_image_exits_2(data_dir, tmp_path, capsys, shared_data):
    """A real C3S image with a damaged 'sm' chunk: a bare 'RuntimeError: NetCDF: HDF error' traceback
    before; now one line naming the file and the variable."""
    import h5py

    src = next((shared_data / "c3s_esacci_global_images/c3s_daily_monthly").glob("*DAILY-20170701*.nc"))
    with h5py.File(src, "r") as f:
        info = f["sm"].id.get_chunk_info(0)
    bad = _invert(src, tmp_path / src.name, info.byte_offset + info.size // 2)
    assert cli.main(["ingest", "esacci", str(bad), "--name", "corrupt_cci"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fluxlens ingest: error: {bad}: variable 'sm' cannot be read (NetCDF: HDF error)")
    assert "Traceback" not in err
    assert _no_products(data_dir)


def test_mask_out_of_range_reaches_the_store(data_dir, tmp_path, capsys):
    values = cube(2, "2018-07-01", seed=5)
    values[1, 2, 3] = 12.0  # 12 m3 m-3: impossible soil moisture
    tif = write_gssm_geotiff(tmp_path / "oor.tif", values)
    assert cli.main(["ingest", "gssm", str(tif), "--name", "oor"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fluxlens ingest: error: product 'oor': ") and "outside 0…1" in err
    assert _no_products(data_dir)
    assert cli.main(["ingest", "gssm", str(tif), "--name", "oor", "--mask-out-of-range"]) == 0
    out = capsys.readouterr().out
    assert "stored as missing (outside the valid range, --mask-out-of-range): ssm: 1" in out
    stored = api.open_product("oor").ssm.values
    assert np.isnan(stored[1, 2, 3]) and np.isfinite(stored).sum() == values.size - 1
    assert api.product_info("oor").provenance["masked_out_of_range"] == {"ssm": 1}


def test_mask_out_of_range_is_refused_for_stations(data_dir, tmp_path, capsys):
    assert cli.main(["ingest", "fluxnet", str(tmp_path), "--name", "net", "--mask-out-of-range"]) == 2
    assert "--mask-out-of-range applies to gridded products" in capsys.readouterr().err


def test_append_to_a_missing_product_is_a_clear_error(data_dir, tmp_path, capsys):
    tif = write_gssm_geotiff(tmp_path / "a.tif", cube(2, "2018-07-01"))
    assert cli.main(["ingest", "gssm", str(tif), "--name", "nothing_yet", "--append"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "fluxlens ingest: error: cannot append to product 'nothing_yet': the catalog has no such product; "
        "ingest it first without --append\n"
    )
    assert _no_products(data_dir)


def test_too_long_input_path_exits_2(data_dir, tmp_path, capsys):
    long_name = tmp_path / ("x" * 300 + ".tif")
    assert cli.main(["ingest", "gssm", str(long_name), "--name", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fluxlens ingest: error: path or file name too long: {long_name} (")
    assert "longest name 304 bytes" in err and "255 bytes per name" in err and "Traceback" not in err
