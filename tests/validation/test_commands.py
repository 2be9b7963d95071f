"""``fluxlens validate`` on the small demo world, checked against an independent computation
(observations through the catalog, product pixels read straight from the level-0 Zarr)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from catalog.errors import InputError
from tests.stores import level_path
from validation.commands import add_commands


@pytest.fixture
def demo_env(demo_world, tmp_path, monkeypatch):
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(demo_world))
    monkeypatch.setenv("FLUXLENS_VALIDATION_CACHE", str(tmp_path / "cache"))
    return demo_world


def _run(argv):
    parser = argparse.ArgumentParser(prog="fluxlens")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def _read_csv(path):
    head = {}
    with open(path) as fh:
        for line in fh:
            if not line.startswith("# "):
                break
            key, _, value = line[2:].partition(": ")
            head[key] = value.strip()
    return head, pd.read_csv(path, comment="#")


def test_validate_le_against_demo_towers(demo_env, tmp_path, capsys):
    from catalog import api

    out = tmp_path / "metrics.csv"
    assert _run(["validate", "--product", "fluxes_demo", "--variable", "le", "--network", "fluxnet_demo",
                 "--out", str(out)]) == 0  # fmt: skip
    assert "sites matched" in capsys.readouterr().out
    head, table = _read_csv(out)
    assert head["product"] == "fluxes_demo" and head["units"].startswith("W m-2")
    sites = api.sites("fluxnet_demo")
    assert sorted(table["site_id"]) == sorted(sites["site_id"])
    cube = xr.open_zarr(level_path(demo_env, "fluxes_demo"), consolidated=False)
    checked = 0
    for _, site in sites.iterrows():
        obs = api.site_observations("fluxnet_demo", site["site_id"])
        i = int(np.abs(cube["lat"].values - site["lat"]).argmin())
        j = int(np.abs(cube["lon"].values - site["lon"]).argmin())
        days = pd.DatetimeIndex(cube["time"].values)
        pred = pd.Series(cube["le"][:, i, j].values.astype(float), index=days)
        o = pd.Series(obs["LE"].where(~(obs["LE_QC"] < 0.8)).to_numpy(), index=pd.DatetimeIndex(obs["time"]))
        both = pd.concat({"o": o, "p": pred}, axis=1, join="inner").dropna()
        row = table.set_index("site_id").loc[site["site_id"]]
        assert row["n"] == len(both)
        if len(both) >= 10:
            d = both["p"] - both["o"]
            assert row["rmse"] == pytest.approx(np.sqrt((d**2).mean()), rel=1e-5)
            assert row["bias"] == pytest.approx(d.mean(), rel=1e-5, abs=1e-6)
            assert row["r"] == pytest.approx(np.corrcoef(both["o"], both["p"])[0, 1], rel=1e-5)
            checked += 1
    assert checked >= 5
    pooled = json.loads(head["pooled_metrics"])
    assert pooled["n"] == table["n"].sum()


def test_validate_sites_subset_soil_moisture_and_errors(demo_env, tmp_path):
    from catalog import api

    ids = api.sites("ismn_demo")["site_id"].tolist()[:2]
    out = tmp_path / "sm.csv"
    argv = ["validate", "--product", "smap_demo", "--variable", "ssm", "--network", "ismn_demo",
            "--sites", ",".join(ids), "--out", str(out), "--anomaly"]  # fmt: skip
    assert _run(argv) == 0
    head, table = _read_csv(out)
    assert sorted(table["site_id"]) == sorted(ids)
    assert json.loads(head["options"])["anomaly"] is True
    with pytest.raises(InputError, match="no site"):
        _run(argv[:7] + ["--sites", "NOPE", "--out", str(out)])
    with pytest.raises(InputError, match="cannot be validated"):
        _run(["validate", "--product", "fluxes_demo", "--variable", "ndvi", "--network", "fluxnet_demo",
              "--out", str(tmp_path / "x.csv")])  # fmt: skip
    with pytest.raises(InputError):
        _run(["validate", "--product", "no_such", "--variable", "le", "--network", "fluxnet_demo",
              "--out", str(tmp_path / "y.csv")])  # fmt: skip
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "y.csv").exists()


@pytest.fixture
def world_with_real_towers(demo_world, shared_data, tmp_path, monkeypatch):
    """A hard-link copy of the demo world (2018) plus three real FLUXNET2015 monthly towers (≤ 2012)."""
    import os
    import shutil

    from data_prep import ingest

    d = tmp_path / "data"
    shutil.copytree(demo_world, d, copy_function=os.link)
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(d))
    monkeypatch.setenv("FLUXLENS_VALIDATION_CACHE", str(tmp_path / "cache"))
    folder = shared_data / "fluxnet2015_monthly"
    files = [
        next(folder.glob(f"FLX_{site}_FLUXNET2015_SUBSET_MM_*.csv"))
        for site in ("US-ARM", "US-Blo", "US-Goo")
    ]
    ingest.ingest("fluxnet", files, name="fluxnet_real", sites_path=folder)
    return d


def test_validate_without_overlap_in_time_is_an_error(world_with_real_towers, tmp_path, capsys):
    """Used to print "3 of 3 sites matched" with n = 0 and NaN metrics, exit 0."""
    from catalog import api
    from fluxlens import cli

    sites = api.sites("fluxnet_real")
    first, last = sites["start"].min(), sites["end"].max()
    assert last < pd.Timestamp("2018-06-01")
    out = tmp_path / "metrics.csv"
    argv = ["validate", "--product", "fluxes_demo", "--variable", "le", "--network", "fluxnet_real"]
    assert cli.main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    head = "fluxlens validate: error: "
    assert err == (
        f"{head}fluxes_demo le vs fluxnet_real: 0 of 3 sites overlap 2018-06-01…2018-07-30; "
        f"the sites' records span {first:%Y-%m-%d}…{last:%Y-%m-%d}; nothing to validate\n"
    )
    assert not out.exists()
    # a --period outside the product is refused before any site is read
    assert cli.main([*argv, "--out", str(out), "--period", "2005-01-01", "2005-12-31"]) == 2
    assert (
        "the period 2005-01-01…2005-12-31 does not overlap product 'fluxes_demo'" in capsys.readouterr().err
    )
    assert not out.exists()
    argv[argv.index("le")] = "ssm"
    assert cli.main([*argv, "--out", str(out)]) == 2
    assert "product 'fluxes_demo' has no variable 'ssm'; it has le, h, rn, g" in capsys.readouterr().err
    assert not out.exists()


def test_validate_with_no_pairs_is_an_error(demo_env, tmp_path, capsys):
    """Sites that overlap in time but lie outside the product: no pairs, so no metrics to report."""
    from catalog import api
    from fluxlens import cli

    info = api.product_info("gssm1km_demo")
    w, s, e, n = info.bbox
    sites = api.sites("ismn_demo")
    outside = sites[~sites["lon"].between(w, e) | ~sites["lat"].between(s, n)]["site_id"].tolist()
    assert outside
    out = tmp_path / "sm.csv"
    argv = ["validate", "--product", "gssm1km_demo", "--variable", "ssm", "--network", "ismn_demo",
            "--sites", ",".join(outside), "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"fluxlens validate: error: gssm1km_demo ssm vs ismn_demo: 0 of {len(outside)} sites have pairs in "
        f"{info.time_start}…{info.time_end} ("
    )
    assert "is outside product 'gssm1km_demo'" in err and err.endswith("; nothing written\n")
    assert not out.exists()


def test_sites_overlapping_and_windows():
    from validation import matching

    sites = pd.DataFrame(
        {
            "site_id": ["old", "new", "unknown", "edge"],
            "start": pd.to_datetime(["2001-01-01", "2019-01-01", None, "2018-12-31"]),
            "end": pd.to_datetime(["2005-12-31", "2020-01-01", None, "2019-06-30"]),
        }
    )
    inside = matching.sites_overlapping(sites, "2018-01-01", "2018-12-31")
    assert inside.tolist() == [False, False, True, True]
    span = (
        r"0 of 2 sites overlap 2018-01-01…2018-12-31; the sites' records span 2001-01-01…2020-01-01; nothing"
    )
    with pytest.raises(InputError, match=span):
        matching.require_overlap(sites.iloc[:2], "2018-01-01", "2018-12-31")
    start, end = matching.validation_window("2018-01-01", "2018-08-01", "month")
    assert (start, end) == (pd.Timestamp("2018-01-01"), pd.Timestamp("2018-08-31"))
    assert matching.validation_window("2018-01-01", "2018-12-31", period=("2018-06-01", "2019-06-01")) == (
        pd.Timestamp("2018-06-01"),
        pd.Timestamp("2018-12-31"),
    )
    with pytest.raises(InputError, match="does not overlap"):
        matching.validation_window("2018-01-01", "2018-12-31", period=("2019-01-01", "2019-02-01"))
