"""Writes products and station tables into the data directory, atomically, and registers them.

Layout of a gridded product ``<data_dir>/products/<name>/``::

    levels/0.zarr, levels/1.zarr, …   multiscale pyramid (zarr format 3), see ``catalog.pyramid``
    series.zarr                        level 0 again, chunked for whole-record pixel reads
    product.json                       ProductInfo fields + chunking + ingest history

Chunking (decision and measurements; ``bench/bench_data_layer.py --chunk-study`` reproduces the
table): every pyramid level is chunked (1, 256, 256) for maps and level 0 is stored a second time,
chunked (512, 64, 64), in ``series.zarr`` for whole-record pixel series (grids of at least 256 x 256
px with more than one time step). Measured on a 365 x 2000 x 2000 float32 cube (zstd, zarr 3, 2 cores
shared with other jobs, load 9-12, so absolute times are pessimistic), median of 5 reads:

    chunk (t, lat, lon)   write s  size GB  one-day map s  one-pixel record s
    (1, 1000, 1000)         235     1.86       0.075            4.10
    (1, 2000, 2000)         179     1.91       0.116           21.1
    (8, 500, 500)           227     1.79       0.389            1.94
    (32, 256, 256)          240     1.75       2.03             0.191
    (73, 250, 250)          342     1.73       6.10             0.582
    (365, 64, 64)           339     1.73      19.2              0.016

No single chunk shape serves both reads (the balanced ones are 2-6 s on one of them), so the series
copy is worth its disk space (about +100 %). Building it out of core: dask's rechunk from
(1, 1024, 1024) map chunks to (512, 64, 64) held the whole cube (peak RSS 2.7 GB for a
300 x 1024 x 2048 cube of 2.5 GB); from (1, 256, 256) chunks the peak was 415 MB (113 s), since each
group of 16 series chunks needs only 512 x 256 x 256 values. One-day reads of that cube: 0.05-0.06 s
with (1, 256, 256) chunks, 0.04-0.08 s with (1, 1024, 1024); zarr 3 sharding (1024^2 shards of
256^2 chunks) was slower to read (0.12-1.9 s) and is not used. Hence map chunks (1, 256, 256);
grids of at most 1024 x 1024 px keep whole days, several a chunk (:func:`map_chunks`). The
series time chunk is min(n_time, 512) (see :func:`series_chunks`).

Atomicity: a write goes to ``products/.tmp-<name>-<pid>-<uuid>/`` (same filesystem), then the old
store (if any) is renamed aside, the new one renamed into place, ``catalog.yaml`` rewritten
(temporary file + ``os.replace``) and only then the old store deleted. Any failure before the
catalog update renames the old store back, so the catalog and older stores are untouched; temporary
directories are removed on failure (and left-overs of dead processes at the next write). An append
builds the new store as a hard-link clone of the old one (zarr writes chunk files by
write-to-temporary-and-rename, so the old store's files are never modified) and swaps the same way.

Idempotence: an ingest whose input digest (sha256 of the source files' checksums, reader, version
and options) was already recorded changes nothing. Without source checksums, the content digest
(sha256 over level 0's compressed chunk files) of the new write is compared with the stored one and
an identical store is discarded before the swap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
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

from catalog import intake_catalog, pyramid, settings
from catalog.api import ProductInfo
from catalog.errors import InputError, StoreConflictError

log = logging.getLogger(__name__)

MODES = ("create", "replace", "append")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")

# Chunking (see module docstring): map-chunked levels and a time-chunked series copy of level 0.
MAP_CHUNK = (1, 256, 256)  # (time, lat, lon) of every pyramid level of a large grid
WHOLE_DAY_PIXELS = 1024 * 1024  # grids up to this size: whole days a chunk (see map_chunks)
SERIES_CHUNK = (512, 64, 64)  # (time, lat, lon) of the series copy; time fixed so appends stay cheap
SERIES_MIN_PIXELS = 256 * 256  # smaller grids serve pixel series well enough from map chunks
# zstd level of every chunk: level 1 encoded the demo cubes' float32 chunks 1.3-1.8x faster than the
# default 3 (and decoded as fast) for 1-10 % more bytes.
COMPRESSION_LEVEL = 1

# CF metadata of the canonical variables: units, long_name, standard_name (None where CF has none).
CF_VARIABLES: dict[str, tuple[str, str, str | None]] = {
    "ssm": ("m3 m-3", "surface soil moisture", "volume_fraction_of_condensed_water_in_soil"),
    "ssm_uncertainty": ("m3 m-3", "surface soil moisture uncertainty", None),
    "flag": ("1", "product quality flag bits", None),
    "le": ("W m-2", "latent heat flux (positive upward)", "surface_upward_latent_heat_flux"),
    "h": ("W m-2", "sensible heat flux (positive upward)", "surface_upward_sensible_heat_flux"),
    "rn": ("W m-2", "net radiation", "surface_net_downward_radiative_flux"),
    "g": ("W m-2", "ground heat flux (positive into the soil)", "downward_heat_flux_in_soil"),
    "ef": ("1", "evaporative fraction LE / (LE + H)", None),
    "sw_in": ("W m-2", "incoming shortwave radiation", "surface_downwelling_shortwave_flux_in_air"),
    "lw_in": ("W m-2", "incoming longwave radiation", "surface_downwelling_longwave_flux_in_air"),
    "ta": ("degC", "air temperature", "air_temperature"),
    "vpd": ("hPa", "vapour pressure deficit", "water_vapor_saturation_deficit_in_air"),
    "precip": ("mm d-1", "precipitation", "lwe_precipitation_rate"),
    "ws": ("m s-1", "wind speed", "wind_speed"),
    "lai": ("m2 m-2", "leaf area index", "leaf_area_index"),
    "ndvi": ("1", "normalized difference vegetation index", "normalized_difference_vegetation_index"),
    "elevation": ("m", "surface elevation", "surface_altitude"),
    "igbp": ("1", "IGBP land cover class (1-17)", None),
}
COORD_ATTRS = {
    "lat": {"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude", "axis": "Y"},
    "lon": {"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude", "axis": "X"},
    "time": {"standard_name": "time", "long_name": "time", "axis": "T"},
}


# ---------------------------------------------------------------- provenance and digests


def sha256_file(path: str | os.PathLike, block: int = 4 * 2**20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def source_provenance(paths, *, reader: str, reader_version: str = "", options: dict | None = None) -> dict:
    """Provenance dict for files read by ``reader``: each source with its size and sha256."""
    sources = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files = sorted(q for q in p.rglob("*") if q.is_file())
        else:
            files = [p]
        for f in files:
            sources.append({"path": str(f.resolve()), "size": f.stat().st_size, "sha256": sha256_file(f)})
    return {"sources": sources, "reader": reader, "reader_version": reader_version, "options": options or {}}


def _jsonable(obj):
    """Plain JSON types (tuples → lists, numpy scalars → Python, Paths → str)."""
    return json.loads(json.dumps(obj, default=_json_default))


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (Path, pd.Timestamp, np.datetime64, datetime)):
        return str(o)
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    raise TypeError(f"not JSON serialisable: {o!r}")


def input_digest(provenance: dict, synthetic: bool) -> str | None:
    """sha256 identifying an ingest's input, or None when the sources carry no checksums."""
    sources = provenance.get("sources") or []
    if not sources or not all(isinstance(s, dict) and s.get("sha256") for s in sources):
        return None
    key = {
        "sources": sorted(s["sha256"] for s in sources),
        "reader": provenance.get("reader"),
        "reader_version": provenance.get("reader_version"),
        "options": provenance.get("options"),
        "synthetic": bool(synthetic),
    }
    return hashlib.sha256(json.dumps(_jsonable(key), sort_keys=True).encode()).hexdigest()


