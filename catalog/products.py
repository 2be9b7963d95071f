"""Gridded products: normalise a dataset, write its pyramid and series copy, commit it.

A product ``<data_dir>/products/<name>/v<k>/`` (the version the catalog names, see
``catalog.commit``)::

    levels/0.zarr, levels/1.zarr, …   multiscale pyramid (zarr format 3), see ``catalog.pyramid``
    series.zarr                        level 0 again, chunked for whole-record pixel reads
    product.json                       ProductInfo fields + chunking + ingest history

Chunk shapes: ``catalog.chunking``. Values outside their valid range (``catalog.variables``) fail
the write or are masked (``catalog.plausibility``), checked in the pass that writes level 0.

Atomicity: a write builds the new version in ``products/.tmp-<name>-<pid>-<uuid>/`` (same
filesystem) and :func:`catalog.commit.commit` moves it into place and rewrites ``catalog.yaml``;
on any failure the catalog and the stored versions are unchanged and the temporary folder is
removed (left-overs of killed processes at the next write). An append builds the new version as a
hard-link clone of the current one (zarr writes chunk files by write-to-temporary-and-rename, so the
current version's files are never modified) and commits the same way.

Idempotence: an ingest whose input digest (sha256 of the source files' checksums, reader, version
and options) is recorded in the version the catalog names changes nothing. Without source
checksums, the content digest (sha256 over level 0's compressed chunk files) of the new write is
compared with the stored one and an identical store is discarded before the commit.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import xarray as xr
from zarr.codecs import ZstdCodec

from catalog import chunking, commit, intake_catalog, packing, plausibility, pyramid, settings, time_steps
from catalog.api import ProductInfo
from catalog.chunking import (
    COARSEN_READ,
    MAP_READ,
    SERIES_READ,
    SERIES_WRITE,
    WRITE_BLOCK,
    aligned_chunks,
    map_chunks,
    needs_series,
    series_chunks,
)
from catalog.errors import InputError, StoreConflictError
from catalog.names import check_name
from catalog.provenance import content_digest, input_digest, jsonable
from catalog.variables import COORD_ATTRS, VARIABLES

log = logging.getLogger(__name__)

MODES = ("create", "replace", "append")
AREA = "products"
# zstd level of every chunk: level 1 encoded the demo cubes' float32 chunks 1.3-1.8x faster than the
# default 3 (and decoded as fast) for 1-10 % more bytes.
COMPRESSION_LEVEL = 1
# Upper bound of the disk a write needs per byte of float32 level 0: the pyramid (+1/3), the series
# copy (+1) and zstd never making chunks much larger than raw.
DISK_FACTOR = 2.4


def _regular_step(values: np.ndarray, dim: str, name: str) -> float:
    if values.size < 2:
        return float("nan")
    steps = np.diff(values.astype(np.float64))
    step = float(np.median(steps))
    if not np.allclose(steps, step, rtol=1e-4, atol=1e-9 + abs(step) * 1e-4):
        raise InputError(
            f"product {name!r}: {dim} is not a regular grid (steps {steps.min()}..{steps.max()})"
        )
    return step


def normalize(ds: xr.Dataset, name: str) -> xr.Dataset:
    """Check and bring ``ds`` to the product conventions (lazy): dims (time, lat, lon), lat
    descending, lon ascending, daily datetime64[ns] time sorted and unique, float32 variables with
    CF attributes. Bad input → :class:`InputError`."""
    if not isinstance(ds, xr.Dataset):
        raise InputError(f"product {name!r}: expected an xarray.Dataset, got {type(ds).__name__}")
    for dim in ("time", "lat", "lon"):
        if dim not in ds.dims:
            raise InputError(f"product {name!r}: missing dimension {dim!r} (has {tuple(ds.dims)})")
    if not ds.data_vars:
        raise InputError(f"product {name!r}: no data variables")
    ds = ds.drop_encoding()
    bad = [v for v, da_ in ds.data_vars.items() if set(da_.dims) != {"time", "lat", "lon"}]
    if bad:
        raise InputError(f"product {name!r}: variables {bad} do not have dims (time, lat, lon)")
    ds = ds.reset_coords(drop=True)
    if ds.sizes["time"] == 0 or ds.sizes["lat"] == 0 or ds.sizes["lon"] == 0:
        raise InputError(f"product {name!r}: empty dimension in {dict(ds.sizes)}")
    times = pd.DatetimeIndex(ds.time.values)
    if times.has_duplicates:
        raise InputError(
            f"product {name!r}: duplicate time steps {sorted(set(times[times.duplicated()]))[:3]}"
        )
    if not times.is_monotonic_increasing:
        ds = ds.sortby("time")
    if ds.sizes["lat"] > 1 and float(ds.lat[0]) < float(ds.lat[-1]):
        ds = ds.isel(lat=slice(None, None, -1))
    if ds.sizes["lon"] > 1 and float(ds.lon[0]) > float(ds.lon[-1]):
        ds = ds.isel(lon=slice(None, None, -1))
    _regular_step(ds.lat.values, "lat", name)
    _regular_step(ds.lon.values, "lon", name)
    ds = ds.assign_coords(
        time=pd.DatetimeIndex(ds.time.values).astype("datetime64[ns]"),
        lat=ds.lat.astype(np.float64),
        lon=ds.lon.astype(np.float64),
    )
    ds = ds.transpose("time", "lat", "lon")
    for c, attrs in COORD_ATTRS.items():
        ds[c].attrs = {**attrs}
    for v in list(ds.data_vars):
        attrs = dict(ds[v].attrs)
        var = VARIABLES.get(v)
        units, long_name, std = (var.units, var.long_name, var.standard_name) if var else (None,) * 3
        attrs.setdefault("units", units)
        attrs.setdefault("long_name", long_name or v)
        if std and "standard_name" not in attrs:
            attrs["standard_name"] = std
        if attrs.get("units") is None:
            raise InputError(f"product {name!r}: variable {v!r} has no units")
        for k in ("_FillValue", "missing_value", "scale_factor", "add_offset"):
            attrs.pop(k, None)
        ds[v] = ds[v].astype(np.float32)
        ds[v].attrs = {k: a for k, a in attrs.items() if a is not None}
    return ds


def _time_step(ds: xr.Dataset) -> str:
    if ds.attrs.get("time_step") in ("day", "month"):
        return ds.attrs["time_step"]
    return time_steps.time_step(ds.time.values)


def _kind(ds: xr.Dataset) -> str:
    names = set(ds.data_vars)
    if ds.attrs.get("kind"):
        return str(ds.attrs["kind"])
    if "ssm" in names:
        return "soil_moisture"
    if names & {"le", "h", "rn", "g", "ef"}:
        return "flux"
    if names <= {"elevation", "igbp"}:
        return "static"
    return "forcing"


# ---------------------------------------------------------------- chunking


def _encoding(ds: xr.Dataset, chunks: tuple[int, int, int], packed: dict[str, packing.Packing]) -> dict:
    enc = {
        v: {
            "chunks": chunks,
            "compressors": (ZstdCodec(level=COMPRESSION_LEVEL),),
            **(packed[v].encoding() if v in packed else {}),
        }
        for v in ds.data_vars
    }
    enc["time"] = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian", "dtype": "int64"}
    return enc


def _in_process():
    """Where the catalog's writes compute: threads in this process, rechunking by plain tasks. Inside
    a ``dask.distributed`` client (a job on a cluster) Dask would otherwise send the writes to the
    cluster and build rechunks as peer-to-peer shuffles (which fail outside the cluster's workers)."""
    return dask.config.set({"scheduler": "threads", "array.rechunk.method": "tasks"})


def _write_chunked(ds: xr.Dataset, chunks: tuple[int, int, int], block: dict) -> xr.Dataset:
    """``ds`` in dask blocks of whole stored ``chunks`` (about ``block`` in size): zarr then encodes
    the chunks of a block together, which wrote (1, 256, 256) chunks 2.3x faster than one task per
    chunk."""
    return ds.chunk(aligned_chunks(block, chunks))


def _unpacked_attrs(ds: xr.Dataset, packed: dict) -> xr.Dataset:
    """Packed variables without ``valid_min``/``valid_max`` (see ``catalog.packing``)."""
    for v in packed:
        if v in ds.data_vars:
            ds[v].attrs = {k: a for k, a in ds[v].attrs.items() if k not in ("valid_min", "valid_max")}
    return ds


def _write_zarr(
    ds: xr.Dataset, path: Path, chunks: tuple[int, int, int], packed: dict, block: dict = WRITE_BLOCK
) -> None:
    """Write ``ds`` as a new zarr 3 store with the given chunk shape (time chunk may exceed n_time)."""
    ds = _unpacked_attrs(_write_chunked(ds, chunks, block), packed)
    ds.to_zarr(path, mode="w-", zarr_format=3, consolidated=False, encoding=_encoding(ds, chunks, packed))


def _stored_chunks(path: Path) -> tuple[int, int, int]:
    """Chunk shape of the (first) data variable of an existing store."""
    ds = xr.open_zarr(path, consolidated=False)
    return tuple(ds[next(iter(ds.data_vars))].encoding["chunks"])


def _append_zarr(ds: xr.Dataset, path: Path, n_old: int) -> None:
    """Append ``ds`` along time to the store at ``path`` (time length ``n_old``), aligning the dask
    chunks with the stored ones (the first one fills the stored last, partial chunk)."""
    chunks = _stored_chunks(path)
    t = chunks[0]
    first = t - n_old % t if n_old % t else t
    n = ds.sizes["time"]
    tchunks = [min(first, n)]
    while sum(tchunks) < n:
        tchunks.append(min(t, n - sum(tchunks)))
    lat, lon = (aligned_chunks(WRITE_BLOCK, chunks)[d] for d in ("lat", "lon"))
    ds = ds.chunk({"time": tuple(tchunks), "lat": lat, "lon": lon})
    # xarray encodes appended values with the stored variables' encoding (packing included)
    ds.to_zarr(path, mode="a", append_dim="time", zarr_format=3, consolidated=False)


def _open_level(path: Path, chunks: dict | None = None) -> xr.Dataset:
    """A written level, lazily; ``chunks`` (rounded up to whole stored chunks) makes fewer, larger
    tasks."""
    if chunks:
        chunks = aligned_chunks(chunks, _stored_chunks(path))
    return packing.as_float32(xr.open_zarr(path, consolidated=False, chunks=chunks or {})).drop_encoding()


def _hardlink_clone(src: Path, dst: Path) -> None:
    """Copy a directory tree with hard links (files are shared, never modified in place)."""

    def link(s, d):
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, copy_function=link)


