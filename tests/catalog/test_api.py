"""Read API over real stores written by ``catalog.store``."""

from __future__ import annotations

import math

import dask.array as da
import numpy as np
import pandas as pd
import pytest

from catalog import api, store
from catalog.errors import InputError
from tests.catalog.conftest import grid_dataset

PROV = {"reader": "test"}


def great_circle_km(lon1, lat1, lon2, lat2):
    """Spherical law of cosines (independent of the haversine form used by the API)."""
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    c = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return 6371.0088 * math.acos(min(1.0, c))


@pytest.fixture
def product(data_dir):
    ds = grid_dataset(n_time=4, n_lat=6, n_lon=2100, res=0.01, west=-105.0, north=50.0, nan_fraction=0.1)
    store.write_product(ds, "sm", provenance=PROV, synthetic=True)
    return ds.load()


def test_list_and_info(product):
    (info,) = api.list_products()
    assert info == api.product_info("sm")
    assert info.variables["ssm"]["units"] == "m3 m-3"
    assert (info.n_time, info.time_start, info.time_end, info.time_step) == (
        4,
        "2018-07-01",
        "2018-07-04",
        "day",
    )
    assert info.synthetic is True and info.kind == "soil_moisture"
    assert [lev["n_lon"] for lev in info.levels] == [2100, 1050, 525]
    assert info.bbox == pytest.approx((-105.0, 49.94, -84.0, 50.0))


def test_unknown_product_lists_known_ones(product):
    with pytest.raises(InputError, match=r"unknown product 'nope'; known products: sm"):
        api.product_info("nope")
    with pytest.raises(InputError, match="levels 0..2"):
        api.open_product("sm", 3)


def test_open_product_is_lazy_and_cached(product):
    ds = api.open_product("sm", 1)
    assert isinstance(ds.ssm.data, da.Array)
    assert ds.ssm.dims == ("time", "lat", "lon") and ds.sizes["lon"] == 1050
    # catalog read chunks: whole stored chunks (a grid this small keeps whole days, several a chunk)
    stored = store.map_chunks(ds.sizes["time"], ds.sizes["lat"], ds.sizes["lon"])
    assert stored[1:] == (3, 1050) and stored[0] == ds.sizes["time"]
    assert ds.ssm.data.chunksize == stored
    again = api.open_product("sm", 1)
    assert again.ssm.data.name == ds.ssm.data.name  # same opened store, not re-read
    again["extra"] = again.ssm * 2
    assert "extra" not in api.open_product("sm", 1)  # callers cannot alter the cached dataset
    np.testing.assert_array_equal(api.open_product("sm").ssm.values, product.ssm.values)


def test_cache_follows_a_replaced_product(product):
    np.testing.assert_array_equal(api.open_product("sm").ssm.values, product.ssm.values)
    new = grid_dataset(n_time=2, n_lat=6, n_lon=2100, res=0.01, seed=11)
    store.write_product(new, "sm", provenance={"reader": "v2"}, synthetic=True, mode="replace")
    second = api.open_product("sm")
    assert second.sizes["time"] == 2
    np.testing.assert_array_equal(second.ssm.values, new.ssm.values)


def test_choose_level(product):
    # resolutions 0.01, 0.02, 0.04 deg: pixels across 20 deg = 2000, 1000, 500
    assert api.choose_level("sm", (-105, -85), (49.9, 50), 400) == 2
    assert api.choose_level("sm", (-105, -85), (49.9, 50), 501) == 1
    assert api.choose_level("sm", (-105, -85), (49.9, 50), 1000) == 1
    assert api.choose_level("sm", (-105, -85), (49.9, 50), 1001) == 0
    assert api.choose_level("sm", (-100, -99), (49.9, 50), 5000) == 0
    with pytest.raises(InputError, match="bad view"):
        api.choose_level("sm", (-85, -105), (49.9, 50), 100)


