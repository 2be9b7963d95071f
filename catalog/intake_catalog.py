"""The intake 2 catalog file ``<data_dir>/catalog.yaml``: entry naming, updates and loading.

Entries (keys of ``intake.from_yaml_file(path)``):

* ``<product>`` — pyramid level 0 (full resolution), ``XArrayDatasetReader`` over a Zarr store;
  its metadata holds the whole product description (``ProductInfo`` fields, ``entry_kind: product``);
* ``<product>.level<k>`` — pyramid level ``k >= 1`` (metadata: product, level, shape, resolution);
* ``<product>.series`` — the time-chunked copy of level 0 used for whole-record pixel series, when
  the product has one;
* ``<network>.sites`` and ``<network>.observations`` — station tables (``PandasParquet``).

Every entry's metadata carries ``product``/``network``, ``entry_kind`` and ``synthetic``. Local paths
are written as ``{CATALOG_DIR}/…`` so the data folder can be moved as a whole; any fsspec URL
(``s3://…``, ``https://…``) is kept as given. Updates are read-modify-write under an exclusive file
lock and land atomically and durably (temporary file in the same directory, fsync, ``os.replace``,
fsync of the directory); see ``catalog.commit`` for how stores and the catalog change together.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import intake
import intake.readers as ir
import yaml

from catalog import faults

CATALOG_FILE = "catalog.yaml"
LOCK_FILE = ".catalog.lock"
_LOAD_PARAMS = ("CATALOG_DIR", "CATALOG_PATH", "STORAGE_OPTIONS")


def catalog_path(data_dir: Path) -> Path:
    return Path(data_dir) / CATALOG_FILE


def level_entry(product: str, level: int) -> str:
    """Catalog key of a pyramid level (``product`` itself for level 0)."""
    return product if level == 0 else f"{product}.level{level}"


def series_entry(product: str) -> str:
    return f"{product}.series"


def station_entry(network: str, table: str) -> str:
    """Catalog key of a station table: ``table`` is ``"sites"`` or ``"observations"``."""
    return f"{network}.{table}"


def catalog_url(data_dir: Path, path: Path | str) -> str:
    """``{CATALOG_DIR}/relative`` for a path inside the data directory; other URLs unchanged."""
    s = str(path)
    if "://" in s:
        return s
    rel = os.path.relpath(Path(path).resolve(), Path(data_dir).resolve())
    if rel.startswith(".."):
        return str(Path(path).resolve())
    return "{CATALOG_DIR}/" + Path(rel).as_posix()


@contextlib.contextmanager
def locked(data_dir: Path) -> Iterator[None]:
    """Exclusive lock serialising catalog updates between processes."""
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(data_dir) / LOCK_FILE, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load(data_dir: Path) -> intake.Catalog:
    """The catalog of ``data_dir`` (an empty one when the file does not exist yet)."""
    path = catalog_path(data_dir)
    if not path.exists():
        return intake.Catalog(metadata={"description": "FluxLens data catalog"})
    return intake.from_yaml_file(str(path))


def write_empty(data_dir: Path) -> None:
    """Write a catalog with no entries (the caller holds :func:`locked`)."""
    _save(load(data_dir), Path(data_dir))


def zarr_reader(url: str, metadata: dict, chunks: dict | None = None) -> ir.BaseReader:
    """Lazy xarray reader of a Zarr store; ``chunks`` are the dask chunks (default: the stored ones)."""
    return ir.readers.XArrayDatasetReader(
        ir.datatypes.Zarr(url=url), engine="zarr", chunks=chunks or {}, consolidated=False, metadata=metadata
    )


def parquet_reader(url: str, metadata: dict) -> ir.BaseReader:
    return ir.readers.PandasParquet(ir.datatypes.Parquet(url=url), metadata=metadata)


def _drop_owned(cat: intake.Catalog, key: str, value: str) -> None:
    """Remove every entry whose metadata ``key`` equals ``value``, with its data description."""
    for name in list(cat.entries):
        if cat.entries[name].metadata.get(key) == value:
            cat.delete(name)


def _save(cat: intake.Catalog, data_dir: Path) -> None:
    d = cat.to_dict()
    # data descriptions no entry refers to any more (a product's store moved to a new version)
    refs = yaml.safe_dump(d.get("entries", {}))
    d["data"] = {k: v for k, v in d.get("data", {}).items() if f"{{data({k})}}" in refs}
    for p in _LOAD_PARAMS:
        d.get("user_parameters", {}).pop(p, None)
    fd, tmp = tempfile.mkstemp(prefix=".catalog-", suffix=".yaml.tmp", dir=data_dir)
    try:
        with os.fdopen(fd, "w") as fh:
            yaml.safe_dump(d, fh, sort_keys=False)
            fh.flush()
            os.fsync(fh.fileno())
        faults.point("catalog-written")
        os.replace(tmp, catalog_path(data_dir))
        _fsync_dir(Path(data_dir))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def set_entries(data_dir: Path, owner_key: str, owner: str, entries: dict[str, ir.BaseReader]) -> None:
    """Replace all entries owned by ``owner`` (metadata ``owner_key``) with ``entries``; atomic.

    The caller holds :func:`locked`. ``entries`` empty removes the owner from the catalog.
    """
    cat = load(data_dir)
    _drop_owned(cat, owner_key, owner)
    for name, reader in entries.items():
        cat[name] = reader
    _save(cat, data_dir)