# ---------------------------------------------------------------- product.json and catalog entries


def _read_json(path: Path) -> dict | None:
    if not path.exists():
        return None
    return json.loads(path.read_text())


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(jsonable(obj), indent=2))
    tmp.replace(path)


def _product_entries(data_dir: Path, store_dir: Path, info: ProductInfo) -> dict:
    common = {
        "product": info.name,
        "synthetic": info.synthetic,
        "store_id": info.store_id,
        "store_dir": commit.store_dir_text(data_dir, store_dir),
    }
    entries = {}
    for lev in info.levels:
        k = lev["level"]
        url = intake_catalog.catalog_url(data_dir, store_dir / "levels" / f"{k}.zarr")
        if k == 0:
            meta = {**common, "entry_kind": "product", "level": 0, "info": info.to_dict()}
        else:
            meta = {**common, "entry_kind": "product_level", **lev, "variables": sorted(info.variables)}
        entries[intake_catalog.level_entry(info.name, k)] = intake_catalog.zarr_reader(
            url,
            jsonable(meta),
            chunks=aligned_chunks(MAP_READ, map_chunks(info.n_time, lev["n_lat"], lev["n_lon"])),
        )
    if info.has_series:
        url = intake_catalog.catalog_url(data_dir, store_dir / "series.zarr")
        meta = {**common, "entry_kind": "product_series", "level": 0, "chunks": info.chunking["series"]}
        entries[intake_catalog.series_entry(info.name)] = intake_catalog.zarr_reader(url, jsonable(meta))
    return entries


