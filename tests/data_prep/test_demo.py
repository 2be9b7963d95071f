"""The small demo world built into a temporary data directory, checked via the catalog and raw files."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import rasterio

from catalog import api
from catalog.igbp import IGBP_NAMES
from data_prep import demo
from data_prep import demo_world as w
from tests.stores import network_dir


@pytest.fixture(scope="module")
def built(demo_world) -> Path:
    """The session's small demo world (``demo.build_demo(small=True)``; read only)."""
    return demo_world


@pytest.fixture
def catalog_at(built, monkeypatch) -> Path:
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(built))
    return built


def test_every_product_and_network_is_registered_as_synthetic(catalog_at):
    infos = {p.name: p for p in api.list_products()}
    assert set(demo.PRODUCTS) <= set(infos)
    for name in demo.PRODUCTS:
        assert infos[name].synthetic is True
        assert infos[name].provenance["description"] == "FluxLens demo world, synthetic"
    assert set(demo.NETWORKS) <= set(api.list_networks())
    for network in demo.NETWORKS:
        sites = api.sites(network)
        assert sites["synthetic"].all()
    assert len(api.sites("fluxnet_demo")) == w.SMALL.n_towers
    assert len(api.sites("ismn_demo")) == w.SMALL.n_stations
    gssm = infos["gssm1km_demo"]
    assert gssm.levels[0]["n_lat"] == gssm.levels[0]["n_lon"] == 400
    assert gssm.resolution == pytest.approx(0.01)


def test_fluxes_close_the_energy_balance_exactly(catalog_at):
    ds = api.open_product("fluxes_demo").load()
    residual = (ds.rn - ds.g) - (ds.le + ds.h)
    land = np.isfinite(ds.rn)
    assert land.sum() > 1000
    assert float(np.abs(residual.where(land)).max()) == 0.0
    # and the fluxes are physical: northern-summer land means, LE and H positive on average
    july = ds.sel(time="2018-07").mean("time")
    nh = july.sel(lat=slice(60, 20))
    assert 20 < float(nh.le.mean()) < 120
    assert 10 < float(nh.h.mean()) < 120
    assert 60 < float(nh.rn.mean()) < 200


def test_towers_under_close_and_corrected_fluxes_close(catalog_at):
    obs = pd.concat(api.site_observations("fluxnet_demo", s) for s in api.sites("fluxnet_demo")["site_id"])
    available = obs["NETRAD"] - obs["G"]
    ok = (available > 50) & obs["G"].notna()
    raw = ((obs["LE"] + obs["H"]) / available)[ok]
    corrected = ((obs["LE_CORR"] + obs["H_CORR"]) / available)[ok]
    assert 0.75 < raw.median() < 0.86
    assert 0.96 < corrected.median() < 1.04
    assert (obs["LE_QC"] < 1).any() and (obs["LE_QC"] == 1).mean() > 0.6
    swc = obs["SWC"].dropna()
    assert swc.size > 0.6 * len(obs) and swc.between(0.005, 0.6).all()  # m3 m-3 after the reader


def test_tower_csv_holds_swc_in_percent_and_igbp_matches_land_cover(catalog_at):
    sites = api.sites("fluxnet_demo")
    site = sites.iloc[0]
    folder = catalog_at / demo.RAW_DIR / "fluxnet"
    path = next(folder.glob(f"FLX_{site.site_id}_FLUXNET2015_SUBSET_DD_*.csv"))
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    row = next(r for r in rows if r["SWC_F_MDS_1"] != "-9999")
    stored = api.site_observations("fluxnet_demo", site.site_id)
    stored_row = stored[stored["time"] == pd.Timestamp(row["TIMESTAMP"])].iloc[0]
    assert float(row["SWC_F_MDS_1"]) / 100 == pytest.approx(stored_row["SWC"], abs=1e-6)
    assert float(row["LE_CORR"]) == pytest.approx(stored_row["LE_CORR"], abs=1e-4)
    assert 5 < float(row["SWC_F_MDS_1"]) < 60  # percent, not m3 m-3

    for s in sites.itertuples():
        cube = api.point_series("static_demo", s.lon, s.lat, ["igbp"])
        assert int(cube["igbp"].values[0]) == int(s.igbp_code)
        assert IGBP_NAMES[int(s.igbp_code)] == s.igbp
    west, south, east, north = w.SMALL.region
    in_region = sites["lon"].between(west, east) & sites["lat"].between(south, north)
    assert in_region.sum() == w.SMALL.n_towers_region