def content_digest(zarr_dir: Path) -> str:
    """sha256 over the relative paths and bytes of every file of a Zarr store (sorted)."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(zarr_dir).rglob("*") if p.is_file()):
        h.update(f.relative_to(zarr_dir).as_posix().encode())
        h.update(bytes.fromhex(sha256_file(f)))
    return h.hexdigest()


# ---------------------------------------------------------------- validation


def _check_name(name: str, what: str = "product") -> None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InputError(f"bad {what} name {name!r}: use lower-case letters, digits, '_' or '-'")


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
        units, long_name, std = CF_VARIABLES.get(v, (None, None, None))
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
    t = pd.DatetimeIndex(ds.time.values)
    if (
        len(t) > 1
        and (np.diff(t.values).astype("timedelta64[D]").astype(int) >= 28).all()
        and (t.day == 1).all()
    ):
        return "month"
    return "day"


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


def map_chunks(n_time: int, n_lat: int, n_lon: int) -> tuple[int, int, int]:
    """(time, lat, lon) chunk of the map-oriented pyramid levels.

    Grids of at most ``WHOLE_DAY_PIXELS`` keep whole days in one chunk, several days together
    (about ``WHOLE_DAY_PIXELS`` values a chunk): a 0.5 degree global year is 92 chunks a variable
    instead of 2190 (256 x 256 tiles), which took most of the demo build's time.
    """
    pixels = n_lat * n_lon
    if pixels <= WHOLE_DAY_PIXELS:
        return (max(1, min(n_time, WHOLE_DAY_PIXELS // pixels)), n_lat, n_lon)
    return (min(MAP_CHUNK[0], n_time), min(MAP_CHUNK[1], n_lat), min(MAP_CHUNK[2], n_lon))


def series_chunks(n_time: int, n_lat: int, n_lon: int) -> tuple[int, int, int]:
    """(time, lat, lon) chunk of the time-oriented copy of level 0.

    The time chunk is ``min(n_time, 512)``: a chunk longer than the record would be written padded
    in full (costly). While it is below 512, an append rebuilds the copy with a longer chunk; from
    512 on, appends fill the last chunk.
    """
    return (min(SERIES_CHUNK[0], n_time), min(SERIES_CHUNK[1], n_lat), min(SERIES_CHUNK[2], n_lon))


def needs_series(n_lat: int, n_lon: int, n_time: int) -> bool:
    """Whether a product gets a series copy: more than one time step and a large enough grid."""
    return n_time > 1 and n_lat * n_lon >= SERIES_MIN_PIXELS


def _encoding(ds: xr.Dataset, chunks: tuple[int, int, int]) -> dict:
    enc = {v: {"chunks": chunks, "compressors": (ZstdCodec(level=COMPRESSION_LEVEL),)} for v in ds.data_vars}
    enc["time"] = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian", "dtype": "int64"}
    return enc


def _write_zarr(ds: xr.Dataset, path: Path, chunks: tuple[int, int, int]) -> None:
    """Write ``ds`` as a new zarr 3 store with the given chunk shape (time chunk may exceed n_time)."""
    ds = ds.chunk(dict(zip(("time", "lat", "lon"), chunks, strict=True)))
    with dask.config.set(scheduler="threads"):
        ds.to_zarr(path, mode="w-", zarr_format=3, consolidated=False, encoding=_encoding(ds, chunks))


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
    ds = ds.chunk({"time": tuple(tchunks), "lat": chunks[1], "lon": chunks[2]})
    with dask.config.set(scheduler="threads"):
        ds.to_zarr(path, mode="a", append_dim="time", zarr_format=3, consolidated=False)


def aligned_chunks(wanted: dict, stored: tuple[int, int, int]) -> dict:
    """Dask chunks for reading: each wanted size rounded up to a whole number of stored chunks."""
    return {
        dim: -(-wanted[dim] // size) * size for dim, size in zip(("time", "lat", "lon"), stored, strict=True)
    }


def _open_level(path: Path, chunks: dict | None = None) -> xr.Dataset:
    """A written level, lazily; ``chunks`` (rounded up to whole stored chunks) makes fewer, larger
    tasks."""
    if chunks:
        chunks = aligned_chunks(chunks, _stored_chunks(path))
    return xr.open_zarr(path, consolidated=False, chunks=chunks or {}).drop_encoding()


# Dask chunks for reading a written level: to coarsen it (whole stored chunks, 4 x 4 of them) and to
# build the series copy (16 days of each stored chunk; a group of series chunks then needs at most
# SERIES_CHUNK[0] x 256 x 256 values in memory).
COARSEN_READ = {"time": 1, "lat": 1024, "lon": 1024}
# Dask chunks the catalog opens the levels with: 4 x 4 stored chunks per task. A one-day read of
# 2000 x 4000 px took 0.11 s with them and 0.19 s with the stored (1, 256, 256) chunks; a 400 x 400 px
# window 0.009 s vs 0.013 s (dask fuses the slice into the read, so only the stored chunks needed
# are decompressed).
MAP_READ = {"time": 1, "lat": 1024, "lon": 1024}
SERIES_READ = {"time": 16, "lat": MAP_CHUNK[1], "lon": MAP_CHUNK[2]}


# ---------------------------------------------------------------- directories and swaps


def _products_dir(data_dir: Path) -> Path:
    return data_dir / "products"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(parent: Path) -> None:
    """Remove temporary/aside directories left by processes that no longer run."""
    if not parent.is_dir():
        return
    for d in parent.iterdir():
        m = re.match(r"^\.(tmp|old)-.+-(\d+)-[0-9a-f]{32}$", d.name)
        if m and not _pid_alive(int(m.group(2))):
            shutil.rmtree(d, ignore_errors=True)


def temp_dir(parent: Path, name: str, what: str = "tmp") -> Path:
    """A fresh path `.<what>-<name>-<pid>-<uuid>` in ``parent`` that :func:`clean_stale` can recognise."""
    return parent / f".{what}-{name}-{os.getpid()}-{uuid.uuid4().hex}"


def _hardlink_clone(src: Path, dst: Path) -> None:
    """Copy a directory tree with hard links (files are shared, never modified in place)."""

    def link(s, d):
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, copy_function=link)


def _swap_in(tmp: Path, final: Path, register) -> None:
    """Move ``tmp`` to ``final`` (old one aside), call ``register()``, then drop the old one.

    If ``register`` fails, the old store is put back and the new one removed.
    """
    aside = None
    if final.exists():
        aside = temp_dir(final.parent, final.name, "old")
        os.rename(final, aside)
    try:
        os.rename(tmp, final)
        try:
            register()
        except BaseException:
            os.rename(final, tmp)
            raise
    except BaseException:
        if aside is not None:
            os.rename(aside, final)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


# ---------------------------------------------------------------- product.json and catalog entries


def _read_json(path: Path) -> dict | None:
    if not path.exists():
        return None
    return json.loads(path.read_text())


def _read_product_json(product_dir: Path) -> dict | None:
    return _read_json(product_dir / "product.json")


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_jsonable(obj), indent=2))
    os.replace(tmp, path)


def _product_entries(data_dir: Path, product_dir: Path, info: ProductInfo) -> dict:
    common = {"product": info.name, "synthetic": info.synthetic, "store_id": info.store_id}
    entries = {}
    for lev in info.levels:
        k = lev["level"]
        url = intake_catalog.catalog_url(data_dir, product_dir / "levels" / f"{k}.zarr")
        if k == 0:
            meta = {**common, "entry_kind": "product", "level": 0, "info": info.to_dict()}
        else:
            meta = {**common, "entry_kind": "product_level", **lev, "variables": sorted(info.variables)}
        entries[intake_catalog.level_entry(info.name, k)] = intake_catalog.zarr_reader(
            url,
            _jsonable(meta),
            chunks=aligned_chunks(MAP_READ, map_chunks(info.n_time, lev["n_lat"], lev["n_lon"])),
        )
    if info.has_series:
        url = intake_catalog.catalog_url(data_dir, product_dir / "series.zarr")
        meta = {**common, "entry_kind": "product_series", "level": 0, "chunks": info.chunking["series"]}
        entries[intake_catalog.series_entry(info.name)] = intake_catalog.zarr_reader(url, _jsonable(meta))
    return entries


def _register_product(data_dir: Path, product_dir: Path, info: ProductInfo) -> None:
    intake_catalog.set_entries(data_dir, "product", info.name, _product_entries(data_dir, product_dir, info))


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
        provenance=_jsonable(provenance),
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


def _write_pyramid_levels(store_dir: Path, info: ProductInfo, *, start_level: int = 1) -> None:
    """Write levels ``start_level``… each from the previous level as written on disk."""
    for k in range(start_level, len(info.levels)):
        prev = _open_level(store_dir / "levels" / f"{k - 1}.zarr", COARSEN_READ)
        coarse = _with_grid_attrs(pyramid.coarsen_2x2(prev), _dataset_attrs(info, k))
        lev = info.levels[k]
        _write_zarr(
            coarse, store_dir / "levels" / f"{k}.zarr", map_chunks(info.n_time, lev["n_lat"], lev["n_lon"])
        )


class _Stage:
    """Logs the wall and CPU time of a write stage."""

    def __init__(self, product: str, what: str):
        self.product, self.what = product, what

    def __enter__(self):
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def __exit__(self, *exc):
        wall, cpu = time.perf_counter() - self.t0, time.process_time() - self.c0
        log.info("product %s: %s in %.1f s (CPU %.1f s)", self.product, self.what, wall, cpu)


def _write_new_store(ds: xr.Dataset, store_dir: Path, info: ProductInfo) -> None:
    (store_dir / "levels").mkdir(parents=True)
    n = (info.n_time, info.levels[0]["n_lat"], info.levels[0]["n_lon"])
    with _Stage(info.name, f"level 0 {n}"):
        level0 = _with_grid_attrs(ds, _dataset_attrs(info, 0))
        _write_zarr(level0, store_dir / "levels" / "0.zarr", map_chunks(*n))
    with _Stage(info.name, f"{len(info.levels) - 1} coarser levels"):
        _write_pyramid_levels(store_dir, info)
    if info.has_series:
        with _Stage(info.name, "series copy"):
            level0 = _open_level(store_dir / "levels" / "0.zarr", SERIES_READ)
            _write_zarr(level0, store_dir / "series.zarr", tuple(info.chunking["series"]))


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
        "provenance": _jsonable(provenance),
    }


def _exists_error(name: str, final: Path) -> StoreConflictError:
    return StoreConflictError(
        f"product {name!r} already exists at {final} with different content; "
        "use replace (--replace) or append (--append)"
    )


def write_product(
    ds: xr.Dataset,
    name: str,
    *,
    provenance: dict,
    synthetic: bool,
    mode: str = "create",
    title: str | None = None,
    kind: str | None = None,
) -> ProductInfo:
    """Write ``ds`` as product ``name`` (pyramid + product.json) and register it in catalog.yaml.

    ``provenance``: free-form dict, by convention ``{"sources": [{"path", "size", "sha256"}],
    "reader", "reader_version", "options"}`` (see :func:`source_provenance`); an append adds its
    provenance to ``provenance["appended"]``. ``title``/``kind`` default to ``ds.attrs`` or are
    derived from the variables.

    ``mode``: ``create`` (the name must be new, unless the same input is re-ingested), ``replace``
    (swap the whole product) or ``append`` (add later time steps on the same grid; overlapping
    dates → :class:`StoreConflictError`, another grid or variables → :class:`InputError`).
    Atomic: on any failure the catalog and the previous store are unchanged.
    """
    _check_name(name)
    if mode not in MODES:
        raise InputError(f"bad write mode {mode!r} for product {name!r}; use one of {MODES}")
    if not isinstance(provenance, dict):
        raise InputError(f"product {name!r}: provenance must be a dict")
    data_dir = settings.data_dir()
    products = _products_dir(data_dir)
    products.mkdir(parents=True, exist_ok=True)
    clean_stale(products)
    ds = normalize(ds, name)
    final = products / name
    existing = _read_product_json(final)
    digest = input_digest(provenance, synthetic)

    if existing is not None:
        done = {h.get("input_digest") for h in existing.get("history", [])} - {None}
        if digest is not None and digest in done:
            log.info("product %s: input already ingested (digest %s), nothing to do", name, digest[:12])
            return ProductInfo.from_dict(existing["info"])
        if mode == "create" and digest is not None:
            raise _exists_error(name, final)
    if mode == "append" and existing is not None:
        return _append(ds, name, final, existing, provenance=provenance, synthetic=synthetic, digest=digest)

    store_id = uuid.uuid4().hex
    n = (ds.sizes["time"], ds.sizes["lat"], ds.sizes["lon"])
    info = _build_info(
        ds, name, title=title, kind=kind, synthetic=synthetic, provenance=provenance,
        chunking=_chunking(*n), store_id=store_id,
    )  # fmt: skip
    tmp = temp_dir(products, name)
    try:
        _write_new_store(ds, tmp, info)
        # Without source checksums, identical content is recognised from the written chunk files.
        content = content_digest(tmp / "levels" / "0.zarr") if digest is None else None
        if existing is not None and content is not None and existing.get("content_digest") == content:
            log.info("product %s: same content as the stored one, nothing to do", name)
            return ProductInfo.from_dict(existing["info"])
        if existing is not None and mode == "create":
            raise _exists_error(name, final)
        _write_json(
            tmp / "product.json",
            {
                "info": info.to_dict(),
                "content_digest": content,
                "history": [_history_item(mode, provenance, digest, ds)],
            },
        )
        with intake_catalog.locked(data_dir):
            _swap_in(tmp, final, lambda: _register_product(data_dir, final, info))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info


def _grid_text(ds: xr.Dataset) -> str:
    lat, lon = ds.lat.values, ds.lon.values
    return f"{lat.size}x{lon.size} (lat {lat[0]:.6f}..{lat[-1]:.6f}, lon {lon[0]:.6f}..{lon[-1]:.6f})"


def _append(ds, name, final, existing, *, provenance, synthetic, digest) -> ProductInfo:
    old = ProductInfo.from_dict(existing["info"])
    level0 = _open_level(final / "levels" / "0.zarr")
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
        ds[v].attrs = dict(level0[v].attrs)
    products = final.parent
    appended = {**old.provenance, "appended": [*old.provenance.get("appended", []), _jsonable(provenance)]}
    info = _build_info(
        xr.concat([level0[list(ds.data_vars)], ds], dim="time"),
        name, title=old.title, kind=old.kind, synthetic=old.synthetic, provenance=appended,
        chunking=_chunking(len(old_times) + len(new_times), ds.sizes["lat"], ds.sizes["lon"]),
        store_id=uuid.uuid4().hex,
    )  # fmt: skip
    info.time_step = old.time_step
    tmp = temp_dir(products, name)
    try:
        _hardlink_clone(final, tmp)
        n_old = len(old_times)
        _append_zarr(_with_grid_attrs(ds, _dataset_attrs(info, 0)), tmp / "levels" / "0.zarr", n_old)
        for k in range(1, len(info.levels)):
            prev = _open_level(tmp / "levels" / f"{k - 1}.zarr", COARSEN_READ).isel(time=slice(n_old, None))
            coarse = _with_grid_attrs(pyramid.coarsen_2x2(prev), _dataset_attrs(info, k))
            _append_zarr(coarse, tmp / "levels" / f"{k}.zarr", n_old)
        if info.has_series:
            level0 = _open_level(tmp / "levels" / "0.zarr", SERIES_READ)
            if old.has_series and old.chunking["series"][0] == SERIES_CHUNK[0]:
                _append_zarr(level0.isel(time=slice(n_old, None)), tmp / "series.zarr", n_old)
            else:  # short record so far: rebuild with the longer time chunk
                shutil.rmtree(tmp / "series.zarr", ignore_errors=True)
                _write_zarr(level0, tmp / "series.zarr", tuple(info.chunking["series"]))
        info.chunking["map"] = old.chunking["map"]
        if old.has_series and old.chunking["series"][0] == SERIES_CHUNK[0]:
            info.chunking["series"] = old.chunking["series"]
        history = existing.get("history", []) + [_history_item("append", provenance, digest, ds)]
        _write_json(
            tmp / "product.json",
            {
                "info": info.to_dict(),
                "content_digest": content_digest(tmp / "levels" / "0.zarr") if digest is None else None,
                "history": history,
            },
        )
        data_dir = settings.data_dir()
        with intake_catalog.locked(data_dir):
            _swap_in(tmp, final, lambda: _register_product(data_dir, final, info))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info


def delete_product(name: str) -> None:
    """Remove product ``name`` from the catalog, then its store. Unknown name → InputError."""
    _check_name(name)
    data_dir = settings.data_dir()
    final = _products_dir(data_dir) / name
    if not final.exists():
        raise InputError(f"cannot delete product {name!r}: no store at {final}")
    aside = temp_dir(final.parent, name, "old")
    with intake_catalog.locked(data_dir):
        os.rename(final, aside)
        try:
            intake_catalog.set_entries(data_dir, "product", name, {})
        except BaseException:
            os.rename(aside, final)
            raise
    shutil.rmtree(aside, ignore_errors=True)


# ---------------------------------------------------------------- station networks

SITE_COLUMNS = ("site_id", "name", "lat", "lon", "igbp", "start", "end", "network", "synthetic")


def write_stations(
    network: str,
    sites: pd.DataFrame,
    observations: pd.DataFrame,
    *,
    provenance: dict,
    synthetic: bool,
    mode: str = "replace",
) -> dict:
    """Write a station network (site table + observations) as Parquet and register it; atomic.

    ``sites`` needs ``site_id``, ``lat``, ``lon`` (``name``, ``igbp``, ``start``, ``end`` are filled
    when absent); ``observations`` needs ``site_id`` and ``time``. ``mode="replace"`` (default)
    replaces a network of the same name, ``"create"`` refuses to (:class:`StoreConflictError`);
    re-writing the same input (same provenance digest) changes nothing. Returns the catalog
    metadata of the network.
    """
    _check_name(network, "network")
    for col in ("site_id", "lat", "lon"):
        if col not in sites.columns:
            raise InputError(
                f"network {network!r}: site table lacks column {col!r} (has {list(sites.columns)})"
            )
    for col in ("site_id", "time"):
        if col not in observations.columns:
            raise InputError(f"network {network!r}: observations lack column {col!r}")
    if sites["site_id"].duplicated().any():
        dup = sites.loc[sites["site_id"].duplicated(), "site_id"].tolist()[:5]
        raise InputError(f"network {network!r}: duplicate site ids {dup}")
    obs = observations.copy()
    obs["site_id"] = obs["site_id"].astype(str)
    obs["time"] = pd.to_datetime(obs["time"]).astype("datetime64[ns]")
    unknown = sorted(set(obs["site_id"]) - set(sites["site_id"].astype(str)))
    if unknown:
        raise InputError(
            f"network {network!r}: observations for sites missing from the site table: {unknown[:5]}"
        )
    obs = obs.sort_values(["site_id", "time"]).reset_index(drop=True)
    st = sites.copy()
    st["site_id"] = st["site_id"].astype(str)
    st["lat"] = st["lat"].astype(float)
    st["lon"] = st["lon"].astype(float)
    if "name" not in st:
        st["name"] = st["site_id"]
    if "igbp" not in st:
        st["igbp"] = None
    span = obs.groupby("site_id")["time"].agg(["min", "max"])
    for col, agg in (("start", "min"), ("end", "max")):
        filled = st["site_id"].map(span[agg])
        st[col] = pd.to_datetime(st[col]).astype("datetime64[ns]").fillna(filled) if col in st else filled
    st["network"] = network
    st["synthetic"] = bool(synthetic)
    st = st[list(SITE_COLUMNS) + [c for c in st.columns if c not in SITE_COLUMNS]]

    if mode not in ("create", "replace"):
        raise InputError(f"bad write mode {mode!r} for network {network!r}; use create or replace")
    data_dir = settings.data_dir()
    parent = data_dir / "stations"
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale(parent)
    final = parent / network
    digest = input_digest(provenance, synthetic)
    existing = _read_json(final / "network.json")
    if existing is not None:
        if digest is not None and existing.get("input_digest") == digest:
            log.info("network %s: input already ingested (digest %s), nothing to do", network, digest[:12])
            return existing
        if mode == "create":
            raise StoreConflictError(
                f"station network {network!r} already exists at {final} with different content; "
                "use replace (--replace)"
            )
    store_id = uuid.uuid4().hex
    times = obs["time"]
    meta = _jsonable(
        {
            "network": network,
            "synthetic": bool(synthetic),
            "store_id": store_id,
            "n_sites": len(st),
            "n_observations": len(obs),
            "variables": [c for c in obs.columns if c not in ("site_id", "time")],
            "time_start": str(times.min().date()) if len(times) else None,
            "time_end": str(times.max().date()) if len(times) else None,
            "bbox": [float(st.lon.min()), float(st.lat.min()), float(st.lon.max()), float(st.lat.max())],
            "provenance": provenance,
            "input_digest": digest,
        }
    )
    tmp = temp_dir(parent, network)
    try:
        tmp.mkdir()
        st.to_parquet(tmp / "sites.parquet", index=False)
        obs.to_parquet(tmp / "observations.parquet", index=False, row_group_size=100_000)
        _write_json(tmp / "network.json", meta)

        def register():
            entries = {}
            for table in ("sites", "observations"):
                url = intake_catalog.catalog_url(data_dir, final / f"{table}.parquet")
                m = {**meta, "entry_kind": f"station_{table}"}
                entries[intake_catalog.station_entry(network, table)] = intake_catalog.parquet_reader(url, m)
            intake_catalog.set_entries(data_dir, "network", network, entries)

        with intake_catalog.locked(data_dir):
            _swap_in(tmp, final, register)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta
