"""Where the catalog keeps a product's or network's current version, for tests that open the Zarr
and Parquet files directly (an independent check of what the API returns)."""

from __future__ import annotations

from pathlib import Path

from catalog import commit


def product_dir(data_dir: Path, name: str) -> Path:
    """``<data_dir>/products/<name>/v<k>``: the version ``catalog.yaml`` names."""
    found = commit.current_store_dir(Path(data_dir), "products", name)
    assert found is not None, f"the catalog in {data_dir} does not list product {name!r}"
    return found


def level_path(data_dir: Path, name: str, level: int = 0) -> Path:
    return product_dir(data_dir, name) / "levels" / f"{level}.zarr"


def network_dir(data_dir: Path, network: str) -> Path:
    """``<data_dir>/stations/<network>/v<k>``: the version ``catalog.yaml`` names."""
    found = commit.current_store_dir(Path(data_dir), "stations", network)
    assert found is not None, f"the catalog in {data_dir} does not list network {network!r}"
    return found