def test_gssm_values_are_the_geotiff_content(catalog_at):
    path = next((catalog_at / demo.RAW_DIR / "gssm").glob("*.tif"))
    with rasterio.open(path) as src:
        assert src.dtypes[0] == "uint16"
        assert src.descriptions[0] == "band_2018_07_01_classification"
        raw = src.read(5)
        row, col = 123, 321
        lon, lat = src.xy(row, col)
    ds = api.open_product("gssm1km_demo")
    ssm = ds.ssm.isel(time=4).load()
    assert float(ssm.isel(lat=row, lon=col)) == pytest.approx(raw[row, col] / 1000, abs=1e-6)
    assert float(ssm.lat[row]) == pytest.approx(lat) and float(ssm.lon[col]) == pytest.approx(lon)
    values = ds.ssm.values
    assert np.nanmin(values) >= 0 and np.nanmax(values) <= 0.6
    assert np.isfinite(values).mean() > 0.9
    # fine-scale structure: neighbouring 1 km pixels differ, the region is not a smooth blow-up
    assert float(np.nanstd(np.diff(values[10], axis=1))) > 1e-3


def test_esacci_product_is_masked_where_flagged(catalog_at):
    files = sorted((catalog_at / demo.RAW_DIR / "esacci").glob("*.nc"))
    with netCDF4.Dataset(files[0]) as nc:
        nc.set_auto_mask(False)
        sm, flag = nc["sm"][0], nc["flag"][0]
    flagged_with_value = (flag > 0) & (flag != 127) & (sm != -9999)
    assert flagged_with_value.sum() > 10  # the file has flagged retrievals …
    ds = api.open_product("esacci_demo").load()
    assert np.isnan(ds.ssm.values[0][flagged_with_value]).all()  # … which the product masks
    good = (flag == 0) & (sm != -9999)
    assert np.allclose(ds.ssm.values[0][good], sm[good], atol=1e-6)
    assert (ds.flag.values[np.isfinite(ds.ssm.values)] == 0).all()


def test_smap_has_orbit_gaps_and_a_dry_bias(catalog_at):
    smap = api.open_product("smap_demo").load()
    truth = api.open_product("ssm_global_demo").sel(time=smap.time).load()
    land = np.isfinite(truth.ssm.values)
    seen = np.isfinite(smap.ssm.values)
    tropics = (np.abs(smap.lat.values) < 30)[None, :, None] & land
    assert 0.2 < seen[tropics].mean() < 0.9  # swaths leave gaps at low latitudes each day
    both = seen & land
    diff = smap.ssm.values[both] - truth.ssm.values[both]
    assert -0.035 < np.median(diff) < -0.005


def _digests(data_dir: Path) -> dict[str, str]:
    """sha256 of every raw file and every Zarr chunk (metadata JSON holds paths and ids, so skipped)."""
    out = {}
    for f in sorted(data_dir.rglob("*")):
        rel = f.relative_to(data_dir).as_posix()
        if f.is_file() and (rel.startswith("raw/") or ("/c/" in rel and rel.startswith("products/"))):
            out[rel] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def test_two_builds_are_identical(built, tmp_path):
    again = tmp_path / "again"
    demo.build_demo(again, small=True)
    first, second = _digests(built), _digests(again)
    assert len(first) > 100
    assert first == second
    for network in demo.NETWORKS:
        a = pd.read_parquet(network_dir(built, network) / "observations.parquet")
        b = pd.read_parquet(network_dir(again, network) / "observations.parquet")
        pd.testing.assert_frame_equal(a, b)
