"""The intake 2 catalog file: every entry opens with plain intake, and the folder can move."""

from __future__ import annotations

import shutil

import intake
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from catalog import api, chunking, intake_catalog, store
from tests.catalog.conftest import grid_dataset


@pytest.fixture
def filled(data_dir, monkeypatch):
    monkeypatch.setattr(chunking, "SERIES_MIN_PIXELS", 1000)
    ds = grid_dataset(n_time=3, n_lat=4, n_lon=1500, res=0.01)
    store.write_product(ds, "sm", provenance={"reader": "t"}, synthetic=True)
    store.write_product(grid_dataset(n_lat=3, n_lon=5, seed=3), "small", provenance={"r": 1}, synthetic=False)
    sites = pd.DataFrame({"site_id": ["A"], "lat": [1.0], "lon": [2.0]})
    obs = pd.DataFrame(
        {"site_id": ["A", "A"], "time": pd.to_datetime(["2018-01-01", "2018-01-02"]), "LE": [1.0, 2.0]}
    )
    store.write_stations("net", sites, obs, provenance={"r": 2}, synthetic=True)
    return ds.load()


EXPECTED = {"sm", "sm.level1", "sm.series", "small", "net.sites", "net.observations"}


def test_every_entry_opens_with_intake(filled, data_dir):
    cat = intake.from_yaml_file(str(data_dir / "catalog.yaml"))
    assert set(cat.entries) == EXPECTED
    for name in EXPECTED:
        out = cat[name].read()
        assert isinstance(out, xr.Dataset if "." not in name or name.startswith("sm.") else pd.DataFrame)
        assert "synthetic" in cat.entries[name].metadata
    np.testing.assert_array_equal(cat["sm"].read().ssm.values, filled.ssm.values)
    assert cat["sm.level1"].read().sizes["lon"] == 750
    meta = cat.entries["sm"].metadata
    assert meta["info"]["variables"]["ssm"]["units"] == "m3 m-3"
    assert meta["info"]["time_start"] == "2018-07-01" and meta["info"]["bbox"] == pytest.approx(
        [-105, 49.96, -90, 50]
    )
    assert cat.entries["small"].metadata["synthetic"] is False
    assert cat.entries["net.sites"].metadata["n_sites"] == 1


def test_paths_are_relative_and_the_folder_can_move(filled, data_dir, tmp_path, monkeypatch):
    text = (data_dir / "catalog.yaml").read_text()
    assert str(data_dir) not in text and "{CATALOG_DIR}/products/sm/v1/levels/0.zarr" in text
    moved = tmp_path / "elsewhere" / "data"
    shutil.move(str(data_dir), str(moved))
    cat = intake.from_yaml_file(str(moved / "catalog.yaml"))
    np.testing.assert_array_equal(cat["sm"].read().ssm.values, filled.ssm.values)
    assert list(cat["net.observations"].read()["LE"]) == [1.0, 2.0]
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(moved))
    out = api.point_series("sm", -104.0, 49.98)
    assert out.attrs["pixel_lon"] == pytest.approx(-104.005)


def test_replacing_a_product_keeps_other_entries(filled, data_dir):
    store.write_product(grid_dataset(n_lat=3, n_lon=5, seed=4), "small", provenance={"r": 9}, synthetic=False,
                        mode="replace")  # fmt: skip
    cat = intake.from_yaml_file(str(data_dir / "catalog.yaml"))
    assert set(cat.entries) == EXPECTED
    assert len(cat.data) == len(EXPECTED)  # no orphaned data descriptions


def test_remote_urls_are_kept_and_local_paths_made_relative(tmp_path):
    assert intake_catalog.catalog_url(tmp_path, "s3://bucket/x.zarr") == "s3://bucket/x.zarr"
    assert intake_catalog.catalog_url(tmp_path, tmp_path / "products" / "a") == "{CATALOG_DIR}/products/a"
    outside = tmp_path.parent / "other.zarr"
    assert intake_catalog.catalog_url(tmp_path, outside) == str(outside.resolve())