def _registrar(data_dir: Path, info: ProductInfo):
    """``register(store_dir)`` for :func:`catalog.commit.commit`: the product's catalog entries."""

    def register(store_dir: Path) -> None:
        entries = _product_entries(data_dir, store_dir, info)
        intake_catalog.set_entries(data_dir, "product", info.name, entries)

    return register


def stored_product(name: str, data_dir: Path | None = None) -> tuple[Path | None, dict | None]:
    """(store folder, product.json) of the version of ``name`` the catalog names; (None, None) when
    the catalog does not list it."""
    data_dir = settings.data_dir() if data_dir is None else data_dir
    current = commit.current_store_dir(data_dir, AREA, name)
    if current is None:
        return None, None
    existing = _read_json(current / "product.json")
    if existing is None:
        raise InputError(f"product {name!r}: the catalog names {current}, which has no product.json")
    return current, existing


# ---------------------------------------------------------------- writing a product


def _build_info(
    ds: xr.Dataset, name: str, *, title, kind, synthetic, provenance, chunking, store_id
) -> ProductInfo:
    west, north, dlon, dlat = pyramid.grid_edges(ds)
    n_lat, n_lon = ds.sizes["lat"], ds.sizes["lon"]
    levels = [
        {"level": k, "n_lat": la, "n_lon": lo, "resolution": dlon * 2**k, "resolution_lat": dlat * 2**k}
        for k, (la, lo) in enumerate(pyramid.level_shapes(n_lat, n_lon))
    ]
    times = pd.DatetimeIndex(ds.time.values)
    return ProductInfo(
        name=name,
        title=title or ds.attrs.get("title") or name,
        variables={
            v: {k: ds[v].attrs[k] for k in ("units", "long_name", "standard_name") if k in ds[v].attrs}
            for v in ds.data_vars
        },
        resolution=dlon,
        time_start=str(times[0].date()),
        time_end=str(times[-1].date()),
        n_time=len(times),
        time_step=_time_step(ds),
        bbox=tuple(float(f"{v:.10f}") for v in (west, north - n_lat * dlat, west + n_lon * dlon, north)),
        levels=levels,
        synthetic=bool(synthetic),
        provenance=jsonable(provenance),
        kind=kind or _kind(ds),
        chunking=chunking,
        store_id=store_id,
    )


