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
def test_demo_small_builds_a_catalog_that_intake_opens(data_dir, capsys):
    import intake

    assert cli.main(["demo", "--small"]) == 0
    out = capsys.readouterr().out
    assert "gssm1km_demo  (synthetic)" in out and "fluxnet_demo  (synthetic)" in out
    cat = intake.from_yaml_file(str(data_dir / "catalog.yaml"))
    assert {"gssm1km_demo", "fluxes_demo", "fluxnet_demo.sites", "ismn_demo.observations"} <= set(cat.entries)
    for name, entry in cat.entries.items():
        assert entry.metadata["synthetic"] is True, name
        assert len(cat[name].read()) > 0
    assert all(p.synthetic for p in api.list_products())