def test_point_series_nearest_pixel_and_distance(product):
    lon, lat = -100.0031, 49.9712
    out = api.point_series("sm", lon, lat)
    i = int(np.argmin(np.abs(product.lat.values - lat)))
    j = int(np.argmin(np.abs(product.lon.values - lon)))
    assert out.attrs["pixel_lon"] == pytest.approx(-100.005)
    assert out.attrs["pixel_lat"] == pytest.approx(49.975)
    assert out.attrs["distance_km"] == pytest.approx(great_circle_km(lon, lat, -100.005, 49.975), rel=1e-6)
    assert 0.2 < out.attrs["distance_km"] < 0.5
    np.testing.assert_array_equal(out.ssm.values, product.ssm.values[:, i, j])
    assert list(out.time.values) == list(product.time.values)


def test_point_series_outside_bbox(product):
    with pytest.raises(InputError, match=r"outside product 'sm'"):
        api.point_series("sm", -80.0, 45.0)
    with pytest.raises(InputError, match="no variable"):
        api.point_series("sm", -100.0, 49.97, variables=["le"])


def test_region_series_is_cos_lat_weighted_valid_mean(product):
    bbox = (-100.0, 49.945, -99.95, 49.99)
    out = api.region_series("sm", bbox)
    lat, lon = product.lat.values, product.lon.values
    rows = [i for i in range(lat.size) if bbox[1] <= lat[i] <= bbox[3]]
    cols = [j for j in range(lon.size) if bbox[0] <= lon[j] <= bbox[2]]
    for t in range(4):
        num = den = 0.0
        for i in rows:
            w = math.cos(math.radians(lat[i]))
            for j in cols:
                v = float(product.ssm.values[t, i, j])
                if not math.isnan(v):
                    num += w * v
                    den += w
        assert float(out.ssm[t]) == pytest.approx(num / den, rel=1e-5)
    assert out.attrs["n_pixels"] == len(rows) * len(cols) and out.attrs["level"] == 0


def test_region_series_outside_data(product):
    with pytest.raises(InputError, match="outside product"):
        api.region_series("sm", (10.0, 10.0, 11.0, 11.0))
    with pytest.raises(InputError, match="bad bbox"):
        api.region_series("sm", (-99.0, 49.0, -100.0, 50.0))


def test_sites_and_observations(data_dir):
    sites = pd.DataFrame(
        {"site_id": ["A", "B"], "name": ["Alpha", "Beta"], "lat": [1.0, 2.0], "lon": [3.0, 4.0]}
    )
    obs = pd.DataFrame(
        {
            "site_id": ["B", "A", "A"],
            "time": pd.to_datetime(["2018-01-01", "2018-01-02", "2018-01-01"]),
            "LE": [3.0, 2.0, 1.0],
        }
    )
    store.write_stations("net", sites, obs, provenance=PROV, synthetic=True)
    assert api.list_networks() == ["net"]
    st = api.sites("net")
    assert list(st["site_id"]) == ["A", "B"] and list(st["name"]) == ["Alpha", "Beta"]
    assert st["synthetic"].all()
    a = api.site_observations("net", "A")
    assert list(a["LE"]) == [1.0, 2.0] and set(a["site_id"]) == {"A"}
    with pytest.raises(InputError, match="no site 'C'"):
        api.site_observations("net", "C")
    with pytest.raises(InputError, match="unknown station network 'x'; known networks: net"):
        api.sites("x")


def test_one_catalog_object_per_data_directory_owns_its_caches(demo_world, tmp_path, monkeypatch):
    """The context object: two data directories read side by side, each through its own Catalog."""
    from catalog import api as catalog_api

    empty = tmp_path / "empty"
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(demo_world))
    demo = catalog_api.catalog()
    assert demo is catalog_api.catalog(demo_world) and demo.data_dir == demo_world.resolve()
    other = catalog_api.catalog(empty)
    assert other is not demo and other.list_products() == [] and demo.list_products()
    first = demo.open_product("ssm_global_demo")
    again = catalog_api.open_product("ssm_global_demo")  # the module's function: the same object
    assert first is not again and first["ssm"].data is again["ssm"].data  # one opened store, shared
    assert demo.sites("fluxnet_demo").equals(catalog_api.sites("fluxnet_demo"))