def _with_grid_attrs(ds: xr.Dataset, info_attrs: dict) -> xr.Dataset:
    ds = ds.copy()
    ds.attrs = {k: v for k, v in ds.attrs.items() if isinstance(v, (str, int, float, bool))}
    ds.attrs.update(info_attrs)
    return ds


def _dataset_attrs(info: ProductInfo, level: int) -> dict:
    return {
        "title": info.title,
        "product": info.name,
        "level": level,
        "resolution_lon": info.levels[level]["resolution"],
        "resolution_lat": info.levels[level]["resolution_lat"],
        "time_step": info.time_step,
        "synthetic": int(info.synthetic),
        "provenance": json.dumps(info.provenance, sort_keys=True),
        "Conventions": "CF-1.8",
    }


def _write_pyramid_levels(store_dir: Path, info: ProductInfo, packed: dict, *, start_level: int = 1) -> None:
    """Write levels ``start_level``… each from the previous level as written on disk."""
    for k in range(start_level, len(info.levels)):
        prev = _open_level(store_dir / "levels" / f"{k - 1}.zarr", COARSEN_READ)
        coarse = _with_grid_attrs(pyramid.coarsen_2x2(prev), _dataset_attrs(info, k))
        lev = info.levels[k]
        chunks = map_chunks(info.n_time, lev["n_lat"], lev["n_lon"])
        _write_zarr(coarse, store_dir / "levels" / f"{k}.zarr", chunks, packed)


class _Stage:
    """Logs the wall and CPU time of a write stage."""

    def __init__(self, product: str, what: str):
        self.product, self.what = product, what

    def __enter__(self):
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def __exit__(self, *exc):
        wall, cpu = time.perf_counter() - self.t0, time.process_time() - self.c0
        log.info("product %s: %s in %.1f s (CPU %.1f s)", self.product, self.what, wall, cpu)


def _write_level0(ds: xr.Dataset, path: Path, chunks, packed: dict, out_of_range: str) -> dict[str, int]:
    """Write level 0 and check plausibility in the same pass; returns the masked counts."""
    ds = _write_chunked(ds, chunks, WRITE_BLOCK)
    checked, tasks = plausibility.prepare(ds, out_of_range)
    checked = _unpacked_attrs(checked, packed)
    encoding = _encoding(checked, chunks, packed)
    write = checked.to_zarr(
        path, mode="w-", zarr_format=3, consolidated=False, encoding=encoding, compute=False
    )
    _, results = dask.compute(write, tasks)
    return plausibility.verdict(ds.attrs.get("product", path.parent.parent.name), ds, results, out_of_range)


