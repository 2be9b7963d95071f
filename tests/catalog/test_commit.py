"""Crash safety: a real process SIGKILLed at every named step of a commit leaves a catalog that opens,
names complete stores that agree with it, loses no product, and the next write cleans up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from catalog import api, commit, intake_catalog, store
from catalog.errors import InputError, StoreConflictError
from tests.catalog.conftest import grid_dataset

REPO = Path(__file__).resolve().parents[2]
OLD = {"seed": 1, "n_time": 3}
NEW = {"seed": 2, "n_time": 4}  # another length, so old and new are told apart by shape too
AFTER_COMMIT = {"committed", "cleaned"}

WRITER = textwrap.dedent(
    """
    import json, sys
    sys.path[:0] = [{repo!r}]
    from tests.catalog.conftest import grid_dataset
    from catalog import store
    action, kw = sys.argv[1], json.loads(sys.argv[2])
    if action == "product":
        mode = kw.pop("mode")
        store.write_product(grid_dataset(**kw), "sm", provenance={{"seed": kw["seed"]}}, synthetic=True,
                            mode=mode)
    elif action == "append":
        store.write_product(grid_dataset(n_time=2, start="2018-07-10", seed=9), "sm",
                            provenance={{"append": 1}}, synthetic=True, mode="append")
    elif action == "delete":
        store.delete_product("sm")
    elif action == "stations":
        import pandas as pd
        sites = pd.DataFrame({{"site_id": ["a"], "lat": [1.0], "lon": [2.0]}})
        obs = pd.DataFrame({{"site_id": ["a"] * kw["n"], "time": pd.date_range("2018-01-01", periods=kw["n"]),
                            "LE": [1.0] * kw["n"]}})
        store.write_stations("net", sites, obs, provenance={{"n": kw["n"]}}, synthetic=True)
    """
).format(repo=str(REPO))


def run_writer(data_dir: Path, step: str | None, action: str, **kw) -> int:
    env = {**os.environ, "FLUXLENS_DATA_DIR": str(data_dir)}
    env.pop("FLUXLENS_FAULT_STEP", None)
    if step:
        env["FLUXLENS_FAULT_STEP"] = step
    proc = subprocess.run(
        [sys.executable, "-c", WRITER, action, json.dumps(kw)], env=env, capture_output=True, text=True
    )
    assert proc.returncode in (0, -signal.SIGKILL), proc.stderr
    return proc.returncode


def values(name: str) -> np.ndarray:
    return api.open_product(name).ssm.values


def check_consistent(data_dir: Path) -> None:
    """The catalog opens, every listed product's store exists, is complete and agrees with it."""
    cat = intake_catalog.load(data_dir)
    named = commit.named_store_dirs(data_dir, "products")
    for info in api.list_products():
        folder = named[info.name]
        assert folder.is_dir(), f"{info.name}: the catalog names {folder}, which is missing"
        meta = json.loads((folder / "product.json").read_text())
        assert meta["info"]["store_id"] == info.store_id
        for lev in info.levels:
            ds = cat[intake_catalog.level_entry(info.name, lev["level"])].read()
            assert ds.ssm.shape == (info.n_time, lev["n_lat"], lev["n_lon"])
            assert ds.ssm.values.size  # every chunk readable


def strays(data_dir: Path) -> list[str]:
    """Anything in products/ and stations/ besides one named version per owner."""
    out = []
    for area in ("products", "stations"):
        named = commit.named_store_dirs(data_dir, area)
        parent = data_dir / area
        for owner in parent.iterdir() if parent.is_dir() else ():
            if owner.name not in named:
                out.append(f"{area}/{owner.name}")
                continue
            out += [f"{area}/{owner.name}/{p.name}" for p in owner.iterdir() if p != named[owner.name]]
    return out


@pytest.fixture
def world(data_dir):
    """An old 'sm' and an unrelated 'other' product, written by a real process."""
    assert run_writer(data_dir, None, "product", mode="create", **OLD) == 0
    store.write_product(grid_dataset(seed=5), "other", provenance={"other": 1}, synthetic=True)
    return {"old": grid_dataset(**OLD).ssm.values, "new": grid_dataset(**NEW).ssm.values,
            "other": grid_dataset(seed=5).ssm.values}  # fmt: skip


@pytest.mark.parametrize("step", commit.STEPS)
def test_replace_killed_at_each_step_keeps_old_or_new(world, data_dir, step):
    assert run_writer(data_dir, step, "product", mode="replace", **NEW) == -signal.SIGKILL
    check_consistent(data_dir)
    want = world["new"] if step in AFTER_COMMIT else world["old"]
    np.testing.assert_array_equal(values("sm"), want)
    np.testing.assert_array_equal(values("other"), world["other"])
    # running the same command again reaches the new product (idempotence reads what the catalog says)
    assert run_writer(data_dir, None, "product", mode="replace", **NEW) == 0
    np.testing.assert_array_equal(values("sm"), world["new"])
    check_consistent(data_dir)
    assert strays(data_dir) == []


@pytest.mark.parametrize("step", ["built", "moved", "catalog-written", "committed"])
def test_create_killed_leaves_no_half_product(data_dir, step):
    assert run_writer(data_dir, step, "product", mode="create", **OLD) == -signal.SIGKILL
    names = [p.name for p in api.list_products()]
    assert names == (["sm"] if step in AFTER_COMMIT else [])
    check_consistent(data_dir)
    store.write_product(grid_dataset(seed=5), "other", provenance={"other": 1}, synthetic=True)
    assert strays(data_dir) == []


