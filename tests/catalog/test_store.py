"""Product and station stores: real Zarr and Dask, pyramids, atomicity, idempotence, append."""

from __future__ import annotations

import hashlib
import json
import math
import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from catalog import api, chunking, intake_catalog, store
from catalog.errors import InputError, StoreConflictError
from tests.catalog.conftest import failing_dataset, grid_dataset
from tests.catalog.test_pyramid import block_nanmean

PROV = {"reader": "test", "options": {}}


def snapshot(root):
    """{relative path: bytes} of every file below ``root``."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def leftovers(data_dir):
    return [p.name for sub in ("products", "stations") if (data_dir / sub).is_dir()
            for p in (data_dir / sub).iterdir() if p.name.startswith(".")]  # fmt: skip


def open_level(data_dir, name, k):
    return xr.open_zarr(api.store_dir(name) / "levels" / f"{k}.zarr", consolidated=False)


def test_write_product_builds_pyramid_with_block_means(data_dir):
    ds = grid_dataset(n_time=3, n_lat=9, n_lon=2100, res=0.01, nan_fraction=0.3, chunks=(1, 9, 700))
    raw = ds.ssm.values
    info = store.write_product(ds, "sm", provenance=PROV, synthetic=True)

    assert [(lv["n_lat"], lv["n_lon"]) for lv in info.levels] == [(9, 2100), (5, 1050), (3, 525)]
    for k, lev in enumerate(info.levels):
        level = open_level(data_dir, "sm", k)
        assert level.ssm.dims == ("time", "lat", "lon")
        assert level.ssm.shape == (3, lev["n_lat"], lev["n_lon"])
        assert float(level.lat[0]) > float(level.lat[-1])
    l0, l1 = open_level(data_dir, "sm", 0), open_level(data_dir, "sm", 1)
    np.testing.assert_array_equal(l0.ssm.values, raw)
    rng = np.random.default_rng(5)
    for _ in range(25):
        t, i, j = int(rng.integers(3)), int(rng.integers(5)), int(rng.integers(1050))
        expected = block_nanmean(raw[t], i, j)
        got = float(l1.ssm[t, i, j])
        assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, rel=1e-6)
    # level 2 = 2x2 mean of level 1 as stored
    l1v, l2 = l1.ssm.values, open_level(data_dir, "sm", 2)
    assert float(l2.ssm[1, 1, 100]) == pytest.approx(block_nanmean(l1v[1], 1, 100), rel=1e-6, nan_ok=True)
    assert info.bbox == pytest.approx((-105.0, 49.91, -84.0, 50.0))
    assert info.resolution == pytest.approx(0.01)
    assert leftovers(data_dir) == []


def test_store_carries_cf_attributes_and_provenance(data_dir):
    ds = grid_dataset(lat_ascending=True)
    prov = {"sources": [{"path": "/x/a.tif", "sha256": "ab" * 32}], "reader": "r", "reader_version": "1"}
    store.write_product(ds, "sm", provenance=prov, synthetic=False)
    l0 = open_level(data_dir, "sm", 0)
    assert float(l0.lat[0]) > float(l0.lat[1])  # flipped to north first
    np.testing.assert_array_equal(l0.ssm.values, ds.ssm.values[:, ::-1, :])
    assert l0.ssm.attrs["units"] == "m3 m-3"
    assert l0.ssm.attrs["standard_name"] == "volume_fraction_of_condensed_water_in_soil"
    assert l0.ssm.attrs["long_name"]
    assert l0.lat.attrs["units"] == "degrees_north"
    assert json.loads(l0.attrs["provenance"])["sources"][0]["sha256"] == "ab" * 32
    meta = json.loads((api.store_dir("sm") / "product.json").read_text())
    assert meta["info"]["provenance"] == prov
    assert meta["info"]["synthetic"] is False
    assert meta["info"]["chunking"]["map"] == list(store.map_chunks(3, 6, 10))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda ds: ds.rename({"lat": "y"}), "missing dimension 'lat'"),
        (lambda ds: ds.assign_coords(lon=np.r_[ds.lon.values[:-1], 1000.0]), "not a regular grid"),
        (lambda ds: ds.assign(foo=ds.ssm.assign_attrs(units=None)), "'foo' has no units"),
        (lambda ds: ds.isel(time=[0, 0]), "duplicate time"),
    ],
)
def test_bad_datasets_raise_input_error_and_write_nothing(data_dir, mutate, message):
    with pytest.raises(InputError, match=message):
        store.write_product(mutate(grid_dataset()), "bad", provenance=PROV, synthetic=True)
    assert not (data_dir / "products" / "bad").exists()
    assert not (data_dir / "catalog.yaml").exists()


def test_bad_name_and_mode(data_dir):
    with pytest.raises(InputError, match="bad product name"):
        store.write_product(grid_dataset(), "Bad/Name", provenance=PROV, synthetic=True)
    with pytest.raises(InputError, match="bad write mode"):
        store.write_product(grid_dataset(), "ok", provenance=PROV, synthetic=True, mode="upsert")


def test_failed_replace_leaves_old_store_and_catalog_untouched(data_dir):
    store.write_product(grid_dataset(seed=1), "sm", provenance=PROV, synthetic=True)
    before_store = snapshot(data_dir / "products" / "sm")
    before_catalog = (data_dir / "catalog.yaml").read_bytes()
    bad = failing_dataset(grid_dataset(seed=2), fail_at_time=2)
    with pytest.raises(RuntimeError, match="simulated read failure"):
        store.write_product(bad, "sm", provenance={"reader": "other"}, synthetic=True, mode="replace")
    assert snapshot(data_dir / "products" / "sm") == before_store
    assert (data_dir / "catalog.yaml").read_bytes() == before_catalog
    assert leftovers(data_dir) == []


def test_failed_first_write_registers_nothing(data_dir):
    with pytest.raises(RuntimeError, match="simulated"):
        store.write_product(failing_dataset(grid_dataset(), 1), "sm", provenance=PROV, synthetic=True)
    assert not (data_dir / "products" / "sm").exists()
    assert list(intake_catalog.load(data_dir).entries) == []  # an empty catalog, made at the first write
    assert leftovers(data_dir) == []


def test_failed_catalog_update_puts_old_store_back(data_dir, monkeypatch):
    store.write_product(grid_dataset(seed=1), "sm", provenance=PROV, synthetic=True)
    before_store = snapshot(data_dir / "products" / "sm")
    before_catalog = (data_dir / "catalog.yaml").read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(intake_catalog, "set_entries", broken)
    with pytest.raises(OSError, match="disk full"):
        store.write_product(grid_dataset(seed=2), "sm", provenance=PROV, synthetic=True, mode="replace")
    assert snapshot(data_dir / "products" / "sm") == before_store
    assert (data_dir / "catalog.yaml").read_bytes() == before_catalog
    assert leftovers(data_dir) == []


def test_failed_append_leaves_old_store_untouched(data_dir):
    store.write_product(grid_dataset(n_time=3), "sm", provenance=PROV, synthetic=True)
    before_store = snapshot(data_dir / "products" / "sm")
    before_catalog = (data_dir / "catalog.yaml").read_bytes()
    later = failing_dataset(grid_dataset(n_time=3, start="2018-07-04", seed=4), fail_at_time=1)
    with pytest.raises(RuntimeError, match="simulated"):
        store.write_product(later, "sm", provenance={"reader": "x"}, synthetic=True, mode="append")
    assert snapshot(data_dir / "products" / "sm") == before_store
    assert (data_dir / "catalog.yaml").read_bytes() == before_catalog
    assert leftovers(data_dir) == []


def test_reingest_same_content_changes_nothing(data_dir):
    info = store.write_product(grid_dataset(), "sm", provenance=PROV, synthetic=True)
    before = snapshot(data_dir)
    again = store.write_product(grid_dataset(), "sm", provenance=PROV, synthetic=True)
    assert again.store_id == info.store_id
    assert snapshot(data_dir) == before
    with pytest.raises(StoreConflictError, match="already exists"):
        store.write_product(grid_dataset(seed=9), "sm", provenance=PROV, synthetic=True)
    assert snapshot(data_dir) == before


def test_reingest_same_sources_is_detected_by_checksum_without_writing(data_dir, tmp_path):
    src = tmp_path / "input.bin"
    src.write_bytes(b"some input file")
    prov = store.source_provenance([src], reader="test.reader", options={"a": 1})
    assert prov["sources"][0]["sha256"] == hashlib.sha256(b"some input file").hexdigest()
    info = store.write_product(grid_dataset(), "sm", provenance=prov, synthetic=True)
    before = snapshot(data_dir)
    # different data but the same recorded input: the digest says nothing to do, nothing is read
    again = store.write_product(
        failing_dataset(grid_dataset(seed=7), 0), "sm", provenance=prov, synthetic=True
    )
    assert again.store_id == info.store_id
    assert snapshot(data_dir) == before


def test_append_adds_days_and_pyramid(data_dir):
    first = grid_dataset(n_time=3, n_lat=6, n_lon=2050, res=0.01, seed=1)
    later = grid_dataset(n_time=4, n_lat=6, n_lon=2050, res=0.01, seed=2, start="2018-07-04")
    store.write_product(first, "sm", provenance=PROV, synthetic=True)
    info = store.write_product(later, "sm", provenance={"reader": "b"}, synthetic=True, mode="append")
    assert (info.n_time, info.time_start, info.time_end) == (7, "2018-07-01", "2018-07-07")
    assert info.provenance["appended"] == [{"reader": "b"}]
    l0, l1 = open_level(data_dir, "sm", 0), open_level(data_dir, "sm", 1)
    np.testing.assert_array_equal(l0.ssm.values, np.concatenate([first.ssm.values, later.ssm.values]))
    assert l1.sizes["time"] == 7
    raw = later.ssm.values
    for t, i, j in [(0, 0, 0), (2, 1, 500), (3, 2, 1024)]:
        assert float(l1.ssm[3 + t, i, j]) == pytest.approx(block_nanmean(raw[t], i, j), rel=1e-6, nan_ok=True)
    assert leftovers(data_dir) == []


def test_append_overlap_and_grid_errors(data_dir):
    store.write_product(grid_dataset(n_time=3), "sm", provenance=PROV, synthetic=True)
    before = snapshot(data_dir)
    overlapping = grid_dataset(n_time=3, start="2018-07-03")
    with pytest.raises(StoreConflictError, match=r"1 date\(s\) already stored \(2018-07-03"):
        store.write_product(overlapping, "sm", provenance={"r": 1}, synthetic=True, mode="append")
    other_grid = grid_dataset(n_time=2, start="2018-07-10", res=0.25)
    with pytest.raises(InputError, match="differs from the stored"):
        store.write_product(other_grid, "sm", provenance={"r": 2}, synthetic=True, mode="append")
    assert snapshot(data_dir) == before


def test_series_copy_for_large_levels_follows_appends(data_dir, monkeypatch):
    monkeypatch.setattr(chunking, "SERIES_MIN_PIXELS", 50)
    first, later = (
        grid_dataset(n_time=5, n_lat=8, n_lon=12),
        grid_dataset(n_time=3, n_lat=8, n_lon=12, start="2018-07-06", seed=8),
    )
    info = store.write_product(first, "sm", provenance=PROV, synthetic=True)
    assert info.has_series
    path = api.store_dir("sm") / "series.zarr"
    series = xr.open_zarr(path, consolidated=False)
    assert series.ssm.encoding["chunks"] == (5, 8, 12)
    np.testing.assert_array_equal(series.ssm.values, first.ssm.values)
    store.write_product(later, "sm", provenance={"r": 2}, synthetic=True, mode="append")
    series = xr.open_zarr(api.store_dir("sm") / "series.zarr", consolidated=False)
    assert series.ssm.encoding["chunks"] == (8, 8, 12)
    expected = np.concatenate([first.ssm.values, later.ssm.values])
    np.testing.assert_array_equal(series.ssm.values, expected)
    assert list(series.time.values) == list(np.concatenate([first.time.values, later.time.values]))


def test_single_day_product_gets_series_copy_when_it_grows(data_dir, monkeypatch):
    monkeypatch.setattr(chunking, "SERIES_MIN_PIXELS", 50)
    first, later = (
        grid_dataset(n_time=1, n_lat=8, n_lon=12),
        grid_dataset(n_time=2, n_lat=8, n_lon=12, start="2018-07-02", seed=8),
    )
    assert not store.write_product(first, "sm", provenance=PROV, synthetic=True).has_series
    assert store.write_product(later, "sm", provenance={"r": 2}, synthetic=True, mode="append").has_series
    series = xr.open_zarr(api.store_dir("sm") / "series.zarr", consolidated=False)
    np.testing.assert_array_equal(series.ssm.values, np.concatenate([first.ssm.values, later.ssm.values]))


def test_stale_temporary_dirs_of_dead_processes_are_removed(data_dir):
    stale = data_dir / "products" / f".tmp-sm-999999999-{'0' * 32}"
    stale.mkdir(parents=True)
    store.write_product(grid_dataset(), "other", provenance=PROV, synthetic=True)
    assert not stale.exists()


def stations():
    sites = pd.DataFrame(
        {"site_id": ["US-A", "US-B"], "lat": [36.6, 40.0], "lon": [-97.5, -100.0], "igbp": ["GRA", "CRO"]}
    )
    obs = pd.DataFrame(
        {
            "site_id": ["US-A", "US-A", "US-B"],
            "time": pd.to_datetime(["2018-01-02", "2018-01-01", "2018-03-01"]),
            "LE": [10.0, np.nan, 30.0],
        }
    )
    return sites, obs


def test_write_stations_parquet_and_catalog(data_dir):
    sites, obs = stations()
    meta = store.write_stations("towers", sites, obs, provenance=PROV, synthetic=False)
    assert meta["n_sites"] == 2 and meta["n_observations"] == 3
    st = pd.read_parquet(api.network_dir("towers") / "sites.parquet")
    assert list(st.columns[:9]) == list(store.SITE_COLUMNS)
    a = st.set_index("site_id").loc["US-A"]
    assert (a["start"], a["end"]) == (pd.Timestamp("2018-01-01"), pd.Timestamp("2018-01-02"))
    assert a["network"] == "towers" and not a["synthetic"]
    ob = pd.read_parquet(api.network_dir("towers") / "observations.parquet")
    assert ob["time"].tolist()[:2] == [pd.Timestamp("2018-01-01"), pd.Timestamp("2018-01-02")]
    cat = intake_catalog.load(data_dir)
    assert {"towers.sites", "towers.observations"} <= set(cat.entries)


def test_write_stations_bad_input_and_create_conflict(data_dir):
    sites, obs = stations()
    with pytest.raises(InputError, match="lacks column 'lat'"):
        store.write_stations("t", sites.drop(columns="lat"), obs, provenance=PROV, synthetic=True)
    with pytest.raises(InputError, match="missing from the site table"):
        store.write_stations("t", sites.iloc[:1], obs, provenance=PROV, synthetic=True)
    assert not (data_dir / "stations" / "t").exists()
    store.write_stations("t", sites, obs, provenance=PROV, synthetic=True)
    with pytest.raises(StoreConflictError, match="already exists"):
        store.write_stations("t", sites, obs.iloc[:2], provenance={"r": 2}, synthetic=True, mode="create")
    assert os.listdir(data_dir / "stations") == ["t"]


def test_series_copy_appends_into_partial_last_chunk(data_dir, monkeypatch):
    monkeypatch.setattr(chunking, "SERIES_MIN_PIXELS", 50)
    monkeypatch.setattr(chunking, "SERIES_CHUNK", (4, 64, 64))
    first = grid_dataset(n_time=5, n_lat=8, n_lon=12)
    later = grid_dataset(n_time=6, n_lat=8, n_lon=12, start="2018-07-06", seed=8)
    store.write_product(first, "sm", provenance=PROV, synthetic=True)
    before = (api.store_dir("sm") / "series.zarr" / "ssm" / "c" / "0" / "0" / "0").read_bytes()
    info = store.write_product(later, "sm", provenance={"r": 2}, synthetic=True, mode="append")
    assert info.chunking["series"] == [4, 8, 12]
    path = api.store_dir("sm") / "series.zarr"
    series = xr.open_zarr(path, consolidated=False)
    assert series.ssm.encoding["chunks"] == (4, 8, 12)
    np.testing.assert_array_equal(series.ssm.values, np.concatenate([first.ssm.values, later.ssm.values]))
    assert (path / "ssm" / "c" / "0" / "0" / "0").read_bytes() == before  # full chunks are not rewritten