def _write_new_store(
    ds: xr.Dataset, store_dir: Path, info: ProductInfo, packed: dict, out_of_range: str
) -> dict:
    (store_dir / "levels").mkdir(parents=True)
    n = (info.n_time, info.levels[0]["n_lat"], info.levels[0]["n_lon"])
    with _Stage(info.name, f"level 0 {n}"):
        level0 = _with_grid_attrs(ds, _dataset_attrs(info, 0))
        masked = _write_level0(level0, store_dir / "levels" / "0.zarr", map_chunks(*n), packed, out_of_range)
    with _Stage(info.name, f"{len(info.levels) - 1} coarser levels"):
        _write_pyramid_levels(store_dir, info, packed)
    if info.has_series:
        with _Stage(info.name, "series copy"):
            level0 = _open_level(store_dir / "levels" / "0.zarr", SERIES_READ)
            series = tuple(info.chunking["series"])
            _write_zarr(level0, store_dir / "series.zarr", series, packed, SERIES_WRITE)
    return masked


def _chunking(n_time: int, n_lat: int, n_lon: int) -> dict:
    c = {"map": list(map_chunks(n_time, n_lat, n_lon))}
    if needs_series(n_lat, n_lon, n_time):
        c["series"] = list(series_chunks(n_time, n_lat, n_lon))
    return c


def _history_item(mode: str, provenance: dict, digest: str | None, ds: xr.Dataset) -> dict:
    times = pd.DatetimeIndex(ds.time.values)
    return {
        "mode": mode,
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
        "input_digest": digest,
        "time_start": str(times[0].date()),
        "time_end": str(times[-1].date()),
        "n_time": len(times),
        "provenance": jsonable(provenance),
    }


def _exists_error(name: str) -> StoreConflictError:
    return StoreConflictError(
        f"product {name!r} already exists with different content; "
        "use replace (--replace) or append (--append)"
    )


def _disk_needed(ds: xr.Dataset) -> float:
    return DISK_FACTOR * ds.sizes["time"] * ds.sizes["lat"] * ds.sizes["lon"] * 4 * len(ds.data_vars)


def _with_masked(info: ProductInfo, masked: dict[str, int], out_of_range: str) -> None:
    if out_of_range == "mask":
        info.provenance = {**info.provenance, "masked_out_of_range": masked}


def write_product(
    ds: xr.Dataset,
    name: str,
    *,
    provenance: dict,
    synthetic: bool,
    mode: str = "create",
    title: str | None = None,
    kind: str | None = None,
    out_of_range: str = "fail",
    packed: dict[str, packing.Packing] | None = None,
    data_dir: str | os.PathLike | None = None,
) -> ProductInfo:
    """Write ``ds`` as product ``name`` (pyramid + product.json) and register it in catalog.yaml
    of ``data_dir`` (default: :func:`catalog.settings.data_dir`).

    ``provenance``: free-form dict, by convention ``{"sources": [{"path", "size", "sha256"}],
    "reader", "reader_version", "options"}`` (see :func:`catalog.provenance.source_provenance`); an
    append adds its provenance to ``provenance["appended"]``. ``title``/``kind`` default to
    ``ds.attrs`` or are derived from the variables.

    ``mode``: ``create`` (the name must be new, unless the same input is re-ingested), ``replace``
    (swap the whole product) or ``append`` (add later time steps on the same grid of an existing
    product; overlapping dates → :class:`StoreConflictError`, another grid or variables or no such
    product → :class:`InputError`). ``out_of_range``: ``"fail"`` (values outside the variable's
    valid range → :class:`InputError`) or ``"mask"`` (stored as NaN, counted in the provenance).
    ``packed``: ``{variable: catalog.packing.Packing}`` stored as CF-packed integers (a reader's own
    precision, e.g. GSSM1km's SSM × 1000); an append keeps the stored product's packing.
    Atomic and crash-safe: on any failure or kill the catalog names the previous version, complete.
    A full disk or a too-long path → :class:`InputError`.
    """
    check_name(name)
    if mode not in MODES:
        raise InputError(f"bad write mode {mode!r} for product {name!r}; use one of {MODES}")
    plausibility.check_mode(out_of_range)
    if not isinstance(provenance, dict):
        raise InputError(f"product {name!r}: provenance must be a dict")
    data_dir = settings.data_dir(data_dir)
    try:
        with _in_process():  # the write graphs are built and computed under it
            ds = normalize(ds, name)
            packed = dict(packed or {})
            unknown = sorted(set(packed) - set(ds.data_vars))
            if unknown:
                raise InputError(f"product {name!r}: cannot pack {unknown}: no such variables")
            packing.check(packed, plausibility.ranges(ds), name)
            return _write_product(
                ds, name, data_dir, provenance=provenance, synthetic=synthetic, mode=mode, title=title,
                kind=kind, out_of_range=out_of_range, packed=packed,
            )  # fmt: skip
    except OSError as exc:
        err = commit.space_error(exc, data_dir, _disk_needed(ds), f"product {name!r}")
        if err is None:
            raise
        raise err from exc


