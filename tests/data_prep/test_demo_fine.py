"""The fine regional demo world: its size, and a tiny variant built into a temporary data directory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from catalog import api
from data_prep import demo
from data_prep import demo_world as w

# A 4° × 4° box of the fine world (its month: probes' missing runs last up to 20 days); the cells are
# simulated in chunks of 500 (four chunks).
TINY = dataclasses.replace(
    w.FINE,
    label="fine-tiny",
    bbox=(86.0, 49.0, 90.0, 53.0),
    region=(87.0, 50.0, 89.0, 52.0),
    n_towers=4,
    n_towers_region=1,
    n_stations=2,
    n_stations_region=1,
)
CUBES = {"ssm_global_demo", "fluxes_demo", "forcing_demo", "static_demo"}


def test_fine_spec_holds_a_500_by_500_px_30_day_job_mostly_on_land():
    lat, lon = w.grid_centres(w.FINE.global_res, w.FINE.bbox)
    assert lat.size >= 500 and lon.size >= 500
    assert len(w.FINE.dates(w.FINE.period)) >= 30
    assert w.land_mask(lat, lon).mean() > 0.9
    west, south, east, north = w.FINE.bbox
    rw, rs, re, rn = w.FINE.region
    assert west < rw < re < east and south < rs < rn < north  # towers of the region inside the cubes


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("demo-fine") / "fluxlens-data"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("data_prep.demo_world.world.CHUNK_POINTS", 500)  # the module simulate_grid reads
        demo.build_demo(data_dir, spec=TINY)
    return data_dir


@pytest.fixture(scope="module")
def static() -> w.StaticFields:
    return w.reference_static()


@pytest.fixture
def catalog_at(built, monkeypatch) -> Path:
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(built))
    return built


def test_only_cubes_and_stations_on_the_regional_grid(catalog_at):
    assert {p.name for p in api.list_products()} == CUBES
    assert set(api.list_networks()) == set(demo.NETWORKS)
    lat, lon = w.grid_centres(0.1, TINY.bbox)
    for name in CUBES:
        info = api.product_info(name)
        assert info.levels[0]["n_lat"] == info.levels[0]["n_lon"] == 40
        assert info.resolution == pytest.approx(0.1)
        assert info.bbox == pytest.approx(TINY.bbox)
        ds = api.open_product(name)
        np.testing.assert_allclose(ds.lat.values, lat)
        np.testing.assert_allclose(ds.lon.values, lon)
    forcing = api.open_product("forcing_demo")
    assert [str(t)[:10] for t in forcing.time.values] == [f"2018-07-{d:02d}" for d in range(1, 32)]
    sites = api.sites("fluxnet_demo")
    west, south, east, north = TINY.bbox
    assert len(sites) == TINY.n_towers
    assert (sites["lon"].between(west, east) & sites["lat"].between(south, north)).all()


def test_fluxes_close_the_energy_balance_exactly(catalog_at):
    ds = api.open_product("fluxes_demo").load()
    land = np.isfinite(ds.rn)
    assert int(land.sum()) > 0.9 * land.size  # inland Asia: all land
    residual = (ds.rn - ds.g) - (ds.le + ds.h)
    assert float(np.abs(residual.where(land)).max()) == 0.0
    assert 50 < float(ds.rn.where(land).mean()) < 250  # July daily means, W m-2


@pytest.mark.parametrize(("row", "col"), [(0, 0), (21, 13), (39, 39)])  # first, middle and last chunk
def test_cells_are_the_world_at_their_centres(catalog_at, static, row, col):
    """A stored cell equals one unchunked run of the model at that cell's centre on the same days."""
    forcing = api.open_product("forcing_demo").isel(lat=row, lon=col).load()
    fluxes = api.open_product("fluxes_demo").isel(lat=row, lon=col).load()
    ssm = api.open_product("ssm_global_demo").isel(lat=row, lon=col).load()
    pts = w.simulate_points(static, [float(forcing.lat)], [float(forcing.lon)], TINY.year).period(
        *TINY.period
    )
    for name in ("ta", "sw_in", "precip", "lai"):
        np.testing.assert_array_equal(forcing[name].values, pts.series[name][:, 0], err_msg=name)
    for name in ("le", "h", "rn", "g"):
        np.testing.assert_array_equal(fluxes[name].values, pts.series[name][:, 0], err_msg=name)
    np.testing.assert_array_equal(ssm["ssm"].values, pts.series["ssm"][:, 0])
