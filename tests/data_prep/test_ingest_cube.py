"""`fluxlens ingest cube`: real ERA5, GLDAS and C3S files into the catalog, listed with their
units, recipe, regridding method, source checksums and synthetic: false."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from catalog import api
from fluxlens import cli


@pytest.fixture
def gridded(shared_data):
    return shared_data / "gridded_real"


def test_valdivia_fluxes_ingested_and_listed(gridded, data_dir, capsys):
    path = gridded / "era5_cds" / "era5_valdivia_accum_slhf_sshf_ssr_str.nc"
    assert cli.main(["ingest", "cube", str(path), "--recipe", "era5", "--name", "era5_valdivia"]) == 0
    info = api.product_info("era5_valdivia")
    assert info.kind == "flux" and not info.synthetic
    assert {v: m["units"] for v, m in info.variables.items()} == {"le": "W m-2", "h": "W m-2", "rn": "W m-2"}
    src = info.provenance["sources"][0]
    assert src["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info.provenance["recipe"]["name"] == "era5"
    assert info.provenance["variables"]["le"]["regridding"].startswith("none")
    capsys.readouterr()
    assert cli.main(["catalog"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("era5_valdivia"))
    assert "(synthetic)" not in line and "le [W m-2]" in line
    assert "recipe era5; 1 source file(s), 1 with sha256" in out
    assert "le: one value per time step (valid at 12:00 UTC), not a daily mean; regridding: none" in out
    series = api.point_series("era5_valdivia", -73.5, -40.0)
    assert float(series.le.mean()) > 0


def test_cube_regridded_onto_another_products_grid(gridded, data_dir):
    valdivia = gridded / "era5_cds" / "era5_valdivia_accum_slhf_sshf_ssr_str.nc"
    assert cli.main(["ingest", "cube", str(valdivia), "--recipe", "era5", "--name", "coarse",
                     "--resolution", "0.5"]) == 0  # fmt: skip
    assert cli.main(["ingest", "cube", str(valdivia), "--recipe", "era5", "--name", "on_grid",
                     "--grid", "coarse", "--only", "le"]) == 0  # fmt: skip
    a, b = api.open_product("coarse"), api.open_product("on_grid")
    np.testing.assert_array_equal(a.lat.values, b.lat.values)
    np.testing.assert_allclose(a.le.values, b.le.values, rtol=1e-6, equal_nan=True)
    assert list(b.data_vars) == ["le"]
    assert api.product_info("on_grid").provenance["variables"]["le"]["regridding"].startswith("area-weighted")


def test_static_landcover_and_gldas(gridded, data_dir):
    lc = gridded / "c3s_lai_landcover" / "land-cover_LCCS_MAP_300m_2020.zip"
    assert cli.main(["ingest", "cube", str(lc), "--recipe", "c3s-landcover", "--name", "lc"]) == 0
    assert api.product_info("lc").kind == "static"
    assert cli.main(["ingest", "cube", str(gridded / "gldas_noah025_3h"), "--recipe", "gldas-noah",
                     "--name", "gldas", "--bbox=-10,35,30,60"]) == 0  # fmt: skip
    info = api.product_info("gldas")
    assert info.bbox == pytest.approx((-10, 35, 30, 60)) and info.variables["ssm"]["units"] == "m3 m-3"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--recipe", "nope"], "unknown recipe 'nope'"),
        (["--recipe", "era5", "--only", "ta"], "ta needs t2m"),
        (["--recipe", "era5", "--bbox", "10,10,11,11"], "outside the data"),
        (["--recipe", "era5", "--bbox", "10,10"], "bad bbox"),
        ([], "needs --recipe"),
        (["--recipe", "era5", "--grid", "nothere"], "unknown product 'nothere'"),
    ],
)
def test_bad_requests_exit_2_and_write_nothing(gridded, data_dir, capsys, args, message):
    path = gridded / "era5_cds" / "era5_valdivia_accum_slhf_sshf_ssr_str.nc"
    assert cli.main(["ingest", "cube", str(path), "--name", "x", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert api.list_products() == []