def _write_product(ds, name, data_dir, *, provenance, synthetic, mode, title, kind, out_of_range, packed):
    products = data_dir / AREA
    products.mkdir(parents=True, exist_ok=True)
    commit.tidy(data_dir, AREA)
    current, existing = stored_product(name, data_dir)
    digest = input_digest(provenance, synthetic)

    if existing is not None:
        done = {h.get("input_digest") for h in existing.get("history", [])} - {None}
        if digest is not None and digest in done:
            log.info("product %s: input already ingested (digest %s), nothing to do", name, digest[:12])
            return ProductInfo.from_dict(existing["info"])
        if mode == "create" and digest is not None:
            raise _exists_error(name)
    if mode == "append":
        if existing is None:
            raise InputError(
                f"cannot append to product {name!r}: the catalog has no such product; "
                "ingest it first without --append"
            )
        return _append(
            ds, name, current, existing, provenance=provenance, synthetic=synthetic, digest=digest,
            out_of_range=out_of_range,
        )  # fmt: skip

    n = (ds.sizes["time"], ds.sizes["lat"], ds.sizes["lon"])
    info = _build_info(
        ds, name, title=title, kind=kind, synthetic=synthetic, provenance=provenance,
        chunking=_chunking(*n), store_id=uuid.uuid4().hex,
    )  # fmt: skip
    tmp = commit.temp_dir(products, name)
    try:
        masked = _write_new_store(ds, tmp, info, packed, out_of_range)
        _with_masked(info, masked, out_of_range)
        # Without source checksums, identical content is recognised from the written chunk files.
        content = content_digest(tmp / "levels" / "0.zarr") if digest is None else None
        if existing is not None and content is not None and existing.get("content_digest") == content:
            log.info("product %s: same content as the stored one, nothing to do", name)
            return ProductInfo.from_dict(existing["info"])
        if existing is not None and mode == "create":
            raise _exists_error(name)
        _write_json(
            tmp / "product.json",
            {
                "info": info.to_dict(),
                "content_digest": content,
                "packing": {v: p.to_dict() for v, p in packed.items()},
                "history": [_history_item(mode, info.provenance, digest, ds)],
            },
        )
        base = current if mode == "replace" else None
        commit.commit(data_dir, AREA, name, tmp, _registrar(data_dir, info), base=base)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info


def _grid_text(ds: xr.Dataset) -> str:
    lat, lon = ds.lat.values, ds.lon.values
    return f"{lat.size}x{lon.size} (lat {lat[0]:.6f}..{lat[-1]:.6f}, lon {lon[0]:.6f}..{lon[-1]:.6f})"