@pytest.mark.parametrize("step", ["moved", "committed"])
def test_append_killed(world, data_dir, step):
    assert run_writer(data_dir, step, "append") == -signal.SIGKILL
    check_consistent(data_dir)
    assert api.product_info("sm").n_time == (5 if step in AFTER_COMMIT else 3)
    np.testing.assert_array_equal(values("sm")[:3], world["old"])
    store.write_product(grid_dataset(seed=6), "third", provenance={"t": 1}, synthetic=True)
    assert strays(data_dir) == []


def test_delete_killed_after_commit_is_cleaned_up(world, data_dir):
    assert run_writer(data_dir, "committed", "delete") == -signal.SIGKILL
    assert [p.name for p in api.list_products()] == ["other"]
    assert (data_dir / "products" / "sm").exists()  # the folder outlived the kill...
    store.write_product(grid_dataset(seed=6), "third", provenance={"t": 1}, synthetic=True)
    assert strays(data_dir) == []  # ...and the next write removed it
    np.testing.assert_array_equal(values("other"), world["other"])


@pytest.mark.parametrize("step", ["moved", "catalog-written", "committed"])
def test_station_replace_killed(data_dir, step):
    assert run_writer(data_dir, None, "stations", n=2) == 0
    assert run_writer(data_dir, step, "stations", n=3) == -signal.SIGKILL
    n = len(api.site_observations("net", "a"))
    assert n == (3 if step in AFTER_COMMIT else 2)
    assert api.network_dir("net").is_dir()
    assert run_writer(data_dir, None, "stations", n=3) == 0
    assert len(api.site_observations("net", "a")) == 3
    assert strays(data_dir) == []


def test_legacy_flat_store_is_read_and_replaced(data_dir):
    """A product written before versions (products/<name>/levels/…) opens, and its next write moves
    it to v1 and removes the flat files."""
    store.write_product(grid_dataset(**OLD), "sm", provenance={"a": 1}, synthetic=True)
    v1 = data_dir / "products" / "sm" / "v1"
    for p in v1.iterdir():  # rebuild the pre-version layout by hand
        p.rename(data_dir / "products" / "sm" / p.name)
    v1.rmdir()
    text = (data_dir / "catalog.yaml").read_text().replace("products/sm/v1/", "products/sm/")
    text = text.replace("store_dir: products/sm/v1", "store_dir: products/sm")
    (data_dir / "catalog.yaml").write_text(text)
    np.testing.assert_array_equal(values("sm"), grid_dataset(**OLD).ssm.values)
    store.write_product(grid_dataset(**NEW), "sm", provenance={"b": 1}, synthetic=True, mode="replace")
    assert sorted(p.name for p in (data_dir / "products" / "sm").iterdir()) == ["v1"]
    np.testing.assert_array_equal(values("sm"), grid_dataset(**NEW).ssm.values)


def test_no_catalog_file_means_nothing_is_removed(data_dir):
    store.write_product(grid_dataset(**OLD), "sm", provenance={"a": 1}, synthetic=True)
    (data_dir / "catalog.yaml").rename(data_dir / "catalog.yaml.saved")
    with intake_catalog.locked(data_dir):
        assert commit.recover(data_dir, "products") == []
    with pytest.raises(InputError, match="catalog.yaml is missing but the data directory holds stores"):
        store.write_product(grid_dataset(seed=3), "x", provenance={"b": 1}, synthetic=True)
    assert sorted(p.name for p in (data_dir / "products").iterdir()) == ["sm"]
    assert (data_dir / "products" / "sm" / "v1" / "product.json").is_file()


def test_unreadable_catalog_stops_writes_and_removes_nothing(data_dir):
    store.write_product(grid_dataset(**OLD), "sm", provenance={"a": 1}, synthetic=True)
    before = sorted(p.relative_to(data_dir) for p in (data_dir / "products").rglob("*"))
    (data_dir / "catalog.yaml").write_text("entries: [this is: not: a catalog\n")
    with pytest.raises(Exception):  # noqa: B017 - whichever error the YAML parser gives
        store.write_product(grid_dataset(seed=3), "x", provenance={"b": 1}, synthetic=True)
    assert sorted(p.relative_to(data_dir) for p in (data_dir / "products").rglob("*")) == before


def test_replace_based_on_a_version_that_changed_is_refused(data_dir):
    store.write_product(grid_dataset(**OLD), "sm", provenance={"a": 1}, synthetic=True)
    base = api.store_dir("sm")
    store.write_product(grid_dataset(**NEW), "sm", provenance={"b": 1}, synthetic=True, mode="replace")
    tmp = commit.temp_dir(data_dir / "products", "sm")
    tmp.mkdir()
    with pytest.raises(StoreConflictError, match="changed by another write"):
        commit.commit(data_dir, "products", "sm", tmp, lambda d: None, base=base)
    np.testing.assert_array_equal(values("sm"), grid_dataset(**NEW).ssm.values)


def test_append_to_a_missing_product_is_an_error(data_dir):
    with pytest.raises(InputError, match="no such product"):
        store.write_product(grid_dataset(), "nothere", provenance={"a": 1}, synthetic=True, mode="append")
    assert not (data_dir / "products" / "nothere").exists()


@pytest.mark.parametrize("bad", ["nl\n", "a" * 101, "Upper", "sp ace", "-lead", "dot.name", "ü", ""])
def test_bad_names_are_refused_before_anything_is_written(data_dir, bad):
    with pytest.raises(InputError, match="name"):
        store.write_product(grid_dataset(), bad, provenance={"a": 1}, synthetic=True)
    assert not (data_dir / "products").exists() or list((data_dir / "products").iterdir()) == []


def test_longest_name_is_accepted(data_dir):
    name = "a" * 100
    store.write_product(grid_dataset(), name, provenance={"a": 1}, synthetic=True)
    assert api.product_info(name).name == name
