"""``fluxlens validate`` on the small demo world, checked against an independent computation
(observations through the catalog, product pixels read straight from the level-0 Zarr)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from app.validation_cli import add_validate_command
from catalog.errors import InputError
from tests.stores import level_path


@pytest.fixture
def demo_env(demo_world, tmp_path, monkeypatch):
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(demo_world))
    monkeypatch.setenv("FLUXLENS_VALIDATION_CACHE", str(tmp_path / "cache"))
    return demo_world


def _run(argv):
    parser = argparse.ArgumentParser(prog="fluxlens")
    add_validate_command(parser.add_subparsers(dest="command", required=True))
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