def _append(ds, name, current, existing, *, provenance, synthetic, digest, out_of_range) -> ProductInfo:
    old = ProductInfo.from_dict(existing["info"])
    level0 = _open_level(current / "levels" / "0.zarr")
    same_grid = (
        level0.sizes["lat"] == ds.sizes["lat"]
        and level0.sizes["lon"] == ds.sizes["lon"]
        and np.allclose(level0.lat.values, ds.lat.values, atol=1e-7)
        and np.allclose(level0.lon.values, ds.lon.values, atol=1e-7)
    )
    if not same_grid:
        raise InputError(
            f"cannot append to product {name!r}: grid {_grid_text(ds)} "
            f"differs from the stored {_grid_text(level0)}"
        )
    if set(ds.data_vars) != set(level0.data_vars):
        raise InputError(
            f"cannot append to product {name!r}: variables {sorted(ds.data_vars)} "
            f"differ from the stored {sorted(level0.data_vars)}"
        )
    if bool(synthetic) != old.synthetic:
        raise InputError(
            f"cannot append to product {name!r}: synthetic={synthetic} but the product has {old.synthetic}"
        )
    old_times = pd.DatetimeIndex(level0.time.values)
    new_times = pd.DatetimeIndex(ds.time.values)
    overlap = old_times.intersection(new_times)
    if len(overlap):
        raise StoreConflictError(
            f"cannot append to product {name!r}: {len(overlap)} date(s) already stored "
            f"({overlap[0].date()}…{overlap[-1].date()}; "
            f"the product covers {old.time_start}…{old.time_end}); "
            "use --replace to rewrite it"
        )
    if new_times[0] <= old_times[-1]:
        raise StoreConflictError(
            f"cannot append to product {name!r}: new dates start {new_times[0].date()}, "
            f"before the product's last date {old.time_end}; only later dates can be appended"
        )
    ds = ds[[v for v in old.variables if v in ds.data_vars]]
    for v in ds.data_vars:
        ds[v].attrs = {k: a for k, a in level0[v].attrs.items() if k not in ("valid_min", "valid_max")}
    packed = {v: packing.Packing.from_dict(p) for v, p in existing.get("packing", {}).items()}
    ds, tasks = plausibility.prepare(ds, out_of_range)
    ds = _unpacked_attrs(ds, packed)
    (results,) = dask.compute(tasks)
    masked = plausibility.verdict(name, ds, results, out_of_range)
    data_dir = current.parent.parent.parent
    products = data_dir / AREA
    appended = {**old.provenance, "appended": [*old.provenance.get("appended", []), jsonable(provenance)]}
    info = _build_info(
        xr.concat([level0[list(ds.data_vars)], ds], dim="time"),
        name, title=old.title, kind=old.kind, synthetic=old.synthetic, provenance=appended,
        chunking=_chunking(len(old_times) + len(new_times), ds.sizes["lat"], ds.sizes["lon"]),
        store_id=uuid.uuid4().hex,
    )  # fmt: skip
    if out_of_range == "mask" and masked:
        info.provenance["appended"][-1]["masked_out_of_range"] = masked
    info.time_step = old.time_step
    tmp = commit.temp_dir(products, name)
    try:
        _hardlink_clone(current, tmp)
        n_old = len(old_times)
        _append_zarr(_with_grid_attrs(ds, _dataset_attrs(info, 0)), tmp / "levels" / "0.zarr", n_old)
        for k in range(1, len(info.levels)):
            prev = _open_level(tmp / "levels" / f"{k - 1}.zarr", COARSEN_READ).isel(time=slice(n_old, None))
            coarse = _with_grid_attrs(pyramid.coarsen_2x2(prev), _dataset_attrs(info, k))
            _append_zarr(coarse, tmp / "levels" / f"{k}.zarr", n_old)
        if info.has_series:
            level0 = _open_level(tmp / "levels" / "0.zarr", SERIES_READ)
            if old.has_series and old.chunking["series"][0] == chunking.SERIES_CHUNK[0]:
                _append_zarr(level0.isel(time=slice(n_old, None)), tmp / "series.zarr", n_old)
            else:  # short record so far: rebuild with the longer time chunk
                shutil.rmtree(tmp / "series.zarr", ignore_errors=True)
                _write_zarr(level0, tmp / "series.zarr", tuple(info.chunking["series"]), packed, SERIES_WRITE)
        info.chunking["map"] = old.chunking["map"]
        if old.has_series and old.chunking["series"][0] == chunking.SERIES_CHUNK[0]:
            info.chunking["series"] = old.chunking["series"]
        history = existing.get("history", []) + [_history_item("append", provenance, digest, ds)]
        _write_json(
            tmp / "product.json",
            {
                "info": info.to_dict(),
                "content_digest": content_digest(tmp / "levels" / "0.zarr") if digest is None else None,
                "packing": existing.get("packing", {}),
                "history": history,
            },
        )
        commit.commit(data_dir, AREA, name, tmp, _registrar(data_dir, info), base=current)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info


def delete_product(name: str) -> None:
    """Remove product ``name`` from the catalog (the commit), then its folder. Unknown → InputError."""
    check_name(name)
    commit.remove(settings.data_dir(), AREA, name)
